"""What a trace records for the kinds of code people write (run on every backend)."""

import sys
import textwrap

import pytest

import tracer
from tracer import env, render, to_python


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
    assert changes(t, "f")[-1] == (5, {"n": "0", "d": "defaultdict(int, {'a': 0})"})


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
    assert bool(comprehension_frames) == (not env.INLINED_COMPREHENSIONS)  # PEP 709


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
    if env.HAS_MONITORING:
        assert all(sys.monitoring.get_tool(i) != "execalign" for i in range(6))


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backend"):
        tracer.trace("x = 1", backend="ptrace")


def rendered(variables):
    return {k: render(v) for k, v in variables.items()}


def states_of(t, function):
    return [s for s in t.replay() if s.step.function.rsplit(".", 1)[-1] == function]


def test_replay_keeps_each_frames_variables_across_its_callees(backend):
    t = run(
        """
        def g(x):
            x = x * 10
            return x

        def f():
            a = 1
            b = g(a)
            del a
            return b
    """,
        "f()",
        backend=backend,
    )
    f = [(s.step.event, s.step.line, rendered(s.before), rendered(s.after)) for s in states_of(t, "f")]
    assert f == [
        ("call", 6, {}, {}),
        ("line", 7, {}, {"a": "1"}),
        ("line", 8, {"a": "1"}, {"a": "1", "b": "10"}),  # its changes come after g's steps, in f's frame
        ("line", 9, {"a": "1", "b": "10"}, {"b": "10"}),  # deleted names leave `after`
        ("line", 10, {"b": "10"}, {"b": "10"}),
        ("return", 10, {"b": "10"}, {"b": "10"}),
    ]
    g = [(s.step.event, rendered(s.before), rendered(s.after), rendered(s.changed)) for s in states_of(t, "g")]
    assert g == [
        ("call", {}, {"x": "1"}, {"x": "1"}),  # a call step brings the arguments
        ("line", {"x": "1"}, {"x": "10"}, {"x": "10"}),
        ("line", {"x": "10"}, {"x": "10"}, {}),
        ("return", {"x": "10"}, {"x": "10"}, {}),
    ]
    line8 = next(s for s in t.replay() if s.step.line == 8)
    assert [s.step.function for s in t.replay()][line8.index + 1] == "g"  # the callee's steps come next
    assert t.steps[line8.index] is line8.step


def test_replay_of_a_generator_keeps_its_variables_across_resumptions(backend):
    t = run(
        """
        def running(xs):
            total = 0
            for x in xs:
                total += x
                yield total

        def f():
            return list(running([1, 2, 3]))
    """,
        "f()",
        backend=backend,
    )
    gen = states_of(t, "running")
    resumed = [rendered(s.before) for s in gen if s.step.event == "call"]
    assert resumed == [
        {},
        {"xs": "[1, 2, 3]", "total": "1", "x": "1"},
        {"xs": "[1, 2, 3]", "total": "3", "x": "2"},
        {"xs": "[1, 2, 3]", "total": "6", "x": "3"},
    ]
    assert rendered(gen[-1].after) == rendered(t.frames[gen[0].step.frame].locals)


def test_replay_at_module_level_and_after_equals_frame_locals(backend):
    t = run(
        """
        n = 1
        items = []
        items.append(n)
        n += 1
        del items
    """,
        backend=backend,
    )
    module = [(s.step.line, rendered(s.after)) for s in t.replay() if s.step.event == "line"]
    assert module == [
        (2, {"n": "1"}),
        (3, {"n": "1", "items": "[]"}),
        (4, {"n": "1", "items": "[1]"}),
        (5, {"n": "2", "items": "[1]"}),
        (6, {"n": "2"}),
    ]
    last = {}
    for state in t.replay():
        last[state.step.frame] = state.after
    assert last == {frame.id: frame.locals for frame in t.frames}


def test_dropped_events_at_the_recursion_limit_are_counted(backend):
    t = run(
        """
        def down(n):
            return down(n + 1)

        def f():
            try:
                down(0)
            except RecursionError:
                return "deep"
    """,
        "f()",
        backend=backend,
    )
    assert to_python(t.returned) == "deep"
    assert t.dropped > 0
    assert tracer.Trace.from_msgpack(t.to_msgpack()).dropped == t.dropped


def test_system_exit_ends_a_program_and_is_an_exception_of_a_module():
    program = tracer.trace("import sys\nprint('out')\nsys.exit('bye')")
    assert (program.exit_code, program.exception, program.stdout, program.stderr) == (1, None, "out\n", "bye\n")
    called = tracer.trace("import sys\ndef f():\n    sys.exit(3)", "f()", namespace={"__name__": "solution"})
    assert called.exit_code == 3 and called.exception == tracer.ExceptionInfo("SystemExit", "3")
    assert called.returned is None
    bare = tracer.trace("raise SystemExit", namespace={"__name__": "solution"})
    assert bare.exit_code == 0 and bare.exception == tracer.ExceptionInfo("SystemExit", "")


OUTCOMES = [
    ("def f(x):\n    return [x] * 2", "f(3)"),
    ("print('a')\nimport sys\nsys.exit(4)", None),
    ("import sys\nsys.stderr.write('e')\nsys.exit([1])", None),
    ("def f():\n    raise KeyError('k')", "f()"),
    ("def f(:\n", "f()"),
    ("x = 1", "x +"),
    ("def f():\n    return g()\ndef g():\n    return 1 / 0", "f()"),
]


@pytest.mark.parametrize("source, call", OUTCOMES)
@pytest.mark.parametrize("name", ["__main__", "solution"])
def test_a_run_ends_the_same_traced_or_not(backend, source, call, name):
    """backend "none" is the same runner: only the steps and frames differ."""

    def outcome(t):
        return (t.returned, t.exception, t.exit_code, t.stdout, t.stderr, t.call_step >= 0)

    traced = tracer.trace(source, call, backend=backend, namespace={"__name__": name})
    untraced = tracer.trace(source, call, backend="none", namespace={"__name__": name})
    assert outcome(untraced) == outcome(traced)
    assert untraced.backend == "none" and not untraced.steps and not untraced.frames


def test_the_namespace_keeps_the_names_the_code_defines():
    namespace = {"__name__": "solution"}
    t = tracer.trace("def f():\n    return 1\nif __name__ == '__main__':\n    x = 2", namespace=namespace)
    assert t.exception is None and namespace["f"]() == 1 and "x" not in namespace
