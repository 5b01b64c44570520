"""What a trace records for the kinds of code people write (run on every backend)."""

import ast
import pathlib
import sys
import textwrap

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sandbox
import tracer
from benchmarks.tracer_bench import WORKLOADS
from tests.strategies import hashable, values
from tracer import env, render, to_python
from tracer.edits import diff


def function_of(t, step):
    return t.frames[step.frame].function


def steps_of(t, function):
    return [s for s in t.steps if function_of(t, s).rsplit(".", 1)[-1] == function]


def changes(t, function):
    """(line, {name: rendered}) for each line step of `function` that changed something."""
    return [
        (s.step.line, {k: render(v) for k, v in s.changed.items()})
        for s in states_of(t, function)
        if s.step.event == "line" and (s.changed or s.step.deleted)
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
    assert function_of(t, t.steps[t.call_step]) == "f" and t.steps[t.call_step].event == "call"


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
    line5 = [s.hit for s in states_of(t, "f") if s.step.event == "line" and s.step.line == 5]
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
        (s.event, function_of(t, s).rsplit(".", 1)[-1], s.line, s.exception.type if s.exception else None)
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
    assert [t.frames[s.frame].depth for s in calls] == [0, 1, 2, 3]
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
    assert any(function_of(t, s) == "<lambda>" for s in t.steps)
    assert any(function_of(t, s) == "Point.norm1" for s in t.steps)


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
    hits = [s.hit for s in states_of(t, "f") if s.step.event == "line" and s.step.line == 4]
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
    assert {t.frames[s.frame].file for s in t.steps} == {"<snippet>"}
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
    t = run(  # a list of lists is encoded again at each change (a list of atoms is edited, which costs little)
        """
        def f():
            xs = []
            for i in range(200):
                xs.append([i])
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
    return [s for s in t.replay() if s.frame.function.rsplit(".", 1)[-1] == function]


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
    assert [s.frame.function for s in t.replay()][line8.index + 1] == "g"  # the callee's steps come next
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


# ---------------------------------------------------------------- changes in proportion to the change


def test_a_swap_in_a_long_list_costs_about_what_a_scalar_change_costs(backend):
    t = tracer.trace(*WORKLOADS["bubble120"], backend=backend)  # bubble sort of 120 items, each compare swaps
    assert to_python(t.returned) == list(range(1, 121)) and t.stopped is None
    swaps = [s for s in t.steps if s.line == 7]
    assert len(swaps) == 7140 and all(set(s.edits) == {"a"} and not s.changes for s in swaps)
    first = msgspec.json.encode(swaps[0])
    assert first == b'{"f":1,"l":7,"e":{"a":{"p":{"0":{"t":"int","v":119},"1":{"t":"int","v":120}}}}}'
    assert len(t.to_json()) <= 1_000_000  # 19 MB when every change held the whole list
    final = t.frames[1].locals["a"]
    assert to_python(final) == list(range(1, 121))  # final values stay whole
    states = [s for s in t.replay() if s.step.line == 7]
    assert [to_python(s.changed["a"])[:3] for s in states[:2]] == [[119, 120, 118], [119, 118, 120]]
    assert tracer.Trace.from_json(t.to_json()) == t and tracer.Trace.from_msgpack(t.to_msgpack()) == t


def test_containers_changed_in_place_are_edits_and_replay_gives_whole_values(backend):
    t = run(
        """
        class Point:
            def __init__(self):
                self.x = 0

        def f():
            xs = [1, 2, 3]
            d = {"a": 1}
            p = Point()
            grid = [[0, 0], [0, 0]]
            xs.append(4)
            xs.insert(0, 0)
            del xs[2]
            d["b"] = 2
            d["a"] = 5
            del d["a"]
            p.x = 3
            p.y = [1]
            p.y.append(2)
            del p.x
            grid[1][0] = 7
            xs = xs + [9]
            return xs
        """,
        "f()",
        backend=backend,
    )
    f = [s for s in states_of(t, "f") if s.step.event == "line"]
    shown = [(s.step.line, sorted(s.step.edits), rendered(s.changed)) for s in f if s.changed]
    assert shown[4:] == [
        (11, ["xs"], {"xs": "[1, 2, 3, 4]"}),
        (12, ["xs"], {"xs": "[0, 1, 2, 3, 4]"}),
        (13, ["xs"], {"xs": "[0, 1, 3, 4]"}),
        (14, ["d"], {"d": "{'a': 1, 'b': 2}"}),
        (15, ["d"], {"d": "{'a': 5, 'b': 2}"}),
        (16, ["d"], {"d": "{'b': 2}"}),
        (17, ["p"], {"p": "Point(x=3)"}),
        (18, ["p"], {"p": "Point(x=3, y=[1])"}),
        (19, ["p"], {"p": "Point(x=3, y=[1, 2])"}),
        (20, ["p"], {"p": "Point(y=[1, 2])"}),
        (21, ["grid"], {"grid": "[[0, 0], [7, 0]]"}),
        (22, ["xs"], {"xs": "[0, 1, 3, 4, 9]"}),  # rebound to an equal-kind value: an edit too
    ]
    edits = {s.step.line: s.step.edits for s in f}
    assert edits[11]["xs"] == tracer.Edit(splice=tracer.Splice(3, 3, [tracer.encode(4)]))
    assert edits[15]["d"] == tracer.Edit(put={0: tracer.encode(5)})
    assert edits[19]["p"] == tracer.Edit(edit_attrs={"y": tracer.Edit(splice=tracer.Splice(1, 1, [tracer.encode(2)]))})
    assert edits[20]["p"] == tracer.Edit(drop=["x"])
    assert edits[21]["grid"] == tracer.Edit(edit={1: tracer.Edit(put={0: tracer.encode(7)})})
    assert rendered(t.frames[f[0].step.frame].locals)["grid"] == "[[0, 0], [7, 0]]"


def test_an_edit_that_does_not_fit_its_value_is_a_clear_error():
    xs = tracer.encode([1, 2])
    with pytest.raises(ValueError, match="item 5"):
        tracer.Edit(put={5: tracer.encode(0)}).apply(xs)
    with pytest.raises(ValueError, match="splice"):
        tracer.Edit(splice=tracer.Splice(1, 4, [])).apply(xs)
    with pytest.raises(ValueError, match="attributes"):
        tracer.Edit(attrs={"x": xs}).apply(xs)
    t = tracer.trace("xs = [1]\nxs.append(2)\n")
    t.steps[2].edits = {"ys": t.steps[2].edits["xs"]}
    with pytest.raises(ValueError, match="edits 'ys'"):
        list(t.replay())
    assert tracer.Edit(put={0: tracer.encode(7)}).apply(xs) == tracer.encode([7, 2])
    assert xs == tracer.encode([1, 2])  # the value edited is left as it was


edit_values = st.one_of(st.lists(values, max_size=6), st.dictionaries(hashable, values, max_size=5))


@given(edit_values, edit_values)
@settings(max_examples=300, deadline=None)
def test_an_edit_turns_the_old_encoding_into_the_new_one(old, new):
    before, after = tracer.encode(old), tracer.encode(new)
    edit = diff(before, after)
    if type(old) is type(new):
        assert edit is not None
    if edit is not None:
        assert edit.apply(before) == after
        assert msgspec.json.decode(msgspec.json.encode(edit), type=tracer.Edit).apply(before) == after


@given(st.lists(values, min_size=1, max_size=6), st.data())
@settings(max_examples=200, deadline=None)
def test_an_edit_of_a_mutated_list_is_as_small_as_the_mutation(items, data):
    before = tracer.encode(items)
    i = data.draw(st.integers(0, len(items) - 1))
    changed = list(items)
    changed[i] = data.draw(values)
    edit = diff(before, tracer.encode(changed))
    assert edit is not None and edit.apply(before) == tracer.encode(changed)
    assert set(edit.put) | set(edit.edit) <= {i} and edit.splice is None


# ---------------------------------------------------------------- record="final"


def test_record_final_keeps_the_final_values_and_the_returns(backend):
    source = """
        def gen(n):
            for i in range(n):
                yield i * i

        def helper(xs):
            xs.append(len(xs))
            raise KeyError("x")

        def f(k):
            total = 0
            squares = list(gen(k))
            for s in squares:
                total += s
            try:
                helper(squares)
            except KeyError:
                total = -total
            return total, squares
    """
    full = run(source, "f(4)", backend=backend)
    final = run(source, "f(4)", backend=backend, record="final")
    assert final.record == "final" and full.record == "lines"
    assert final.returned == full.returned and final.stdout == full.stdout
    assert {s.event for s in final.steps} == {"call", "return"}
    assert len(final.frames) == len(full.frames)
    for quick, whole in zip(final.frames, full.frames):
        assert (quick.function, quick.locals, quick.value, quick.exception, quick.finished, quick.scope) == (
            whole.function,
            whole.locals,
            whole.value,
            whole.exception,
            whole.finished,
            whole.scope,
        )
    f = next(fr for fr in final.frames if fr.function == "f")
    assert f.defined_at == {"k": 10, "total": 19, "squares": 19, "s": 19}  # the call's line, then the return's
    last = {}
    for state in final.replay():
        last[state.step.frame] = state.after
    assert last == {frame.id: frame.locals for frame in final.frames}
    helper = next(fr for fr in final.frames if fr.function == "helper")
    assert helper.exception.type == "KeyError"


def test_record_is_checked():
    with pytest.raises(ValueError, match="unknown record"):
        tracer.trace("x = 1", record="everything")


def test_the_sandbox_records_what_the_job_asks(pool):
    code = "def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n"
    lines = pool.run(sandbox.Job(mode="call", code=code, call="f(100)", trace=True))
    final = pool.run(sandbox.Job(mode="call", code=code, call="f(100)", trace=True, trace_record="final"))
    assert final.status == lines.status == "ok"
    assert final.trace.record == "final" and len(final.trace.steps) == 4 and len(lines.trace.steps) > 200
    assert final.trace.frames[-1].locals == lines.trace.frames[-1].locals


def test_the_readmes_tracer_tour_runs_and_shows_what_it_says(tmp_path, monkeypatch):
    """Each line of the README's tracer example runs; a comment that is a Python literal is
    the value of its line's expression (a comment alone on a line: of the line before)."""
    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    tour = text[text.index("### tracer") :]
    start = tour.index("```python\n") + len("```python\n")
    block = tour[start : tour.index("```\n", start)]
    (tmp_path / "prog.py").write_text("import sys\nprint(int(sys.argv[1]) + 1)\n")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    value, claims = None, 0
    for line in block.splitlines():
        code, _, comment = ("", "", line[2:]) if line.startswith("# ") else line.partition("  # ")
        if code:
            try:
                value = eval(compile(code, "README", "eval"), namespace)
            except SyntaxError:
                exec(compile(code, "README", "exec"), namespace)
                value = None
        try:
            claimed = ast.literal_eval(comment)
        except (ValueError, SyntaxError):
            continue
        assert value == claimed, line
        claims += 1
    assert claims >= 8
    assert namespace["tracer"].trace_file("prog.py", argv=["1"]).stdout == "2\n"
