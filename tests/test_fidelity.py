"""Fidelity: the trace says what the program did, and tracing does not change what it does.

Every CRUXEval return value matches the recorded output. Each fidelity bug found
beyond that has a test here, on every backend: a value sent into a generator,
iterators that mutate, object lifetimes (a generator's `finally`, `__del__`,
`weakref.finalize`), global and nonlocal names, `throw()`/`close()` into a
generator, and deep recursion (the program's own behaviour, never tampering,
while clearing the trace function stays tampering).
"""

import ast
import sys
import textwrap

import pytest

import sandbox
import tracer
from tests.strategies import same
from tracer import render, to_python


def run(source, call=None, **kw):
    return tracer.trace(textwrap.dedent(source), call, **kw)


def rendered(variables):
    return {k: render(v) for k, v in variables.items()}


def states_of(t, function):
    return [s for s in t.replay() if s.frame.function.rsplit(".", 1)[-1] == function]


def test_every_cruxeval_return_value_matches_the_recorded_output(cruxeval, backend):
    wrong = []
    for row in cruxeval:
        t = tracer.trace(row["code"], f"f({row['input']})", backend=backend)
        expected = ast.literal_eval(row["output"])
        if t.returned is None or not same(tracer.to_python(t.returned), expected):
            wrong.append((row["id"], row["output"], t.returned and tracer.render(t.returned), t.exception))
    print(f"\n{backend}: {len(cruxeval) - len(wrong)}/{len(cruxeval)} CRUXEval return values match")
    assert wrong == []


def test_rendered_return_value_parses_back_to_the_output(cruxeval):
    for row in cruxeval:
        t = tracer.trace(row["code"], f"f({row['input']})")
        assert same(tracer.from_literal(tracer.render(t.returned)), ast.literal_eval(row["output"])), row["id"]


# ---------------------------------------------------------------- generators


def test_a_value_sent_into_a_generator_shows_when_it_resumes(backend):
    t = run(
        """
        def running():
            total = 0
            while True:
                x = yield total
                total += x

        def f():
            it = running()
            next(it)
            it.send(10)
            it.send(5)
            return 1
        """,
        "f()",
        backend=backend,
    )
    gen = [(s.step.event, s.step.line, rendered(s.changed)) for s in states_of(t, "running")]
    assert gen[:12] == [
        ("call", 2, {}),
        ("line", 3, {"total": "0"}),
        ("line", 4, {}),
        ("line", 5, {}),
        ("return", 5, {}),
        ("call", 5, {"x": "10"}),  # the resumption finishes `x = yield total`
        ("line", 6, {"total": "10"}),
        ("line", 4, {}),
        ("line", 5, {}),
        ("return", 5, {}),
        ("call", 5, {"x": "5"}),
        ("line", 6, {"total": "15"}),
    ]


def test_throw_and_close_unwind_a_generator(backend):
    t = run(
        """
        def g():
            try:
                yield 1
            except KeyError:
                yield 2
            yield 3

        def f():
            it = g()
            next(it)
            it.throw(KeyError)
            try:
                it.throw(ValueError)
            except ValueError:
                pass
            it2 = g()
            next(it2)
            it2.close()
            return 0
        """,
        "f()",
        backend=backend,
    )
    exits = [
        (s.line, s.exception.type if s.exception else render(s.value))
        for s in t.steps
        if s.event == "return" and t.frames[s.frame].function == "g"
    ]
    assert exits == [(4, "1"), (6, "2"), (6, "ValueError"), (4, "1"), (5, "GeneratorExit")]
    first, second = [fr for fr in t.frames if fr.function == "g"]
    assert first.exception.type == "ValueError" and second.exception.type == "GeneratorExit"
    assert first.finished and second.finished and first.value is None


# ---------------------------------------------------------------- iteration that runs code


def test_iterating_over_an_iterator_that_mutates(backend):
    t = run(
        """
        def f():
            a = [0, 1, 2]
            it = iter(a.pop, 0)
            for x in it:
                pass
            b = [5, 6, 7]
            it = iter(b.pop, 5)
            p, q = it
            c = [1, 2, 3]
            it = iter(c.pop, 1)
            rest = [*it]
            d = [4, 3]
            it = iter(d.pop, None)
            found = 3 in it
            return a, b, c, d
        """,
        "f()",
        backend=backend,
    )
    assert to_python(t.returned) == ([], [], [], [4])
    f = states_of(t, "f")
    assert {k: to_python(v) for k, v in f[-1].after.items() if k in "abcd"} == {"a": [], "b": [], "c": [], "d": [4]}
    changes = [(s.step.line, rendered(s.changed)) for s in f if s.step.event == "line"]
    assert (5, {"x": "2", "a": "[0, 1]"}) in changes  # the `for` line popped
    assert (9, {"p": "7", "q": "6", "b": "[]"}) in changes  # unpacking
    assert (12, {"rest": "[3, 2]", "c": "[]"}) in changes  # unpacking into a list
    assert (15, {"found": "True", "d": "[4]"}) in changes  # `in` searches the iterator


# ---------------------------------------------------------------- lifetimes

LIFETIMES = """
import weakref

class Noisy:
    def __init__(self, name):
        self.name = name
    def __del__(self):
        print("del", self.name)

def gen():
    try:
        yield 1
    finally:
        print("finally of gen")

def f():
    n = Noisy("a")
    obj = Noisy("b")
    weakref.finalize(obj, print, "finalize b")
    it = gen()
    next(it)
    items = [Noisy("c"), 1]
    items.pop(0)
    print("after pop")
    n = None
    print("after rebind")
    del obj
    print("after del")
    box = {"k": Noisy("d")}
    box["k"] = 0
    print("after store")
    return 1

def closure_keeper():
    kept = Noisy("e")
    def inner():
        return kept
    return 0

def main():
    f()
    print("after f")
    closure_keeper()
    print("after closure_keeper")
    g = gen()
    next(g)
    g = None
    print("after dropping g")

main()
print("end")
"""


def test_tracing_leaves_object_lifetimes_alone(backend):
    traced = tracer.trace(LIFETIMES, backend=backend)
    untraced = tracer.trace(LIFETIMES, backend="none")
    assert untraced.stdout.count("\n") == 16  # every object died where the program dropped it
    assert traced.stdout == untraced.stdout
    assert traced.exception is None and not traced.tampered


# ---------------------------------------------------------------- names of outer scopes


def test_globals_and_nonlocals_are_marked_and_are_not_arguments(backend):
    t = run(
        """
        counter = 0
        def bump(step):
            global counter
            counter += step

        def outer():
            n = 0
            seen = [0]
            def inner(k):
                nonlocal n
                n += k
                seen.append(k)
            inner(10)
            return n

        bump(2)
        outer()
        """,
        backend=backend,
    )
    bump = states_of(t, "bump")
    assert rendered(bump[0].changed) == {"step": "2"}  # the call step holds the arguments only
    assert (bump[1].step.line, rendered(bump[1].changed)) == (5, {"counter": "2"})
    frame = bump[0].frame
    assert frame.scope == {"counter": "global"} and rendered(frame.locals) == {"step": "2", "counter": "2"}
    inner = states_of(t, "inner")
    assert rendered(inner[0].changed) == {"k": "10"}
    assert [(s.step.line, rendered(s.changed)) for s in inner[1:3]] == [(12, {"n": "10"}), (13, {"seen": "[0, 10]"})]
    assert inner[0].frame.scope == {"n": "nonlocal", "seen": "nonlocal"}
    assert states_of(t, "outer")[0].frame.scope == {}  # n and seen are outer's own variables


# ---------------------------------------------------------------- deep recursion and tampering

RECURSIONS = {
    "direct": "def down(n):\n    return down(n + 1)\n",
    "mutual": "def down(n):\n    return up(n + 1)\ndef up(n):\n    return down(n + 1)\n",
    "through a library call": "def down(n):\n    return sorted([n], key=down)\n",
    "in a method": "class Deep:\n    def down(self, n):\n        return self.down(n + 1)\ndown = Deep().down\n",
    "after some work": "def down(n):\n    xs = [n] * 3\n    total = sum(xs)\n    return down(total // 3 + 1)\n",
    "changing a list": "seen = []\ndef down(n, seen=seen):\n    seen.append(n)\n    seen[0] = n\n"
    "    return down(n + 1)\n",
}
CATCH = """
def f():
    try:
        down(0)
    except RecursionError:
        pass
    after = "recorded or not, the program goes on"
    return "deep"
"""
CATCH_AFTER_LINE = 7  # of `after = ...` in CATCH


@pytest.mark.parametrize("recursion", RECURSIONS)
def test_deep_recursion_is_the_programs_own_behaviour_not_tampering(backend, recursion):
    t = tracer.trace(RECURSIONS[recursion] + CATCH, "f()", backend=backend)
    assert to_python(t.returned) == "deep" and t.exception is None
    assert t.tampered == [] and t.dropped > 0 and t.steps
    assert len(list(t.replay())) == len(t.steps)  # what was recorded replays
    after = [s for s in t.steps if s.line == CATCH_AFTER_LINE + RECURSIONS[recursion].count("\n")]
    if t.stopped is None:  # the events lost at the limit were counted, and recording went on
        assert after
    else:  # settrace: Python removed the trace function at the limit (where the limit is hit
        # depends on the stack the run starts from): the loss is reported, and nothing after it is made up
        assert backend == "settrace" and t.stopped.reason == "recursion_limit"
        assert "recursion limit" in t.stopped.detail and not after


CLEARING = {
    "cleared": "sys.settrace(None)",
    "replaced": "sys.settrace(lambda *args: None)",
    "cleared and put back": "mine = sys.gettrace()\n    sys.settrace(None)\n    hidden = 1\n    sys.settrace(mine)",
    "cleared after reaching the recursion limit": "try:\n        down(0)\n    except RecursionError:\n        pass\n"
    "    sys.settrace(None)",
    "cleared by a debugger": "bdb.Bdb().set_trace()\n    sys.settrace(None)",
}
CLEARING_PROGRAM = "import bdb, sys\ndef down(n):\n    return down(n + 1)\ndef f():\n    {}\n    return 1\n"


@pytest.mark.parametrize("way", CLEARING)
def test_clearing_the_trace_function_is_tampering(way):
    t = tracer.trace(CLEARING_PROGRAM.format(CLEARING[way]), "f()", backend="settrace")
    assert t.tampered and t.stopped.reason == "tampered"
    assert sys.gettrace() is None and sys.settrace.__module__ == "sys"  # the tracer restored sys.settrace


def test_deep_recursion_in_the_sandbox_is_not_an_error(pool):
    code = RECURSIONS["direct"] + CATCH
    r = pool.run(sandbox.Job(mode="call", code=code, call="f()", trace=True))
    assert r.status == "ok" and sandbox.to_python(r.value) == "deep" and r.tampered == []
    code = CLEARING_PROGRAM.format(CLEARING["cleared"])
    cleared = pool.run(sandbox.Job(mode="call", code=code, call="f()", trace=True))
    if cleared.trace is not None and cleared.trace.backend == "settrace":
        assert cleared.status == "error" and cleared.tampered
