"""Both backends give the same trace, and the fast change detection misses nothing.

On 3.12+ every CRUXEval function and generated programs are traced with
sys.monitoring and with sys.settrace and the traces compared whole. On every
version the recorder's shortcut (re-read only the names a line can bind) is
compared with an exhaustive re-check of every local at every event, and
`Trace.replay` ends each frame at its final locals.
"""

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracer
from tests.conftest import BACKENDS
from tracer import codeinfo, env, recorder

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


# ---------------------------------------------------------------- generated programs

names = st.sampled_from(["a", "b", "c", "xs", "d"])
small = st.integers(-3, 9)


@st.composite
def statements(draw, depth=0):
    kind = draw(
        st.sampled_from(
            ["assign", "aug", "append", "setitem", "call", "if", "for", "try", "alias", "del"]
            if depth < 2
            else ["assign", "aug", "append", "setitem", "call", "alias"]
        )
    )
    n = draw(names)
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

        def main():
            a, b, c, xs, d = 0, 1, 2, [0], {}
        """)
        + "\n".join("    " + line for line in body)
        + "\n    return a, b, c, xs, d\n"
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
