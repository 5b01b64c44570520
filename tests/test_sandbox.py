"""The sandbox's grading modes, statuses, comparator and pool API."""

import asyncio
import io
import os
import signal
import threading
import time
from concurrent.futures import Future

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sandbox
import tracer
from sandbox import Job, Limits, compare, wire
from sandbox.verdict import Evidence, TestsRun, classify
from sandbox.wire import CallRequest, ChannelError, Decoder, Exited, Ready, Returned, SetupDone
from tests.sandbox_util import quick
from tests.strategies import values

F = "def f(x):\n    y = x * 2\n    return y + 1\n"


def test_layers_are_reported(pool):
    text = pool.layers.describe()
    assert text.startswith("sandbox layers:")
    if os.geteuid() == 0 and pool.layers.namespaces:
        assert "network namespace" in pool.layers.network


def test_call_mode_returns_the_typed_value(pool):
    r = pool.run(Job(mode="call", code=F, call="f(3)"))
    assert r.status == "ok" and sandbox.to_python(r.value) == 7
    r = pool.run(Job(mode="call", code="def f():\n    return (1, {2}, True, None, 2**100)", call="f()"))
    assert sandbox.to_python(r.value) == (1, {2}, True, None, 2**100)


def test_call_mode_with_trace(pool):
    r = pool.run(Job(mode="call", code=F, call="f(3)", trace=True))
    assert r.status == "ok"
    lines = [(s.step.line, {k: v.v for k, v in s.changed.items()}) for s in r.trace.replay() if s.frame.function == "f"]
    assert (2, {"y": 6}) in lines
    assert sandbox.to_python(r.trace.returned) == 7


def test_user_exception_is_error_with_type_and_message(pool):
    r = pool.run(Job(mode="call", code="def f():\n    raise KeyError('k')", call="f()"))
    assert r.status == "error" and r.exception.type == "KeyError" and r.message == "KeyError: 'k'"


def test_syntax_error_is_error(pool):
    r = pool.run(Job(mode="call", code="def f(:", call="f()"))
    assert r.status == "error" and r.exception.type == "SyntaxError"


def test_asserts_mode_counts_every_assertion(pool):
    r = pool.run(Job(mode="asserts", code=F, tests=["assert f(3) == 7", "assert f(0) == 2", "assert f(1) == 3"]))
    assert (r.status, r.passed, r.total) == ("failed", 2, 3)
    assert r.tests[1].message == "expected 2, got 1"
    r = pool.run(Job(mode="asserts", code=F, tests=["assert f(3) == 7"]))
    assert (r.status, r.passed, r.total) == ("passed", 1, 1)


def test_asserts_humaneval_check_block_and_helpers(pool):
    code = "def helper(x):\n    return x + 1\n\ndef inc_all(xs):\n    return [helper(x) for x in xs]\n"
    check = (
        "def check(candidate):\n    assert candidate([1, 2]) == [2, 3]\n    for i in range(3):\n"
        "        assert helper(i) == i + 1\n    assert candidate([]) == [0]\n"
    )
    r = pool.run(Job(mode="asserts", code=code, tests=check, entry_point="inc_all", entry_points=["helper"]))
    assert (r.status, r.passed, r.total) == ("failed", 4, 5)
    assert r.tests[-1].message == "expected [0], got []"
    # a helper the task does not name as an entry point is not taken from the solution
    r = pool.run(Job(mode="asserts", code=code, tests=check, entry_point="inc_all"))
    assert (r.status, r.passed, r.total) == ("failed", 1, 5)
    assert r.tests[1].message == "NameError: name 'helper' is not defined"


def test_asserts_exceptions_cross_as_builtin_types(pool):
    code = "def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n"
    tests = (
        "def check(f):\n    try:\n        f(-1)\n        assert False\n    except ValueError:\n        pass\n"
        "    assert f(2) == 2\n"
    )
    r = pool.run(Job(mode="asserts", code=code, tests=tests, entry_point="f"))
    assert (r.status, r.passed, r.total) == ("passed", 1, 1)


def test_asserts_missing_entry_point_and_broken_solution(pool):
    r = pool.run(Job(mode="asserts", code="x = 1", tests=["assert f(1) == 1"], entry_point="f"))
    assert r.status == "failed" and "does not define f" in r.message
    r = pool.run(Job(mode="asserts", code="raise RuntimeError('boom')", tests=["assert f(1) == 1"]))
    assert r.status == "error" and "RuntimeError: boom" in r.message


def test_stdio_mode(pool):
    code = "n = int(input())\nfor i in range(n):\n    print(i * 0.5, end='  \\n')\n"
    r = pool.run(Job(mode="stdio", code=code, stdin="3\n", expected_stdout="0.0\n0.5\n1.0\n"))
    assert r.status == "passed", r.message
    r = pool.run(Job(mode="stdio", code=code, stdin="3\n", expected_stdout="0.0\n0.5\n1.5\n"))
    assert r.status == "failed" and r.message == "line 3: expected '1.5', got '1.0'"
    r = pool.run(Job(mode="stdio", code=code, stdin="2\n", expected_stdout="0\n0.5000001\n", float_tolerance=1e-6))
    assert r.status == "passed"


def test_script_mode_argv_and_exit_code(pool):
    r = pool.run(Job(mode="script", code="import sys\nprint(sys.argv[1:])\nsys.exit(3)", argv=["a", "b"]))
    assert r.status == "ok" and r.stdout == "['a', 'b']\n" and r.exit_code == 3


def test_large_stdin_and_result(pool):
    data = "x" * (3 << 20)
    r = pool.run(Job(mode="call", code="import sys\ns = sys.stdin.read()", call="len(s)", stdin=data))
    assert r.status == "ok" and sandbox.to_python(r.value) == len(data)
    r = pool.run(Job(mode="call", code="", call="list(range(50000))"))
    assert sandbox.to_python(r.value) == list(range(50000))


def test_cpu_limit_is_a_timeout(pool):
    r = pool.run(Job(mode="call", code="while True:\n    pass", limits=Limits(wall_time=20, cpu_time=1)))
    # the CPU time is reported; its exact figure is not checked: on a loaded VM the kernel's rusage can read
    # well below the RLIMIT_CPU that fired (tick-based accounting), and timing asserts have no place here
    assert r.status == "timeout" and "CPU" in r.message and r.cpu_time > 0


def test_map_keeps_order_and_many_threads_can_submit(pool):
    jobs = [Job(mode="call", code=F, call=f"f({i})") for i in range(40)]
    assert [sandbox.to_python(r.value) for r in pool.map(jobs, progress=True)] == [2 * i + 1 for i in range(40)]
    results = {}

    def worker(k):
        results[k] = pool.run(Job(mode="call", code=F, call=f"f({k})"))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {k: sandbox.to_python(r.value) for k, r in results.items()} == {k: 2 * k + 1 for k in range(8)}


def test_async_variant(pool):
    async def main():
        return await asyncio.gather(*(pool.run_async(Job(mode="call", code=F, call=f"f({i})")) for i in range(5)))

    assert [sandbox.to_python(r.value) for r in asyncio.run(main())] == [1, 3, 5, 7, 9]


def test_reuse_leaks_no_file_descriptors_threads_files_or_memory(pool):
    import psutil

    writer = Job(mode="call", code="open('left.txt', 'w').write('x' * 1000)\nprint('x')", call="1")
    pool.map([writer] * 100)
    before_fds, before_threads = len(os.listdir("/proc/self/fd")), threading.active_count()
    before_rss = psutil.Process().memory_info().rss
    pool.map([writer] * 300)
    assert len(os.listdir("/proc/self/fd")) <= before_fds
    assert threading.active_count() <= before_threads
    assert psutil.Process().memory_info().rss - before_rss < 16 << 20
    deadline = time.monotonic() + 30  # the janitor removes what jobs leave, beside each zygote
    for shard in pool.shards:
        if os.path.isdir(shard.base):  # outside the zygote's mount namespace it is the host's view
            while [f for _, _, files in os.walk(shard.base) for f in files] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [f for _, _, files in os.walk(shard.base) for f in files] == []


def test_zygote_restart_after_it_dies():
    with sandbox.Pool(1) as own:
        assert quick(own).status == "ok"
        os.kill(own.shards[0].zygote_pid, signal.SIGKILL)
        statuses = [own.run(Job(mode="call", code="", call="1")).status for _ in range(3)]
        assert statuses[-1] == "ok" and set(statuses) <= {"ok", "infra_error"}


def test_pools_on_one_host_hold_disjoint_uid_blocks(pool):
    if os.geteuid() != 0:
        pytest.skip("uids per slot need root")
    with sandbox.Pool(2) as second:
        assert set(second.uids).isdisjoint(pool.uids) and len(second.uids) == 2
        assert quick(second).status == "ok" and quick(pool).status == "ok"
        uid = second.run(Job(mode="call", code="import os", call="os.getuid()"))
        assert sandbox.to_python(uid.value) in second.uids


# ---------------------------------------------------------------- comparator


def test_comparator_rules():
    assert compare.matches("a \nb\n\n\n", "a\nb")
    assert compare.matches("a\r\nb\r\n", "a\nb\n")
    assert not compare.matches(" a", "a")
    assert not compare.matches("a b", "a  b")
    assert compare.explain("a\nb\nc", "a\nb") == "expected 2 lines, got 3"
    assert compare.matches("1.0000001 x", "1.0 x", float_tolerance=1e-6)
    assert not compare.matches("1.1 x", "1.0 x", float_tolerance=1e-6)
    assert compare.matches("nan", "nan", float_tolerance=0.1)


@given(st.text(alphabet="ab 1.\n", max_size=40))
@settings(max_examples=200)
def test_comparator_accepts_its_own_normalisation(text):
    padded = "\n".join(line + "  " for line in text.split("\n")) + "\n\n"
    assert compare.matches(padded, text)
    assert compare.matches(text, text, float_tolerance=1e-9)


@pytest.mark.parametrize(
    "mode, code, call",
    [
        ("call", "import sys\ndef f():\n    sys.exit(3)", "f()"),  # a call that exits is an error
        ("call", "def f():\n    return [1, 2]", "f()"),
        ("call", "def f(:", "f()"),
        ("call", "def f():\n    return 1 / 0", "f()"),
        ("script", "import sys\nprint('a')\nsys.exit('bye')", None),  # a program may exit
        ("script", "raise ValueError('v')", None),
    ],
)
def test_a_job_ends_the_same_traced_or_not(pool, mode, code, call):
    """Both run through the tracer's one runner: only `trace` differs."""
    results = [pool.run(Job(mode=mode, code=code, call=call, trace=trace)) for trace in (False, True)]
    untraced, traced = ((r.status, r.message, r.value, r.exception, r.exit_code, r.stdout, r.stderr) for r in results)
    assert untraced == traced
    assert results[0].trace is None and results[1].trace is not None


# ---------------------------------------------------------------- the verdict (no process runs)

EXITED = 0  # os.wait status of a clean exit
KEY_ERROR = tracer.ExceptionInfo(type="KeyError", message="'k'")
PASS, FAIL = (
    sandbox.TestOutcome("assert f(1) == 3", True),
    sandbox.TestOutcome("assert f(0) == 2", False, "expected 2, got 1"),
)


def _exit(code: int) -> int:
    return code << 8  # os.wait status of exit(code)


def _evidence(**changes):
    base = dict(mode="call", wait_status=EXITED, setup_done=True, answered=True)
    return Evidence(**{**base, **changes})


# (what happened, evidence, status, start of the message)
VERDICTS = [
    ("a call that returned", _evidence(), "ok", ""),
    ("a script that exited 3", _evidence(mode="script", exit_code=3), "ok", ""),
    (
        "a script's sys.exit",
        _evidence(mode="script", exception=tracer.ExceptionInfo(type="SystemExit", message="2")),
        "ok",
        "",
    ),
    ("a SIGPIPE is not a kill", _evidence(wait_status=signal.SIGPIPE), "ok", ""),
    ("a bug of the judge", _evidence(judge_error="TypeError: x"), "infra_error", "judge error: TypeError: x"),
    (
        "the zygote did not fork",
        _evidence(spawned=False, zygote_failure="EAGAIN"),
        "infra_error",
        "spawn failed: EAGAIN",
    ),
    ("the zygote never answered", _evidence(spawned=False), "infra_error", "spawn failed: no answer"),
    ("no exit report", _evidence(wait_status=None), "infra_error", "the zygote did not report"),
    (
        "the zygote died",
        _evidence(wait_status=None, zygote_failure="the zygote died"),
        "infra_error",
        "the zygote died",
    ),
    (
        "isolation could not be set up",
        _evidence(setup_done=False, answered=False, wait_status=_exit(wire.SETUP_FAILED), stderr="no landlock\n"),
        "infra_error",
        "the child could not set up its isolation: no landlock",
    ),
    (
        "died during setup, even past the deadline",
        _evidence(setup_done=False, answered=False, wait_status=signal.SIGKILL, killed_for="timeout"),
        "infra_error",
        "the child died before its setup ended",
    ),
    (
        "the wall clock",
        _evidence(answered=False, killed_for="timeout", wait_status=signal.SIGKILL),
        "timeout",
        "wall time",
    ),
    (
        "the wall clock while sleeping, on a busy machine",
        _evidence(answered=False, killed_for="timeout", wait_status=signal.SIGKILL, run_time=0.01, wait_time=0.01),
        "timeout",
        "wall time",
    ),
    (
        "the wall clock, having had its CPU share",
        _evidence(answered=False, killed_for="timeout", wait_status=signal.SIGKILL, run_time=6.0, wait_time=9.0),
        "timeout",
        "wall time",
    ),
    (
        "the wall clock, waiting for a CPU most of the time",
        _evidence(answered=False, killed_for="timeout", wait_status=signal.SIGKILL, run_time=1.0, wait_time=8.5),
        "starved",
        "wall time limit of 10 s, but the job ran 1.00 s and waited 8.50 s",
    ),
    (
        "killed for breaking the protocol, whatever else it did",
        _evidence(killed_for="tampered", tampered=["a Ready message the judge did not ask for"], cpu_time=99.0),
        "error",
        "the code broke its result channel: a Ready message",
    ),
    (
        "the wall clock after passing tests",
        _evidence(mode="asserts", killed_for="timeout", tests=TestsRun(outcomes=[PASS])),
        "timeout",
        "wall time",
    ),
    (
        "too much output",
        _evidence(killed_for="output_exceeded", wait_status=signal.SIGKILL),
        "output_exceeded",
        "output over",
    ),
    ("SIGXCPU", _evidence(answered=False, wait_status=signal.SIGXCPU), "timeout", "CPU time limit"),
    (
        "SIGKILL at the CPU limit",
        _evidence(answered=False, wait_status=signal.SIGKILL, cpu_time=10.0),
        "timeout",
        "CPU",
    ),
    (
        "MemoryError",
        _evidence(exception=tracer.ExceptionInfo(type="MemoryError", message="")),
        "memory_exceeded",
        "memory budget",
    ),
    (
        "killed near the memory budget",
        _evidence(answered=False, wait_status=signal.SIGKILL, peak_memory=500 << 20),
        "memory_exceeded",
        "memory budget of 512 MiB",
    ),
    ("a forged message", _evidence(tampered=["a message without the job's nonce"]), "error", "the code tampered"),
    (
        "SIGSEGV far from the memory budget",
        _evidence(answered=False, wait_status=signal.SIGSEGV),
        "killed",
        "killed by signal SIGSEGV",
    ),
    (
        "no result",
        _evidence(answered=False, wait_status=_exit(3)),
        "error",
        "the program ended without a result (exit status 3)",
    ),
    ("the code raised", _evidence(exception=KEY_ERROR, exit_code=1), "error", "KeyError: 'k'"),
    (
        "sys.exit in a call",
        _evidence(exception=tracer.ExceptionInfo(type="SystemExit", message="0")),
        "error",
        "SystemExit",
    ),
    ("stdout as expected", _evidence(mode="stdio"), "passed", ""),
    (
        "stdout differs",
        _evidence(mode="stdio", stdout_mismatch="line 3: expected '1.5', got '1.0'"),
        "failed",
        "line 3",
    ),
    ("every assertion holds", _evidence(mode="asserts", tests=TestsRun(outcomes=[PASS, PASS])), "passed", ""),
    (
        "one assertion fails",
        _evidence(mode="asserts", tests=TestsRun(outcomes=[PASS, FAIL])),
        "failed",
        "assert f(0) == 2: expected 2, got 1",
    ),
    ("no assertion ran", _evidence(mode="asserts"), "failed", "no assertion ran"),
    (
        "no entry point",
        _evidence(mode="asserts", tests=TestsRun(missing=["f"])),
        "failed",
        "the solution does not define f",
    ),
    (
        "the solution raised first",
        _evidence(mode="asserts", exception=KEY_ERROR),
        "error",
        "the solution raised before the tests",
    ),
    (
        "the solution exited first",
        _evidence(mode="asserts", answered=False),
        "error",
        "the solution ended before the tests ran",
    ),
    (
        "lost during the tests",
        _evidence(mode="asserts", tests=TestsRun(outcomes=[PASS], lost=True)),
        "error",
        "the solution process ended",
    ),
    (
        "killed during the tests",
        _evidence(mode="asserts", wait_status=signal.SIGTERM, tests=TestsRun(lost=True)),
        "killed",
        "killed by signal SIGTERM",
    ),
    (
        "killed after the tests failed",
        _evidence(mode="asserts", wait_status=signal.SIGTERM, tests=TestsRun(outcomes=[FAIL])),
        "failed",
        "assert f(0) == 2",
    ),
]


@pytest.mark.parametrize(
    ("evidence", "status", "message"), [row[1:] for row in VERDICTS], ids=[row[0] for row in VERDICTS]
)
def test_classify(evidence, status, message):
    got_status, got_message = classify(evidence)
    assert got_status == status and got_message.startswith(message), (got_status, got_message)
    assert bool(got_message) == bool(message)


def test_classify_table_covers_every_status():
    assert {row[2] for row in VERDICTS} == set(sandbox.STATUSES)


def test_result_carries_the_evidence(pool):
    r = pool.run(Job(mode="script", code="import os, sys\nprint('out', flush=True)\nos.kill(os.getpid(), 9)"))
    assert (r.status, r.signal, r.exit_code, r.stdout) == ("killed", signal.SIGKILL, None, "out\n")
    r = pool.run(Job(mode="script", code="import sys\nsys.stderr.write('e')\nsys.exit(4)"))
    assert (r.status, r.exit_code, r.signal, r.stderr) == ("ok", 4, None, "e")


# ---------------------------------------------------------------- wire


@given(st.lists(st.tuples(st.text(max_size=8), values), min_size=1, max_size=4), st.data())
@settings(max_examples=100, deadline=None)
def test_messages_survive_any_chunking(items, data):
    nonce = b"n" * 16
    names = {k: wire.Answer(tracer.encode(v), i) for i, (k, v) in enumerate(items)}
    messages = [SetupDone(), Ready(nonce, names=names)]
    for i, (name, value) in enumerate(items):
        messages.append(Returned(nonce, tracer.encode(value), handle=i))
        messages.append(CallRequest(i, [tracer.encode(value), wire.handle_value(i)], {name: tracer.encode(value)}))
        messages.append(wire.AttrRequest(i, name))
    stream = b"".join(wire.pack(m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    kinds = wire.FromChild | CallRequest | wire.AttrRequest
    decoder = Decoder[kinds](kinds, 1 << 20)
    got = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)]):
        got += decoder.feed(stream[start:end])
    assert got == messages
    assert [Decoder[kinds](kinds, 1 << 20).unpack(wire.pack(m)) for m in messages] == messages


def test_wire_refuses_oversized_cut_and_malformed_messages():
    decoder = Decoder[wire.FromZygote](wire.FromZygote, 200)
    exited = wire.pack(Exited(1, 0, 0.5, 1 << 20, 0))
    assert decoder.unpack(exited) == Exited(1, 0, 0.5, 1 << 20, 0)
    with pytest.raises(ChannelError, match="not one whole message"):
        decoder.unpack(exited[:-1])
    with pytest.raises(ChannelError, match="over the 200-byte cap"):
        list(decoder.feed(wire.pack(wire.SpawnFailed(1, "x" * 200))))
    with pytest.raises(ChannelError, match="malformed"):
        list(Decoder[wire.FromZygote](wire.FromZygote, 200).feed(wire.pack(SetupDone())))  # not a zygote message
    # what came before a bad message is handed out first (a SetupDone followed by junk is still a SetupDone)
    messages = Decoder[wire.FromChild](wire.FromChild, 200).feed(wire.pack(SetupDone()) + b"\x00\x00\x00\x02\xc1\xc1")
    assert next(messages) == SetupDone()
    with pytest.raises(ChannelError, match="malformed"):
        next(messages)
    deep = b"\x83\xa4type\xa8returned\xa5nonce\xc4\x01n\xa5value" + b"\x82\xa1t\xa4list\xa5items\x91" * 100_000
    with pytest.raises(ChannelError, match="nested too deep"):  # a DecodeError, never a RecursionError
        Decoder[wire.FromChild](wire.FromChild, 1 << 24).unpack(len(deep).to_bytes(4, "big") + deep)
    read_end, write_end = os.pipe()
    os.write(write_end, exited[:-2])
    os.close(write_end)
    with pytest.raises(ChannelError, match="closed in the middle"):
        decoder.read(read_end)
    os.close(read_end)


def test_time_the_judge_spends_on_the_tests_is_not_the_solutions(pool):
    # the child waits for the judge meanwhile: its wall time counts only while it has the turn
    tests = ["import time\ntime.sleep(1.5)\nassert f(1) == 2", "time.sleep(1.5)\nassert f(2) == 3"]
    r = pool.run(Job(mode="asserts", code=F.replace("x * 2", "x"), tests=tests, limits=Limits(wall_time=2)))
    assert (r.status, r.passed, r.total) == ("passed", 2, 2)


def test_child_gone_during_the_tests_is_the_codes_error(pool):
    # the code ends its own process in the middle of the tests
    code = "import os\nX = 1\ndef f():\n    os._exit(0)\n"
    r = pool.run(Job(mode="asserts", code=code, tests=["assert X == 1", "assert f() == 1"]))
    assert (r.status, r.message, r.passed, r.total) == ("error", "the solution process ended during the tests", 1, 2)
    # the code breaks its own control channel: the child's reader was bound before the code ran
    code = "import os\nX = 1\nos.read = lambda *a: os._exit(0)\n"
    r = pool.run(Job(mode="asserts", code=code, tests=["assert X == 1"]))
    assert r.status == "error" and r.tampered == ["the code replaced os.read on the child's reporting path"]


# ---------------------------------------------------------------- progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _finish_later(futures, delay):
    def finish():
        for i, f in enumerate(futures):
            time.sleep(delay)
            f.set_result(i)

    threading.Thread(target=finish, daemon=True).start()


@pytest.mark.parametrize("stream", [io.StringIO(), _Terminal()], ids=["log", "terminal"])
def test_track_returns_results_in_order_and_reports_progress(stream):
    cached = [Future() for _ in range(3)]
    for f in cached:
        f.set_result("hit")
    running = [Future() for _ in range(4)]
    _finish_later(running, 0.02)
    assert sandbox.track(cached + running, "demo", stream=stream, interval=0.01) == ["hit"] * 3 + [0, 1, 2, 3]
    text = stream.getvalue()
    final = text.replace("\r", "\n").strip().splitlines()[-1]
    assert "7/7 done" in final and "4 in " in final and "3 were done already" in final
    if isinstance(stream, _Terminal):
        assert text.startswith("\rdemo [") and text.endswith("\n") and "#" * 30 in final
    else:
        assert "\r" not in text and all(line.startswith("demo: ") for line in text.splitlines())


def test_track_of_nothing_and_of_cache_hits_only():
    stream = io.StringIO()
    assert sandbox.track([], "empty", stream=stream) == []
    done = Future()
    done.set_result(1)
    assert sandbox.track([done], "hits", stream=stream) == [1]
    assert stream.getvalue().splitlines()[-1].startswith("hits: 1/1 done (in ")
