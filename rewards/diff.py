"""Where a prediction left the real run: the reward's own alignment, as rows to look at.

`prediction_diff(code, tests, answer, ...)` scores the answer exactly as
`score` does and returns a `PredictionDiff`: the `Score`, the traced run it was
checked against (the same sandbox run, from the result cache), and for the
trajectory questions (steps, lines) the real and predicted steps in alignment
order (`DiffRow`):

- `match`: a predicted step aligned with a real step on the same line, every
  value right (similarity 1);
- `wrong`: aligned on the same line with some value wrong (`values` says which;
  a pair the reward could leave unaligned because every value is wrong is shown
  as such rather than as missing plus extra: it adds 0 either way);
- `missing`: a real step the prediction does not have;
- `extra`: a predicted step the run does not have.

`first_divergence` is the first row that is not a match. The reward is the sum
of the rows' similarities over the longer length (`align`). For other questions
the rows are empty and `Score.details` says what was right; so they are for a steps answer in
CWM's format (`rewards.cwm`), which is checked against the run as CWM shows it, not step by step.
`comparison(diff)` is the plain data that `tracer.view` shows beside the trace.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import numpy as np

import sandbox
from tracer import Trace, render

from . import align, cwm
from .cache import CACHE
from .jobs import trace_job
from .questions import StepAlignment, Truth, _show, align_steps, line_states, resolve, value_checks
from .score import DEFAULT_LIMITS, Score, score
from .testcases import InvalidTask, parse_tests

RowStatus = Literal["match", "wrong", "missing", "extra"]


class ValueCheck(msgspec.Struct, frozen=True):
    name: str
    predicted: str  # "" when the prediction does not name it
    actual: str  # "" when the real step did not change it
    ok: bool


class DiffRow(msgspec.Struct, frozen=True):
    status: RowStatus
    step: int = -1  # index into Trace.steps of the real step (-1: an extra predicted step)
    line: int | None = None  # the real step's line
    predicted: int = -1  # index into the predicted steps (-1: a missing step)
    predicted_line: int | None = None
    similarity: float = 0.0  # what the pair adds to the reward's numerator
    values: list[ValueCheck] = []


class PredictionDiff(msgspec.Struct):
    score: Score
    trace: Trace | None  # the run the answer was checked against (None when there was none)
    rows: list[DiffRow] = []
    first_divergence: int = -1  # index into rows of the first row that is not a match


def prediction_diff(
    code: str,
    tests: Any,
    answer: Any,
    *,
    question: str = "auto",
    test_index: int = 0,
    variables: list[str] | None = None,
    mode: str = "typed",
    pool: sandbox.Pool | None = None,
) -> PredictionDiff:
    """The answer's Score and, for steps and lines answers, the aligned rows (module docstring)."""
    result = score(
        code, tests, answer, question=question, test_index=test_index, variables=variables, mode=mode, pool=pool
    )
    try:
        suite = parse_tests(tests, question)
    except InvalidTask:
        return PredictionDiff(result, None)
    if suite.form == "input":
        return PredictionDiff(result, None)
    # The run score checked, every line recorded (for output and final questions score records
    # calls and returns only, so this is a second run, which the viewer shows).
    run = CACHE.run([trace_job(code, suite, test_index, DEFAULT_LIMITS, {})], pool)[0]
    if run.trace is None:
        return PredictionDiff(result, None)
    trace = msgspec.structs.replace(run.trace, stdout=run.stdout)  # the sandbox keeps a job's output apart
    if result.status != "ok" or result.question not in ("steps", "lines") or cwm.is_cwm(answer):
        return PredictionDiff(result, trace)  # a CWM answer is aligned with the run as CWM shows it: no rows
    truth = Truth(result=run, code=code, stdio=suite.form == "stdio", variables=variables, mode=mode)
    _, inner = resolve(result.question, result.prediction)
    rows = _step_rows(align_steps(inner, truth), truth) if result.question == "steps" else _line_rows(inner, trace)
    first = next((i for i, r in enumerate(rows) if r.status != "match"), -1)
    return PredictionDiff(result, trace, rows, first)


def comparison(diff: PredictionDiff) -> dict[str, Any]:
    """The plain data `tracer.view.page(comparison=...)` shows."""
    s = diff.score
    return {
        "reward": s.reward,
        "status": s.status,
        "question": s.question,
        "message": s.message,
        "components": s.components,
        "details": msgspec.to_builtins(s.details),
        "rows": msgspec.to_builtins(diff.rows),
        "first_divergence": diff.first_divergence,
    }


def _step_rows(aligned: StepAlignment, truth: Truth) -> list[DiffRow]:
    def row(i: int, j: int) -> DiffRow:
        line, changes = aligned.predicted[i] if i >= 0 else (None, {})
        state = aligned.actual[j] if j >= 0 else None
        real = state.changed if state is not None else {}
        checks = value_checks(changes, real, truth)
        values = [
            ValueCheck(
                name, _show(changes[name]) if name in changes else "", render(real[name]) if name in real else "", ok
            )
            for name, ok in checks.items()
        ]
        similarity = float(aligned.similarity[i, j]) if i >= 0 and j >= 0 else 0.0
        if state is None:
            return DiffRow("extra", predicted=i, predicted_line=line, values=values)
        status: RowStatus = "missing" if i < 0 else "match" if similarity == 1.0 else "wrong"
        return DiffRow(status, state.index, state.step.line, i, line, similarity, values)

    predicted_lines = [line for line, _ in aligned.predicted]
    real_lines = [s.step.line for s in aligned.actual]
    return [row(i, j) for i, j in _rows(aligned.similarity, predicted_lines, real_lines)]


def _line_rows(answer: Any, trace: Trace) -> list[DiffRow]:
    states = line_states(trace)[: align.MAX_LENGTH]
    predicted = list(answer)[: align.MAX_LENGTH]
    real = [s.step.line for s in states]
    similarity = np.array(list(align.line_similarity(predicted, real))).reshape(len(predicted), len(real))
    rows = []
    for i, j in _rows(similarity, predicted, real):
        if j < 0:
            rows.append(DiffRow("extra", predicted=i, predicted_line=predicted[i]))
        else:
            state = states[j]
            status: RowStatus = "missing" if i < 0 else "match"
            line = predicted[i] if i >= 0 else None
            rows.append(DiffRow(status, state.index, state.step.line, i, line, 1.0 if i >= 0 else 0.0))
    return rows


def _rows(similarity: Any, predicted: list[int | None], real: list[int]) -> list[tuple[int, int]]:
    """(predicted index or -1, real index or -1) in alignment order: the reward's matching,
    with the unaligned steps between two pairs paired up where their lines agree."""
    pairs = align.matching(similarity)
    out: list[tuple[int, int]] = []
    i = j = 0
    for pi, pj in [*pairs, (len(predicted), len(real))]:
        out += _gap(range(i, pi), range(j, pj), predicted, real)
        if pi < len(predicted):
            out.append((pi, pj))
        i, j = pi + 1, pj + 1
    return out


def _gap(ps: range, rs: range, predicted: list[int | None], real: list[int]) -> list[tuple[int, int]]:
    """Unaligned predicted steps `ps` and real steps `rs`, in order: same-line ones paired."""
    out: list[tuple[int, int]] = []
    j = rs.start
    for i in ps:
        k = next((k for k in range(j, rs.stop) if real[k] == predicted[i]), None)
        if k is None:
            out.append((i, -1))
            continue
        out += [(-1, m) for m in range(j, k)]
        out.append((i, k))
        j = k + 1
    out += [(-1, m) for m in range(j, rs.stop)]
    return out


__all__ = ["DiffRow", "PredictionDiff", "ValueCheck", "comparison", "prediction_diff"]
