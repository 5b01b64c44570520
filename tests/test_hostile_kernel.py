"""Harm past the job (issue 9, items 10 and 11): kernel objects that outlive it, memory it holds
outside its address space, CPU it takes from its neighbours.

Each layer is skipped, with the pool's own note, where the machine does not
allow it (`pool.layers`). Safe where the sandbox is broken: no object a test
asks for outlives it (each is removed if it was made), busy processes end by
themselves within seconds, memory is bounded by the test's own numbers.
"""

import subprocess
import sys
import time

import pytest

import rewards
import sandbox
from rewards.cache import ResultCache
from sandbox import Job, Limits
from tests.sandbox_util import FAST, job_processes, nothing_left_behind, quick, run  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("nothing_left_behind")


@pytest.fixture
def seccomp(pool):
    if not pool.layers.seccomp:
        pytest.skip(pool.layers.describe())


LIBC = "import ctypes, errno, os\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\n"


def _refused(call: str, cleanup: str = "pass") -> str:
    """Code for f(): the errno name of `call` (a libc call returning -1 on failure), or 'made'."""
    return LIBC + (
        f"def f():\n    rc = {call}\n    if rc == -1:\n        return errno.errorcode[ctypes.get_errno()]\n"
        f"    {cleanup}\n    return 'made'\n"
    )


@pytest.mark.parametrize(
    "code",
    [
        _refused("libc.shmget(0, 1 << 20, 0o1666)", "libc.shmctl(rc, 0, None)"),  # IPC_PRIVATE, IPC_CREAT; IPC_RMID
        _refused("libc.msgget(0, 0o1666)", "libc.msgctl(rc, 0, None)"),
        _refused("libc.semget(0, 1, 0o1666)", "libc.semctl(rc, 0, 0)"),
        _refused("libc.syscall(240, b'/execalign-q', 0o100 | 2, 0o600, None)", "libc.syscall(241, b'/execalign-q')"),
        _refused("libc.syscall(248, b'user', b'execalign', b'secret', 6, -4)", "libc.syscall(250, 21, rc)"),  # add_key
        _refused("libc.syscall(250, 1, -4, 0, 0, 0)"),  # keyctl(KEYCTL_JOIN_SESSION_KEYRING)
        _refused("libc.unshare(0x10000000)"),  # CLONE_NEWUSER
        _refused("libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)", "os._exit(0) if rc == 0 else None"),  # clone
    ],
    ids=["shm", "msg queue", "semaphores", "posix mq", "add_key", "keyctl", "unshare user", "clone user"],
)
def test_kernel_objects_that_outlive_a_job_are_refused(pool, seccomp, code):
    r = run(pool, code, call="f()")
    assert r.status == "ok" and sandbox.to_python(r.value) in ("EPERM", "ENOSYS"), (r.status, r.message, r.value)


def test_a_jobs_processes_stay_in_its_cgroups(pool):
    """New sessions and lower priorities leave a job's processes in its slot's cgroups (seen from the host)."""
    if not (pool.layers.cpu_cgroup and pool.layers.memory_cgroup and pool.uids):
        pytest.skip(pool.layers.describe())
    code = (
        "import os, time\nif os.fork() == 0:\n    try:\n        os.setsid()\n        os.nice(19)\n"
        "        time.sleep(3)\n    finally:\n        os._exit(0)\ntime.sleep(3)\n"
    )
    running = pool.submit(Job(mode="call", code=code, call="1", limits=Limits(wall_time=20)))
    deadline = time.monotonic() + 10
    while len(job_processes(pool)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    groups = set()
    for process in job_processes(pool):
        with open(f"/proc/{process['pid']}/cgroup") as f:
            groups.add(tuple(sorted(line for line in f.read().splitlines() if ":cpu:" in line or ":memory:" in line)))
    assert running.result().status == "ok"
    assert len(groups) == 1 and all("/slot" in line for line in groups.pop())


def test_threads_and_subprocesses_still_work(pool, seccomp):
    code = (
        "import subprocess, sys, threading\nout = []\nt = threading.Thread(target=lambda: out.append(1))\nt.start()\n"
        "t.join()\np = subprocess.run([sys.executable, '-c', 'print(2)'], capture_output=True, text=True)\n"
        "out.append(int(p.stdout))\n"
    )
    r = run(pool, code, call="out", limits=Limits(wall_time=30, cpu_time=10))
    assert r.status == "ok" and sandbox.to_python(r.value) == [1, 2]


HOLD = (  # 768 MiB in 48 memfds of 16 MiB (the file size cap applies to each)
    "import os\ndef hold():\n    fds = [os.memfd_create('held') for _ in range(48)]\n    for fd in fds:\n"
    "        for _ in range(16):\n            os.write(fd, b'x' * (1 << 20))\n    return fds\n"
)


@pytest.mark.parametrize(
    "code",
    [
        HOLD + "fds = hold()\ndef f():\n    return len(fds)\n",
        # a child holds it: the job's own process survives the kernel's kill
        HOLD + "if os.fork() == 0:\n    try:\n        hold()\n    finally:\n        os._exit(0)\nos.wait()\n"
        "def f():\n    return 0\n",
        "import os\nfds = [os.memfd_create('held') for _ in range(48)]\nfor fd in fds:\n"
        "    os.posix_fallocate(fd, 0, 16 << 20)\ndef f():\n    return 0\n",
    ],
    ids=["memfd", "memfd in a child", "memfd allocated at once"],
)
def test_memory_held_outside_the_address_space_counts(pool, code):
    if not pool.layers.memory_cgroup:
        pytest.skip(pool.layers.describe())
    limits = Limits(wall_time=30, cpu_time=20, memory=512 << 20)
    r = pool.run(Job(mode="call", code=code, call="f()", limits=limits))
    assert r.status == "memory_exceeded" and r.peak_memory >= 0.9 * (512 << 20), (r.status, r.message, r.peak_memory)


def test_the_peak_is_the_jobs_own(pool):
    r = pool.run(Job(mode="call", code="x = bytearray(100 << 20)", call="1", limits=Limits(memory=512 << 20)))
    assert r.status == "ok" and 100 << 20 <= r.peak_memory < 300 << 20
    assert quick(pool).peak_memory < 100 << 20  # the next job of the slot starts from its own peak


def test_layers_say_what_is_on_and_why_not():
    layers = sandbox.Layers(False, False, False, 0, "NOT cut", ["no seccomp (x): jobs may ..."])
    assert "seccomp" not in layers.describe().splitlines()[0] and "no seccomp (x)" in layers.describe()
    on = sandbox.Layers(
        True,
        True,
        True,
        6,
        "ns",
        [],
        seccomp=True,
        memory_cgroup="/sys/fs/cgroup/memory",
        cpu_cgroup="/sys/fs/cgroup/cpu",
    )
    assert all(word in on.describe() for word in ("seccomp", "memory cgroup per slot", "cpu cgroup per slot"))


# ---------------------------------------------------------------- 11. noisy neighbours

BUSY = (  # 15 busy processes that try to leave the job's session (and its CPU group); each ends within 8 s
    "import os, time\ndef spin():\n    end = time.monotonic() + 8\n    while time.monotonic() < end:\n        pass\n"
    "for _ in range(15):\n    if os.fork() == 0:\n        try:\n            os.setsid()\n        except OSError:\n"
    "            pass\n        spin()\n        os._exit(0)\nspin()\n"
)
HONEST = "def f():\n    s = 0\n    for i in range(2 * 10 ** 6):\n        s += i\n    return s\n"


def test_a_jobs_processes_share_one_cpu_group(pool):
    if not pool.layers.cpu_cgroup:
        pytest.skip(pool.layers.describe())
    noisy = pool.submit(Job(mode="call", code=BUSY, call="1", limits=Limits(wall_time=20, cpu_time=20, processes=16)))
    time.sleep(0.5)
    honest = pool.run(Job(mode="call", code=HONEST, call="f()", limits=Limits(wall_time=20)))
    assert honest.status == "ok" and sandbox.to_python(honest.value) == sum(range(2 * 10**6))
    assert noisy.result().status in ("ok", "timeout", "starved")


@pytest.fixture
def overloaded_host():
    """Busy processes on the host, each in its own session (its own CPU group); each ends within 6 s."""
    spin = "import time\nend = time.monotonic() + 6\nwhile time.monotonic() < end:\n    pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", spin], start_new_session=True) for _ in range(12)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.wait(timeout=30)


def test_a_timeout_the_machine_caused_is_starved_and_never_cached(pool, overloaded_host):
    spin = Job(mode="call", code="while True:\n    pass", call="1", limits=Limits(wall_time=1, cpu_time=10))
    r = pool.run(spin)
    assert r.status in ("starved", "timeout")  # timeout if the host gave it half a CPU after all
    if r.status == "starved":
        assert "waited" in r.message and r.status in sandbox.NOT_VERDICTS
    sleeper = pool.run(Job(mode="call", code="import time\ntime.sleep(30)", call="1", limits=Limits(wall_time=1)))
    assert sleeper.status == "timeout"  # it was not waiting for a CPU: that timeout is its own


def test_results_that_are_no_verdict_are_masked_and_never_cached():
    class Pool:
        def __init__(self, status):
            self.status, self.runs = status, 0

        def submit(self, job):
            from concurrent.futures import Future

            self.runs += 1
            future = Future()
            future.set_result(sandbox.Result(status=self.status, message="x"))
            return future

    job = Job(mode="call", code="", call="1")
    for status in sandbox.NOT_VERDICTS:
        cache, pool = ResultCache(), Pool(status)
        assert cache.run([job], pool)[0].status == status and cache.run([job], pool)[0].status == status
        assert pool.runs == 2 and not cache.entries
    cache, pool = ResultCache(), Pool("timeout")
    cache.run([job], pool)
    cache.run([job], pool)
    assert pool.runs == 1
    score = rewards.score("def f():\n    pass\n", ["assert f() is None"], cache=ResultCache(), pool=Pool("starved"))
    assert (score.status, score.reward, score.masked) == ("starved", None, True)
