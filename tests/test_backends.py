"""Both backends give the same trace, and the fast change detection misses nothing.

On 3.12+ every CRUXEval function and generated programs (with generators driven
by send, throw and close, iterators that mutate, `del`, and classes) are traced
with sys.monitoring and with sys.settrace and the traces compared whole. On
every version the recorder's shortcut (re-read only the names a line can bind)
is compared with an exhaustive re-check of every local at every event;
`Trace.replay` ends each frame at its final locals; replaying edits gives the
values a recording of whole values gives; and `record="final"` ends each frame
with the same final values as a recording of every line.
"""

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracer
from tests.conftest import BACKENDS
from tracer import accel, codeinfo, env, recorder

needs_monitoring = pytest.mark.skipif(not env.HAS_MONITORING, reason="sys.monitoring needs Python 3.12+")


def same_trace(a, b) -> bool:
    a.backend = b.backend = ""
    return a == b


def _every_line_mutates(code):
    info = codeinfo.analyse(code)
    lines = {line: li._replace(mutates=True) for line, li in info.lines.items()}
    return info._replace(lines=lines)


def exhaustive(*args, **kw):
    """tracer.trace with the recorder re-checking every local at every event."""
    recorder.analyse = _every_line_mutates
    try:
        return tracer.trace(*args, **kw)
    finally:
        recorder.analyse = codeinfo.analyse


def whole_values(*args, **kw):
    """tracer.trace with every change stored as its whole value (no edits: the pure-Python path, whose
    edits are switched off; the compiled one makes the same edits, tests/test_accel.py)."""
    accel.compiled()
    saved = recorder.diff, recorder.Recorder._edit_flat, accel._ACCEL
    recorder.diff = lambda old, new: None
    recorder.Recorder._edit_flat = lambda *args: False
    accel._ACCEL = None
    try:
        return tracer.trace(*args, **kw)
    finally:
        recorder.diff, recorder.Recorder._edit_flat, accel._ACCEL = saved


def states(t):
    return [(s.index, s.hit, s.before, s.after, s.changed, s.step.deleted) for s in t.replay()]


def final_values(t):
    return [(f.function, sorted(f.locals.items()), f.value, f.exception, f.finished, f.scope) for f in t.frames]


# ---------------------------------------------------------------- generated programs

names = st.sampled_from(["a", "b", "c", "xs", "d"])
small = st.integers(-3, 9)
SIMPLE = ["assign", "aug", "append", "setitem", "call", "alias", "gen", "iterator", "consume", "box"]
GUARDED = {  # statements that may raise, each run inside a try
    # (a generator is kept in `made`: on 3.11 and 3.12 one that a line unbinds is finalized unrecorded, in the
    # tracer's callback, because the interpreter's locals snapshot keeps it until the frame's next event)
    "gen": ["b = next(gen, -2)", "b = gen.send({k})", "b = gen.throw(KeyError)", "gen.close()", "gen = made({k})"],
    "consume": ["for b in it:\n    c = b", "a, *c = it", "c = [*it]", "c = {k} in it", "b = next(it, -1)"],
}


def guarded(line):
    return ["try:", *("    " + part for part in line.split("\n")), "except Exception as err:", "    a = -1"]


@st.composite
def statements(draw, depth=0):
    kind = draw(st.sampled_from([*SIMPLE, "if", "for", "try", "del"] if depth < 2 else SIMPLE))
    n = draw(names)
    k = draw(small)
    if kind in GUARDED:
        return guarded(draw(st.sampled_from(GUARDED[kind])).format(k=k))
    if kind == "iterator":  # iterators whose every step changes a variable
        return [draw(st.sampled_from(["it = iter(xs.pop, 3)", "it = map(xs.append, range(2))", "it = iter(xs)"]))]
    if kind == "box":
        return [draw(st.sampled_from([f"box = Box({n})", f"box.add({k})", f"box.v = {n}", "box.items = xs"]))]
    if kind == "assign":
        return [f"{n} = {draw(st.sampled_from(['[1, 2]', '{}', str(draw(small)), '(1, [2])', 'xs[:]']))}"]
    if kind == "aug":
        return [f"{n} += {draw(st.sampled_from(['1', '[3]', 'a']))}"]
    if kind == "append":
        return [f"xs.append({n})"]
    if kind == "setitem":
        return [f"d[{draw(small)}] = {n}"]
    if kind == "call":
        return [f"helper(xs, {draw(small)})"]
    if kind == "alias":
        return [f"{n} = xs"]
    if kind == "del":
        return [f"{n} = 0", f"del {n}"]
    body = [line for _ in range(draw(st.integers(1, 3))) for line in draw(statements(depth + 1))]
    inner = ["    " + line for line in body]
    if kind == "if":
        return [f"if len(xs) % 2 == {draw(st.integers(0, 1))}:", *inner]
    if kind == "for":
        return [f"for {n} in range({draw(st.integers(0, 3))}):", *inner]
    return ["try:", *inner, "except Exception as err:", "    a = str(type(err).__name__)"]


@st.composite
def programs(draw):
    body = [line for _ in range(draw(st.integers(1, 8))) for line in draw(statements())]
    return (
        textwrap.dedent("""
        def helper(target, k):
            if isinstance(target, list) and len(target) < 50:
                target.append(k)
            return k

        class Box:
            def __init__(self, v):
                self.v = v
                self.items = []

            def add(self, k):
                self.items.append(k)
                self.v = k
                return len(self.items)

        done = []

        def counter(start):
            total = start
            try:
                while True:
                    got = yield total
                    total += 1 if got is None else got
            except KeyError:
                yield -1
            finally:
                done.append(total)

        def main():
            a, b, c, xs, d = 0, 1, 2, [0], {}
            kept = []
            made = lambda k: kept.append(counter(k)) or kept[-1]
            box, gen, it = Box(0), made(0), iter(())
        """)
        + "\n".join("    " + line for line in body)
        + "\n    return a, b, c, xs, d, box.items\n"
    )


def replay_ends_at_frame_locals(t) -> bool:
    """Trace.replay: the `after` of each frame's last step is the frame's final locals."""
    last = {}
    for state in t.replay():
        last[state.step.frame] = state.after
    return last == {frame.id: frame.locals for frame in t.frames}


@given(programs())
@settings(max_examples=60, deadline=None)
def test_shortcut_equals_exhaustive_on_generated_programs(program):
    for backend in BACKENDS:
        fast = tracer.trace(program, "main()", backend=backend)
        full = exhaustive(program, "main()", backend=backend)
        assert fast == full, program


@given(programs())
@settings(max_examples=30, deadline=None)
def test_replay_ends_at_each_frames_locals_on_generated_programs(program):
    for backend in BACKENDS:
        assert replay_ends_at_frame_locals(tracer.trace(program, "main()", backend=backend)), program


@given(programs())
@settings(max_examples=40, deadline=None)
def test_edits_replay_as_whole_values_on_generated_programs(program):
    """Replaying a trace of edits gives, at every step, what re-encoding the live values gives."""
    for backend in BACKENDS:
        edited = tracer.trace(program, "main()", backend=backend)
        whole = whole_values(program, "main()", backend=backend)
        assert states(edited) == states(whole), program
        assert final_values(edited) == final_values(whole), program


@given(programs())
@settings(max_examples=30, deadline=None)
def test_record_final_ends_with_the_final_values_on_generated_programs(program):
    for backend in BACKENDS:
        lines = tracer.trace(program, "main()", backend=backend)
        final = tracer.trace(program, "main()", backend=backend, record="final")
        # (in any order: on 3.11 and 3.12 the interpreter's locals snapshot of a recorded line changes the
        # order in which a finishing frame's generators are finalized)
        assert sorted(map(repr, final_values(final))) == sorted(map(repr, final_values(lines))), program
        assert (final.returned, final.exception, final.stdout) == (lines.returned, lines.exception, lines.stdout)
        assert replay_ends_at_frame_locals(final), program


@needs_monitoring
@given(programs())
@settings(max_examples=60, deadline=None)
def test_backends_agree_on_generated_programs(program):
    assert same_trace(
        tracer.trace(program, "main()", backend="settrace"), tracer.trace(program, "main()", backend="monitoring")
    ), program


# ---------------------------------------------------------------- CRUXEval


@needs_monitoring
def test_backends_agree_on_every_cruxeval_function(cruxeval):
    differing = [
        row["id"]
        for row in cruxeval
        if not same_trace(
            tracer.trace(row["code"], f"f({row['input']})", backend="settrace"),
            tracer.trace(row["code"], f"f({row['input']})", backend="monitoring"),
        )
    ]
    assert differing == [], f"{len(differing)} of {len(cruxeval)} differ"


def test_shortcut_equals_exhaustive_on_cruxeval(cruxeval, backend):
    differing = [
        row["id"]
        for row in cruxeval
        if tracer.trace(row["code"], f"f({row['input']})", backend=backend)
        != exhaustive(row["code"], f"f({row['input']})", backend=backend)
    ]
    assert differing == []


def test_replay_ends_at_each_frames_locals_on_cruxeval(cruxeval, backend):
    differing = [
        row["id"]
        for row in cruxeval
        if not replay_ends_at_frame_locals(tracer.trace(row["code"], f"f({row['input']})", backend=backend))
    ]
    assert differing == []


def test_record_final_ends_with_the_final_values_on_cruxeval(cruxeval, backend):
    differing = [
        row["id"]
        for row in cruxeval
        if final_values(tracer.trace(row["code"], f"f({row['input']})", backend=backend, record="final"))
        != final_values(tracer.trace(row["code"], f"f({row['input']})", backend=backend))
    ]
    assert differing == []


def test_edits_replay_as_whole_values_on_cruxeval(cruxeval, backend):
    differing = [
        row["id"]
        for row in cruxeval
        if states(tracer.trace(row["code"], f"f({row['input']})", backend=backend))
        != states(whole_values(row["code"], f"f({row['input']})", backend=backend))
    ]
    assert differing == []
