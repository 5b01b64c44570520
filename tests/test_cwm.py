"""Meta CWM's trace format: the export of a Trace (frames, ".." as CWM's own reader resolves it, the entry
marker), and CWM-format predictions scored as steps answers (the real trace exported scores 1.0, a corrupted
one less), on CRUXEval and generated programs."""

import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracer
from rewards import cwm as reading
from rewards import score, score_batch, tasks
from tests.strategies import HELPER, small_programs
from tracer.cwm import (
    ACTION_SEP,
    ARG_SEP,
    END_OF_TEXT,
    EVENT_SEPS,
    FRAME_SEP,
    START_MARKER,
    TRACE_CONTEXT_START,
    to_cwm,
)

FRAME = re.compile(
    r"(?P<event><\|(?:call|line|return|exception)_sep\|>)(?P<locals>.*?)"
    + re.escape(ACTION_SEP)
    + r"(?P<source>[^\n]*\n)(?:"
    + re.escape(ARG_SEP)
    + r"(?P<value>.*))?",
    re.S,
)
EVENTS = {sep: event for event, sep in EVENT_SEPS.items()}


@pytest.fixture(autouse=True)
def on_test_pool(pool, monkeypatch):
    monkeypatch.setattr("sandbox.default_pool", lambda: pool)


def frames(completion):
    """(event, locals, source, value) of each frame, checking the frame grammar of CWM's prompting guide."""
    assert completion.endswith(FRAME_SEP + END_OF_TEXT) or completion == END_OF_TEXT
    out = []
    for chunk in completion[: -len(END_OF_TEXT)].split(FRAME_SEP)[:-1]:
        found = FRAME.fullmatch(chunk)
        assert found is not None, chunk
        event = EVENTS[found["event"]]
        if event in ("call", "line"):
            assert found["value"] is None
            variables = json.loads(found["locals"])
            assert all(isinstance(v, str) for v in variables.values())
        else:
            assert found["locals"] == "" and found["value"] is not None
            variables = {}
        value = json.loads(found["value"]) if found["value"] is not None else None
        out.append((event, variables, found["source"], value))
    return out


def cwmdbg_locals(parsed, i):
    """demos/cwmdbg.py's CWMDebugger.local_vars, for frame i: ".." resolved by looking back to a call or return."""
    resolved = dict(parsed[i][1])
    for name, value in parsed[i][1].items():
        if value != "..":
            continue
        for event, earlier, _, _ in reversed(parsed[:i]):
            if earlier.get(name, "..") != "..":
                resolved[name] = earlier[name]
                break
            if event in ("call", "return"):
                break
    return resolved


def test_the_export_of_a_call():
    trace = tracer.trace(HELPER, call="f([1, 2])")
    export = to_cwm(trace, HELPER)
    assert export.entry_line == 6
    assert export.prompt == TRACE_CONTEXT_START + HELPER.replace("def f(xs):", "def f(xs):" + START_MARKER) + FRAME_SEP
    parsed = frames(export.completion)
    events = [(event, source.strip()) for event, _, source, _ in parsed]
    assert events[:5] == [
        ("call", "def f(xs):"),
        ("line", "total = 0"),
        ("line", "for x in xs:"),
        ("line", "if x > 1:"),
        ("line", "total -= 1"),
    ]
    assert events[7:11] == [
        ("line", "total += g(x)"),
        ("call", "def g(a):"),
        ("line", "b = a * 2"),
        ("line", "return b"),
    ]
    assert parsed[0][1] == {"xs": "[1, 2]"} and parsed[1][1] == {"xs": ".."}
    assert parsed[8][1] == {"a": "2"} and parsed[9][1] == {"a": ".."}
    assert parsed[11][0] == "return" and parsed[11][3] == "4"
    after_return = parsed[12]
    assert after_return[0] == "line" and ".." not in after_return[1].values()  # values shown again after a return
    assert after_return[1] == {"xs": "[1, 2]", "total": "3", "x": "2"}
    assert parsed[-1][0] == "return" and parsed[-1][3] == "3" and parsed[-1][2] == "    return total\n"


def test_the_export_of_a_program_that_raises():
    program = "import sys\nn = int(sys.stdin.readline())\nt = 0\nfor i in range(n):\n    t += 1 / (1 - i)\nprint(t)\n"
    export = to_cwm(tracer.trace(program, stdin="3\n"), program)
    assert export.entry_line == 1 and START_MARKER in export.prompt.splitlines()[0]
    parsed = frames(export.completion)
    exceptions = [f for f in parsed if f[0] == "exception"]
    assert exceptions == [("exception", {}, "    t += 1 / (1 - i)\n", "ZeroDivisionError('division by zero')")]
    assert parsed[-1][:3] == ("return", {}, "    t += 1 / (1 - i)\n") and parsed[-1][3] == "None"


def check_export(code, trace):
    """The export's frames resolve, as CWM's reader resolves them, to the variables of the real run."""
    parsed = frames(to_cwm(trace, code).completion)
    lines = code.splitlines()
    start = max(trace.call_step, 0)
    main = {f.id for f in trace.frames if f.thread == 0}
    states = [s for s in trace.replay() if s.index >= start and s.step.frame in main]
    while states and states[0].step.event != "call":
        states.pop(0)
    assert len(parsed) <= len(states)
    for i, (event, _, source, _) in enumerate(parsed):
        state = states[i]
        assert (event, source) == (state.step.event, lines[state.step.line - 1] + "\n")
        if event in ("call", "line"):
            expected = state.after if event == "call" else state.before
            assert cwmdbg_locals(parsed, i) == {k: tracer.render(v) for k, v in expected.items()}


def corrupted(completion, rng):
    """The completion with one value shown in a line frame changed (or, where none is shown, one line's text)."""
    chunks = completion.split(FRAME_SEP)
    shown = [
        (i, name)
        for i, chunk in enumerate(chunks)
        if chunk.startswith(EVENT_SEPS["line"])
        for name, value in json.loads(chunk[len(EVENT_SEPS["line"]) :].split(ACTION_SEP)[0]).items()
        if value != ".."
    ]
    if not shown:  # a line that is not in the code
        i = next(i for i, chunk in enumerate(chunks) if chunk.startswith(EVENT_SEPS["line"]))
        chunks[i] = chunks[i].split(ACTION_SEP)[0] + ACTION_SEP + "    pass  # no such line\n"
        return FRAME_SEP.join(chunks)
    i, name = rng.choice(shown)
    head, action = chunks[i][len(EVENT_SEPS["line"]) :].split(ACTION_SEP, 1)
    variables = json.loads(head)
    variables[name] = "'corrupted value'"
    chunks[i] = EVENT_SEPS["line"] + json.dumps(variables) + ACTION_SEP + action
    return FRAME_SEP.join(chunks)


def test_cwm_traces_of_cruxeval_resolve_right_and_score_as_steps_answers(cruxeval):
    rng = random.Random(0)
    items = []
    for row in cruxeval:
        call = f"f({row['input']})"
        trace = tracer.trace(row["code"], call=call)
        check_export(row["code"], trace)
        export = to_cwm(trace, row["code"])
        for answer in (export.prompt + export.completion, corrupted(export.completion, rng)):
            items.append({"code": row["code"], "tests": [call], "predicted_trace": answer})
    scores = score_batch(items)
    gold, broken = scores[::2], scores[1::2]
    assert all((s.status, s.question, s.reward) == ("ok", "steps", 1.0) for s in gold), [
        s for s in gold if s.reward != 1.0
    ][:2]
    assert all(s.reward < 1.0 for s in broken if s.status == "ok")
    assert all(s.components["line_f1"] == 1.0 for s in gold)


@given(small_programs(), st.lists(st.integers(-5, 5), min_size=1, max_size=5), st.randoms(use_true_random=False))
@settings(max_examples=25, deadline=None)
def test_cwm_traces_of_generated_programs(program, xs, rng):
    as_program = program + "\nprint(f([int(a) for a in input().split()]))\n"
    stdin = " ".join(map(str, xs))
    for code, tests, trace in (
        (program, [f"f({xs!r})"], tracer.trace(program, call=f"f({xs!r})")),
        (as_program, [{"stdin": stdin, "stdout": None}], tracer.trace(as_program, stdin=stdin)),
    ):
        check_export(code, trace)
        completion = to_cwm(trace, code).completion
        assert score(code, tests, completion).reward == 1.0
        broken = score(code, tests, corrupted(completion, rng))
        assert broken.status == "ok" and broken.reward < 1.0


def test_reading_is_tolerant_like_cwmdbg():
    trace = tracer.trace(HELPER, call="f([1, 2])")
    export = to_cwm(trace, HELPER)
    steps = reading.read(export.completion, HELPER).steps
    assert steps[:5] == [(7, {"total": 0}), (8, {"x": 1}), (9, {}), (12, {"total": -1}), (8, {"x": 2})]
    marked = export.completion.replace("def f(xs):\n", "def f(xs):  # << START_OF_TRACE\n")
    no_newlines = export.completion.replace("\n" + ARG_SEP, ARG_SEP).replace("\n" + FRAME_SEP, FRAME_SEP)
    unfinished = export.completion[: -len(END_OF_TEXT)]
    dedented = export.completion.replace("    total = 0\n", "total = 0\n")
    for variant in (marked, no_newlines, unfinished, dedented, export.prompt + export.completion):
        assert reading.read(variant, HELPER).steps == steps
    garbled = export.completion.replace('{"xs": ".."}', "{not json")
    assert len(reading.read(garbled, HELPER).steps) == len(steps)
    unknown = export.completion.replace("    total = 0\n", "    total = zero\n")
    assert reading.read(unknown, HELPER).steps[0][0] is None
    opaque = reading.read(EVENT_SEPS["call"] + '{"p": "<P object>"}' + ACTION_SEP + "def f(xs):\n" + FRAME_SEP, HELPER)
    assert opaque.steps == [] and reading.is_cwm(export.completion) and not reading.is_cwm("[1, 2]")


def test_a_cwm_task_and_its_gold_answer():
    task = tasks.build_task(HELPER, call="f([1, 2])", question="steps", template="cwm")
    assert task.prompt.startswith(TRACE_CONTEXT_START) and task.answer.endswith(END_OF_TEXT)
    s = score(**task.score_args, predicted_trace=task.answer)
    assert (s.reward, s.question) == (1.0, "steps")
    assert "cwm template" in tasks.build_task(HELPER, call="f([1])", question="final", template="cwm").reason
