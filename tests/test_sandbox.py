"""The sandbox's grading modes, statuses, comparator and pool API."""

import asyncio
import os
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sandbox
from sandbox import Job, Limits, compare
from tests.sandbox_util import quick

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
    lines = [(s.line, {k: v.v for k, v in s.changes.items()}) for s in r.trace.steps if s.function == "f"]
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
    r = pool.run(Job(mode="asserts", code=code, tests=check, entry_point="inc_all"))
    assert (r.status, r.passed, r.total) == ("failed", 4, 5)
    assert r.tests[-1].message == "expected [0], got []"


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
    assert r.status == "timeout" and "CPU" in r.message and r.cpu_time >= 0.9


def test_map_keeps_order_and_many_threads_can_submit(pool):
    tasks = [Job(mode="call", code=F, call=f"f({i})") for i in range(40)]
    assert [sandbox.to_python(r.value) for r in pool.map(tasks, progress=True)] == [2 * i + 1 for i in range(40)]
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
    if os.path.isdir(pool.client.base):  # outside the zygote's mount namespace it is the host's view
        leftovers = [f for _, _, files in os.walk(pool.client.base) for f in files]
        assert leftovers == []


def test_zygote_restart_after_it_dies():
    with sandbox.Pool(1) as own:
        assert quick(own).status == "ok"
        own.client.process.kill()
        own.client.process.wait()
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
