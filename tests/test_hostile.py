"""Hostile programs: each gets its exact status, passes no test, and leaves nothing behind.

Written to be harmless on a machine where the sandbox is broken: forks and
allocations are bounded, every process a test starts exits by itself within a
minute, nothing signals process -1, and files are written only under names
these tests check.
"""

import os
import pathlib
import time

import pytest

import sandbox
from sandbox import Job, Limits
from tests.conftest import CRUXEVAL
from tests.sandbox_util import FAST, MARKER, job_processes, nothing_left_behind, run  # noqa: F401 (a fixture)

F_WRONG = "def f(x):\n    return 0\n"
pytestmark = pytest.mark.usefixtures("nothing_left_behind")


# A CPU-bound job at its wall time: a timeout, or starved when the machine (other pools' tests
# included) gave it under half a CPU meanwhile; never anything that scores it.
WALL = ("timeout", "starved")


def test_infinite_loop(pool):
    r = run(pool, "while True:\n    pass", limits=Limits(wall_time=1, cpu_time=10))
    assert r.status in WALL and 0.9 < r.wall_time < 4


def test_c_level_hang(pool):
    r = run(pool, "x = 10 ** 10 ** 9", limits=Limits(wall_time=1, cpu_time=10, memory=2 << 30))
    assert r.status in WALL


def test_memory_bomb(pool):
    code = "chunks = []\nfor _ in range(400):\n    chunks.append(bytearray(10 ** 7))\n"
    r = run(pool, code)
    assert r.status == "memory_exceeded"


def test_fork_bomb_is_bounded_and_reaped(pool):
    code = (
        "import os, time\nfor _ in range(64):\n    try:\n        if os.fork() == 0:\n            time.sleep(30)\n"
        "            os._exit(0)\n    except OSError:\n        break\ntime.sleep(30)\n"
    )
    r = run(pool, code, limits=Limits(wall_time=1.5, cpu_time=5, processes=8))
    assert r.status == "timeout"


def test_disk_fill(pool):
    code = "with open('big', 'wb') as f:\n    for _ in range(100):\n        f.write(b'x' * 10 ** 6)\n"
    r = run(pool, code)
    assert r.status == "error" and r.exception.type == "OSError" and "too large" in r.exception.message.lower()


def test_huge_stdout(pool):
    r = run(pool, "import sys\nfor _ in range(1000):\n    sys.stdout.write('x' * 100000)\n")
    assert r.status == "output_exceeded" and len(r.stdout) == FAST.output


def test_deep_recursion(pool):
    r = run(pool, "def r(n):\n    return r(n + 1)\nr(0)")
    assert r.status == "error" and r.exception.type == "RecursionError"
    r = run(
        pool,
        "import sys\nsys.setrecursionlimit(10 ** 8)\ndef r(n):\n    return r(n + 1)\nr(0)",
        # a smaller budget is reached sooner; the wall limit leaves room for a loaded machine (the CPU limit binds)
        limits=Limits(wall_time=60, cpu_time=10, memory=96 << 20),
    )
    assert r.status in ("killed", "memory_exceeded", "starved")  # a C stack overflow (SIGSEGV) or the memory budget


def test_fd_exhaustion(pool):
    r = run(pool, "files = [open('/dev/null') for _ in range(10000)]")
    assert r.status == "error" and r.exception.type == "OSError" and "Too many open files" in r.exception.message


def test_threads_and_daemons_that_outlive_the_job(pool):
    code = (
        "import os, threading, time\nthreading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
        "if os.fork() == 0:\n    try:\n        os.setsid()\n    except OSError:\n        pass\n"
        "    if os.fork() == 0:\n        time.sleep(30)\n        os._exit(0)\n    os._exit(0)\ntime.sleep(0.2)\n"
    )
    r = run(pool, code, call="1")
    assert r.status == "ok" and r.leftovers >= 1


@pytest.mark.parametrize("exit_code", ["import sys\nsys.exit(0)", "import os\nos._exit(0)", "exit()"])
def test_exit_before_tests_run(pool, exit_code):
    r = run(pool, F_WRONG + exit_code, mode="asserts", tests=["assert f(3) == 7"])
    assert r.status == "error" and r.passed == 0


def test_exit_code_rewrites_change_nothing(pool):
    code = F_WRONG + (
        "import atexit, os, sys, threading, time\natexit.register(lambda: os._exit(0))\n"
        "sys.excepthook = lambda *a: None\n"
        "threading.Thread(target=lambda: (time.sleep(0.05), os._exit(0)), daemon=True).start()\n"
    )
    r = run(pool, code, mode="asserts", tests=["assert f(3) == 7"])
    assert r.status in ("failed", "error") and r.passed == 0


@pytest.mark.parametrize(
    "returned",
    [
        "class AlwaysEqual:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n"
        "        return False\nR = AlwaysEqual()",
        "class I(int):\n    def __eq__(self, other):\n        return True\nR = I(0)",
        "class S(str):\n    def __eq__(self, other):\n        return True\nR = S('')",
        "class L(list):\n    def __eq__(self, other):\n        return True\nR = L()",
    ],
)
def test_objects_that_claim_equality_pass_nothing(pool, returned):
    r = run(
        pool,
        returned + "\ndef f(x):\n    return R\n",
        mode="asserts",
        tests=["assert f(3) == 7", "assert f(1) == 'a'", "assert f(2) == [1]"],
    )
    assert r.status == "failed" and r.passed == 0


def test_frame_walking_and_gc_find_no_tests(pool):
    code = (
        "import gc, sys\ndef f(x):\n    found = [o for o in gc.get_objects() if isinstance(o, str) and 'assert' in o]\n"
        "    frame = sys._getframe()\n    while frame.f_back:\n        frame = frame.f_back\n"
        "    return len(found) + 1000 * len(frame.f_globals.get('tests', ''))\n"
    )
    r = run(pool, code, mode="asserts", tests=["assert f(3) == 7"])
    assert r.status == "failed" and r.tests[0].message.startswith("expected 7, got ")


def test_writing_to_the_result_channel(pool):
    code = (
        "import os, struct, msgspec\nbody = msgspec.msgpack.encode({'type': 'returned', 'nonce': b'0' * 16})\n"
        "for fd in range(3, 64):\n    try:\n        os.write(fd, struct.pack('>I', len(body)) + body)\n"
        "    except OSError:\n        pass\ndef f(x):\n    return 0\n"
    )
    r = run(pool, code, mode="asserts", tests=["assert f(3) == 7"])
    assert r.status in ("error", "failed") and r.passed == 0
    r = run(pool, code, call="f(1)")
    assert r.status == "error" and r.tampered


def test_printing_fake_passed_text(pool):
    code = F_WRONG + "print('passed: 1/1', 'OK', 'All tests passed')\n"
    r = run(pool, code, mode="asserts", tests=["assert f(3) == 7"])
    assert r.status == "failed"


def test_skip_test_and_monkeypatching(pool):
    code = (
        "import builtins, unittest\nbuiltins.AssertionError = type('Nope', (Exception,), {})\n"
        "unittest.TestCase.assertEqual = lambda *a, **k: None\n"
        "def f(x):\n    raise unittest.SkipTest('skip me')\n"
    )
    r = run(pool, code, mode="asserts", tests=["assert f(3) == 7"])
    assert r.status == "failed" and r.passed == 0 and "SkipTest" in r.tests[0].message


def test_killing_the_parent(pool):
    # only the parent: even with a broken sandbox that is the zygote, never a process of the host
    code = (
        "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError:\n    pass\n"
        "def f(x):\n    return x\n"
    )
    r = run(pool, code, call="f(5)")
    assert r.status == "ok" and sandbox.to_python(r.value) == 5


def test_network_is_unreachable(pool):
    code = (
        "import socket\ndef f():\n    try:\n        socket.create_connection(('127.0.0.1', 22), timeout=1)\n"
        "        return 'connected'\n    except OSError as e:\n        return type(e).__name__\n"
    )
    r = run(pool, code, call="f()")
    assert r.status == "ok" and sandbox.to_python(r.value) != "connected"


def test_secrets_and_files_outside_the_job_dir(pool, monkeypatch):
    monkeypatch.setenv("EXECALIGN_TEST_SECRET", "hunter2")
    targets = [
        f"/proc/{os.getppid()}/environ",
        "/proc/1/environ",
        "/etc/passwd",
        str(CRUXEVAL),
        str(pathlib.Path(__file__)),
        os.path.expanduser("~/.bash_history"),
    ]
    code = (
        "import os\ndef f(paths):\n    seen = [k for k in os.environ if 'SECRET' in k]\n    for p in paths:\n"
        "        try:\n            with open(p) as fh:\n                seen.append(p + ':' + fh.read(20))\n"
        "        except OSError:\n            pass\n"
        f"    try:\n        open({MARKER!r}, 'w').write('x')\n        seen.append('wrote')\n"
        "    except OSError:\n        pass\n    return seen\n"
    )
    r = run(pool, code, call=f"f({targets!r})")
    assert r.status == "ok" and sandbox.to_python(r.value) == []


def test_poisoning_later_jobs(pool):
    code = (
        "import os, site, sys\nfor d in [os.getcwd()] + sys.path + [site.getusersitepackages()]:\n"
        "    for name in ('sitecustomize.py', 'usercustomize.py', 'numpy.py', 'json.py', 'evil.pth'):\n"
        "        try:\n            with open(os.path.join(d, name), 'w') as fh:\n"
        "                fh.write('import os; os._exit(7)')\n        except OSError:\n            pass\n"
    )
    assert run(pool, code, call="1").status == "ok"
    r = run(
        pool,
        "import json, importlib.util\nx = json.dumps([1])",
        call="(x, importlib.util.find_spec('numpy') "
        "is None or 'site-packages' in importlib.util.find_spec('numpy').origin)",
    )
    assert r.status == "ok" and sandbox.to_python(r.value) == ("[1]", True)


def test_tracer_tampering_is_marked(pool):
    code = (
        "import sys\ndef f(x):\n    sys.settrace(None)\n"
        "    if hasattr(sys, 'monitoring'):\n        for i in range(6):\n            sys.monitoring.free_tool_id(i)\n"
        "    return x\n"
    )
    r = pool.run(Job(mode="call", code=code, call="f(2)", trace=True, limits=FAST))
    assert r.status == "error" and r.tampered and r.trace is not None and r.trace.tampered


PROBE = """
import ctypes, errno, os

def probe(pids, path):
    libc = ctypes.CDLL(None, use_errno=True)
    found = {"me": os.getuid()}
    for pid in pids:
        seen = {}
        try:
            seen["owner"] = os.stat(f"/proc/{pid}").st_uid  # who this number names, as this job sees it
        except OSError:
            seen["owner"] = None
        try:
            os.kill(pid, 0)  # signal 0: the permission check of every signal, harmless if it passes
            seen["kill"] = "allowed"
        except OSError as e:
            seen["kill"] = errno.errorcode[e.errno]
        if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
            libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
            seen["ptrace"] = "allowed"
        else:
            seen["ptrace"] = errno.errorcode[ctypes.get_errno()]
        for name in ("environ", "cwd/secret.txt"):
            try:
                seen[name] = open(f"/proc/{pid}/{name}", "rb").read(40)
            except OSError as e:
                seen[name] = errno.errorcode[e.errno]
        found[pid] = seen
    try:
        found["file"] = open(path).read()
    except OSError as e:
        found["file"] = errno.errorcode[e.errno]
    return found
"""
WAIT_FOR_GO = (
    "import os, time\nopen('secret.txt', 'w').write('the secret of B')\nopen('pid', 'w').write(str(os.getpid()))\n"
    "deadline = time.monotonic() + 20\nwhile not os.path.exists('go') and time.monotonic() < deadline:\n"
    "    time.sleep(0.02)\nsecret = open('secret.txt').read()\n"
)


def test_a_job_cannot_reach_a_running_job_of_another_pool(pool):
    """Two pools at once: a job of A cannot signal, ptrace or read the files of a running job of B.

    Which layer holds it: each zygote has its own PID namespace, so no pid number a job of A
    uses names B's job (kill and ptrace: ESRCH; /proc/PID is A's own /proc); without namespaces,
    B's job runs as a uid of B's block, so kill and ptrace get EPERM; B's directory belongs to
    that uid (mode 0700) and Landlock lets A read only the Python installation (EACCES).
    B's job waits for a file the test writes, and ends by itself after 20 s whatever happens.
    """
    if os.geteuid() != 0:
        pytest.skip("uids per slot and namespaces need root")
    with sandbox.Pool(1) as other:
        slot = pathlib.Path(other.shards[0].base) / "slot0" / "work"
        running = other.submit(Job(mode="call", code=WAIT_FOR_GO, call="secret", limits=Limits(wall_time=30)))
        deadline = time.monotonic() + 20
        while not _read(slot / "pid") and time.monotonic() < deadline:
            time.sleep(0.02)
        if not _read(slot / "pid"):
            pytest.skip(f"{slot} is not where B's job writes in this host's view")
        host_pids = [p["pid"] for p in job_processes(other)]
        assert host_pids and not running.done()
        pids = [*host_pids, int(_read(slot / "pid"))]  # as the host sees B's job, and as B's zygote does
        r = run(pool, PROBE, call=f"probe({pids!r}, {str(slot / 'secret.txt')!r})")
        (slot / "go").write_text("")
        assert running.result().status == "ok" and sandbox.to_python(running.result().value) == "the secret of B"
    assert r.status == "ok", r.message
    found = sandbox.to_python(r.value)
    assert found["file"] in ("EACCES", "EPERM")
    for pid in pids:
        seen = found[pid]
        if seen["owner"] == found["me"]:
            continue  # in A's PID namespace this number names the probing job itself
        if pool.layers.namespaces:  # B's job has no pid in A's namespace: no number names a process of B
            assert seen["owner"] not in other.uids, seen
        assert seen["kill"] in ("ESRCH", "EPERM") and seen["ptrace"] in ("ESRCH", "EPERM"), seen
        assert seen["environ"] in ("ENOENT", "EACCES", "EPERM", "ESRCH"), seen
        assert seen["cwd/secret.txt"] in ("ENOENT", "EACCES", "EPERM", "ESRCH"), seen


def _read(path: pathlib.Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
