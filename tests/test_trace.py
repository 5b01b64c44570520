"""What a trace records for the kinds of code people write (run on every backend)."""

import sys
import textwrap

import pytest

import tracer
from tracer import render, to_python


def steps_of(t, function):
    return [s for s in t.steps if s.function.rsplit(".", 1)[-1] == function]


def changes(t, function):
    """(line, {name: rendered}) for each line step of `function` that changed something."""
    return [
        (s.line, {k: render(v) for k, v in s.changes.items()})
        for s in steps_of(t, function)
        if s.event == "line" and (s.changes or s.deleted)
    ]


def run(source, call=None, **kw):
    return tracer.trace(textwrap.dedent(source), call, **kw)


def test_each_line_with_what_it_changed(backend):
    t = run(
        """
        def f(x):
            y = x * 2
            return y + 1
    """,
        "f(3)",
        backend=backend,
    )
    assert to_python(t.returned) == 7
    f = steps_of(t, "f")
    assert [(s.event, s.line) for s in f] == [("call", 2), ("line", 3), ("line", 4), ("return", 4)]
    assert render(f[0].changes["x"]) == "3"
    assert render(f[1].changes["y"]) == "6"
    assert render(f[-1].value) == "7"
    frame = t.frames[f[0].frame]
    assert {k: render(v) for k, v in frame.locals.items()} == {"x": "3", "y": "6"}
    assert frame.defined_at == {"x": 2, "y": 3}
    assert t.steps[t.call_step].function == "f" and t.steps[t.call_step].event == "call"


def test_loops_count_hits_and_in_place_mutation(backend):
    t = run(
        """
        def f(items):
            out = []
            total = 0
            for x in items:
                total += x
                out.append(total)
            return out
    """,
        "f([1, 2, 3])",
        backend=backend,
    )
    assert changes(t, "f") == [
        (3, {"out": "[]"}),
        (4, {"total": "0"}),
        (5, {"x": "1"}),
        (6, {"total": "1"}),
        (7, {"out": "[1]"}),
        (5, {"x": "2"}),
        (6, {"total": "3"}),
        (7, {"out": "[1, 3]"}),
        (5, {"x": "3"}),
        (6, {"total": "6"}),
        (7, {"out": "[1, 3, 6]"}),
    ]
    line5 = [s.hit for s in steps_of(t, "f") if s.event == "line" and s.line == 5]
    assert line5 == [1, 2, 3, 4]


def test_mutation_through_an_alias_and_a_callee(backend):
    t = run(
        """
        def grow(xs):
            xs.append(0)

        def f():
            a = [1]
            b = a
            grow(b)
            b += [2]
            return a
    """,
        "f()",
        backend=backend,
    )
    assert changes(t, "f") == [
        (6, {"a": "[1]"}),
        (7, {"b": "[1]"}),
        (8, {"a": "[1, 0]", "b": "[1, 0]"}),
        (9, {"a": "[1, 0, 2]", "b": "[1, 0, 2]"}),
    ]


def test_defaultdict_reads_insert_keys(backend):
    t = run(
        """
        from collections import defaultdict
        def f():
            d = defaultdict(int)
            n = d['a']
            return d
    """,
        "f()",
        backend=backend,
    )
    assert changes(t, "f")[-1] == (5, {"n": "0", "d": "defaultdict({'a': 0})"})


def test_exceptions_caught_and_uncaught(backend):
    t = run(
        """
        def f(x):
            try:
                y = 1 / x
            except ZeroDivisionError as e:
                y = None
            return g(y)

        def g(y):
            raise ValueError(f"bad {y}")
    """,
        "f(0)",
        backend=backend,
    )
    events = [
        (s.event, s.function.rsplit(".", 1)[-1], s.line, s.exception.type if s.exception else None)
        for s in t.steps[t.call_step :]
        if s.event != "line"
    ]
    assert events == [
        ("call", "f", 2, None),
        ("exception", "f", 4, "ZeroDivisionError"),
        ("call", "g", 9, None),
        ("exception", "g", 10, "ValueError"),
        ("return", "g", 10, "ValueError"),
        ("exception", "f", 7, "ValueError"),
        ("return", "f", 7, "ValueError"),
    ]
    assert t.exception == tracer.ExceptionInfo("ValueError", "bad None")
    assert t.exit_code == 1 and "ValueError: bad None" in t.stderr
    assert t.frames[steps_of(t, "g")[0].frame].exception.type == "ValueError"


def test_generators_keep_one_frame_across_resumptions(backend):
    t = run(
        """
        def squares(n):
            for i in range(n):
                yield i * i

        def f():
            return list(squares(3))
    """,
        "f()",
        backend=backend,
    )
    gen = steps_of(t, "squares")
    assert len({s.frame for s in gen}) == 1
    assert [render(s.value) for s in gen if s.event == "return"] == ["0", "1", "4", "None"]
    assert to_python(t.returned) == [0, 1, 4]
    assert t.frames[gen[0].frame].finished


def test_coroutines(backend):
    t = run(
        """
        import asyncio
        async def add(a, b):
            await asyncio.sleep(0)
            c = a + b
            return c
        def f():
            return asyncio.run(add(1, 2))
    """,
        "f()",
        backend=backend,
    )
    assert to_python(t.returned) == 3
    assert (5, {"c": "3"}) in changes(t, "add")


def test_recursion_depth_and_frames(backend):
    t = run(
        """
        def fact(n):
            if n <= 1:
                return 1
            return n * fact(n - 1)
    """,
        "fact(4)",
        backend=backend,
    )
    calls = [s for s in steps_of(t, "fact") if s.event == "call"]
    assert [s.depth for s in calls] == [0, 1, 2, 3]
    assert [render(s.changes["n"]) for s in calls] == ["4", "3", "2", "1"]
    assert [t.frames[s.frame].parent for s in calls] == [-1, calls[0].frame, calls[1].frame, calls[2].frame]


def test_global_and_nonlocal(backend):
    t = run(
        """
        counter = 0
        def bump():
            global counter
            counter += 1
        def outer():
            n = 0
            def inner():
                nonlocal n
                n += 10
            inner()
            return n
        bump()
    """,
        "outer()",
        backend=backend,
    )
    assert (5, {"counter": "1"}) in changes(t, "bump")
    assert (10, {"n": "10"}) in changes(t, "inner")
    assert (11, {"n": "10"}) in changes(t, "outer")
    module = t.frames[0]
    assert render(module.locals["counter"]) == "1"


def test_classes_methods_and_lambdas(backend):
    t = run(
        """
        class Point:
            def __init__(self, x, y):
                self.x = x
                self.y = y
            def norm1(self):
                return abs(self.x) + abs(self.y)
        key = lambda p: p.norm1()
        def f():
            p = Point(3, -4)
            return key(p)
    """,
        "f()",
        backend=backend,
    )
    assert to_python(t.returned) == 7
    init = changes(t, "__init__")
    assert init == [(4, {"self": "Point(x=3)"}), (5, {"self": "Point(x=3, y=-4)"})]
    assert any(s.function == "<lambda>" for s in t.steps)
    assert any(s.function == "Point.norm1" for s in t.steps)


def test_comprehensions(backend):
    t = run(
        """
        def f(xs):
            ys = [x * 2 for x in xs]
            return ys
    """,
        "f([1, 2])",
        backend=backend,
    )
    assert to_python(t.returned) == [2, 4]
    assert (3, {"ys": "[2, 4]"}) in changes(t, "f")
    comprehension_frames = [fr for fr in t.frames if "listcomp" in fr.function]
    assert bool(comprehension_frames) == (sys.version_info < (3, 12))  # inlined since 3.12 (PEP 709)


def test_one_line_loop_is_a_step_per_iteration(backend):
    t = run(
        """
        def f():
            total = 0
            for i in range(3): total += i
            return total
    """,
        "f()",
        backend=backend,
    )
    hits = [s.hit for s in steps_of(t, "f") if s.event == "line" and s.line == 4]
    assert hits == [1, 2, 3, 4]


def test_input_from_stdin_and_output_capture(backend):
    t = run(
        """
        name = input()
        n = int(input())
        print("hello", name * n)
    """,
        backend=backend,
        stdin="ab\n2\n",
    )
    assert t.stdout == "hello abab\n"
    assert render(t.frames[0].locals["name"]) == "'ab'"


def test_output_is_bounded(backend):
    t = run("print('x' * 5000)", backend=backend, max_output=100)
    assert len(t.stdout) == 100 and t.stdout_more == 4901


def test_threads_are_traced_and_told_apart(backend):
    t = run(
        """
        import threading
        def work(out, k):
            v = k * 10
            out.append(v)
        def f():
            out = []
            th = threading.Thread(target=work, args=(out, 2))
            th.start()
            th.join()
            return out
    """,
        "f()",
        backend=backend,
    )
    assert to_python(t.returned) == [20]
    work = [fr for fr in t.frames if fr.function == "work"]
    assert len(work) == 1 and work[0].thread == 1
    assert render(work[0].locals["v"]) == "20"


def test_library_code_is_one_step(backend):
    t = run(
        """
        import json
        def f():
            s = json.dumps({"a": [1, 2]})
            return sorted([3, 1, 2])
    """,
        "f()",
        backend=backend,
    )
    assert {s.file for s in t.steps} == {"<snippet>"}
    assert [s.line for s in steps_of(t, "f") if s.event == "line"] == [4, 5]


def test_step_cap_stops_recording_but_not_the_program(backend):
    t = run(
        """
        def f():
            total = 0
            for i in range(1000):
                total += i
            return total
    """,
        "f()",
        backend=backend,
        max_steps=50,
    )
    assert len(t.steps) == 50
    assert t.stopped.reason == "max_steps" and t.stopped.steps == 50
    assert to_python(t.returned) == 499500


def test_value_cap_stops_recording(backend):
    t = run(
        """
        def f():
            xs = []
            for i in range(200):
                xs.append(i)
            return len(xs)
    """,
        "f()",
        backend=backend,
        max_values=2000,
    )
    assert t.stopped.reason == "max_values"
    assert to_python(t.returned) == 200


def test_syntax_error_is_recorded_not_raised(backend):
    t = tracer.trace("def f(:\n", backend=backend)
    assert t.exception.type == "SyntaxError" and t.exit_code == 1 and not t.steps


def test_system_exit_code(backend):
    assert tracer.trace("import sys\nsys.exit(4)", backend=backend).exit_code == 4
    assert tracer.trace("raise SystemExit('bye')", backend=backend).stderr == "bye\n"


def test_deleted_variables(backend):
    t = run(
        """
        def f():
            a = 1
            del a
            return 0
    """,
        "f()",
        backend=backend,
    )
    assert [s.deleted for s in steps_of(t, "f") if s.line == 4 and s.event == "line"] == [["a"]]


def test_json_and_msgpack_round_trip(backend):
    t = run(
        """
        def f(x):
            d = {(1, 2): {3, 4}, None: [1.5, float('nan'), -0.0, 10**30, b'\\x00']}
            return d
    """,
        "f(1)",
        backend=backend,
    )
    assert tracer.Trace.from_json(t.to_json()) == t
    assert tracer.Trace.from_msgpack(t.to_msgpack()) == t


def test_tracer_is_off_after_trace(backend):
    tracer.trace("x = 1", backend=backend)
    assert sys.gettrace() is None
    if sys.version_info >= (3, 12):
        assert all(sys.monitoring.get_tool(i) != "execalign" for i in range(6))


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backend"):
        tracer.trace("x = 1", backend="ptrace")
