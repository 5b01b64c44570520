"""Questions: what an answer predicts about a run, how it is scored, and its gold answer.

- "output": the value of the traced call (a program's stdout for stdin/stdout tests);
- "final":  final values of variables ({"y": 6}), or the CodeRL+ answer
            {"final_output": 7, "variables": {"y": 6}} (the output is one more item);
- "steps":  the line-by-line trajectory, [{"line": 3, "changes": {"y": 6}}, ...];
- "lines":  the sequence of executed line numbers, [2, 3, 4];
- "input":  CRUXEval-I, arguments that make `f` return the asserted output;
- "state", "next", "coverage": white-box questions about points of the run, each a `Probe`
            (`rewards.probes`): a variable's value after the k-th execution of a line, the line
            that runs next, whether a line runs (or which lines run); several in one prompt
            take one answer each, scored one by one (their mean); "bundle" mixes the three.

Each is a `Question` in the registry `QUESTIONS`: a scorer with the one
signature `score(answer, truth) -> Graded` (the parsed answer, and the `Truth`:
the sandbox's run plus what was asked), its gold answer from the same `Truth`
(what `tasks.build_task` asks a model to write, which scores 1.0), and the
prompt `build_task` asks it with. Adding a question is adding one entry.

Scores lie in [0, 1]: output and input 1 or 0; final: correct / asked, over
the variables asked for (`Truth.variables`, else those worth asking about:
`interesting_variables`) and nothing else: other predicted names, and the
output (which the final question does not ask), are ignored and listed in a
detail that is not scored (`Detail.scored` False); steps and lines: the
alignment score (`align`), and for steps also CodeExecutor's dense metrics as
components (line- and identifier-level precision, recall and F1); a steps answer
may be a CWM-format trace (`rewards.cwm`). `coderl_plus` is CodeRL+'s reward for its question
(the output and the asked variables): 0.1 for the format plus
0.9 * correct / (1 + n); for probes, 0.1 + 0.9 * their mean. A final question that asks about no variable, or about
one the run never defines, is the task's fault (`InvalidTask`).

Scoring work is bounded whatever the answer: each comparison is bounded by the
prediction's size (`compare`), and each predicted step is compared with the
real steps of its line near its own position only (`step_window`), so a steps
answer costs about `STEP_WORK` value parts compared, not predicted x real.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec
import numpy as np

import sandbox
from sandbox import Result
from tracer import Step, StepState, Trace, Value, encode, render
from tracer.cwm import to_cwm

from . import align, cwm, probes
from .compare import DEFAULT_RTOL, Real, equal, exact_key, gold, matches, nodes
from .parse import ParseError
from .probes import Probe
from .testcases import InvalidTask

_NOT_ASKED = probes.NOT_ASKED
STEP_WORK = 500_000  # about how many value parts a steps answer's comparisons may visit
MIN_WINDOW = 8  # a predicted step is compared with at least this many real steps of its line each side
SHOWN = 300  # characters of a value or text kept in a Detail


class Detail(msgspec.Struct, frozen=True):
    item: str  # "output", "y", "step 3 (line 5)", "lines", or a note ("ignored", "window")
    score: float  # 1.0 right, 0.0 wrong, in between for partly right steps
    predicted: str = ""
    actual: str = ""
    scored: bool = True  # False: a note (what was ignored or cut), not part of the score


class Graded(NamedTuple):
    """A scorer's verdict on one answer."""

    score: float  # in [0, 1]
    details: list[Detail]
    components: dict[str, float] | None = None  # more figures for `Score.components`


@dataclass(frozen=True)
class Truth:
    """What an answer is checked against: the question's sandbox run, and what was asked."""

    result: Result  # the traced run of the test (input: the run of the predicted call)
    code: str = ""
    stdio: bool = False  # the run is a program on stdin: its output is its stdout
    variables: list[str] | None = None  # final: the names asked about (None: the interesting ones)
    expected: Any = None  # input: the output the test asserts
    mode: str = "typed"  # how values compare: typed, or coderl_plus (see `compare`)
    rtol: float = DEFAULT_RTOL
    probes: tuple[Probe, ...] = ()  # state, next, coverage, bundle: what is asked

    @property
    def trace(self) -> Trace:
        if self.result.trace is None:
            raise ValueError("the run has no trace")
        return self.result.trace


Scorer = Callable[[Any, Truth], Graded]
Steps = Sequence[tuple[int | None, dict[Any, Any]]]  # (line, changes) of each predicted step
RealSteps = Sequence[tuple[int | None, Mapping[str, Value | Real]]]  # (line, changes) of each real step


@dataclass(frozen=True)
class Question:
    name: str
    score: Scorer
    gold: Callable[[Truth], Any] | None = None  # None: build_task cannot ask it
    prompt: str = ""  # how build_task asks it ({what}: the input, {names}: the variables asked)
    numbered: bool = False  # the prompt shows line numbers (the answer names lines)
    component: str = "prediction"  # the answer's score's name in `Score.components`
    read: Callable[[Any, list[Probe]], Any] | None = None  # reads the answer text itself (probe questions)


# ---------------------------------------------------------------- what the questions are about


def target_frames(trace: Trace) -> set[int]:
    """The frames a question is about: the traced call's own frame, or, for a
    program, module level and the functions it calls directly (`main`)."""
    if trace.call_step >= 0:
        first = next((s for s in trace.steps[trace.call_step :] if s.event == "call"), None)
        return {first.frame} if first is not None else set()
    return {f.id for f in trace.frames if f.depth <= 1 and f.thread == 0}


def _constant_only(code: str | None) -> set[str]:
    """Names that the code only ever assigns a literal constant (not worth asking)."""
    if not code:
        return set()
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    constant: set[str] = set()
    other: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    (constant if isinstance(node.value, ast.Constant) else other).add(target.id)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.comprehension, ast.NamedExpr)):
            for name in ast.walk(node.target):
                if isinstance(name, ast.Name):
                    other.add(name.id)
    return constant - other


def interesting_variables(trace: Trace, code: str | None = None) -> list[str]:
    """Variables worth asking about, in a stable order: they changed during the run, are not
    an argument left as passed, and are not only ever assigned a constant."""
    frames = target_frames(trace)
    constants = _constant_only(code)
    names: dict[str, None] = {}
    for frame in trace.frames:
        if frame.id not in frames:
            continue
        arguments: set[str] = set()
        for step in trace.steps:
            if step.frame == frame.id and step.event == "call":
                arguments = set(step.changes)
                break
        for name, value in frame.locals.items():
            if value.t in _NOT_ASKED or name in constants or name.startswith("__"):
                continue
            if name in arguments and frame.defined_at.get(name) == frame.line:
                continue  # an argument never reassigned: a copy of the input
            names[name] = None
    return list(names)


def final_values(trace: Trace) -> dict[str, Value]:
    """Each name's final value, preferring the traced call's frame, then module level, then the rest."""
    values: dict[str, Value] = {}
    primary = target_frames(trace)
    for frame in sorted(trace.frames, key=lambda f: (f.id in primary, -f.depth, f.id)):
        values.update(frame.locals)
    return values


def line_steps(trace: Trace) -> list[Step]:
    """The line steps of the traced execution (of the call, when there is one)."""
    return [s for s in trace.steps[max(trace.call_step, 0) :] if s.event == "line"]


def asked_variables(truth: Truth) -> list[str]:
    """The variables a final answer is asked about."""
    if truth.variables is not None:
        return list(truth.variables)
    return interesting_variables(truth.trace, truth.code)


# ---------------------------------------------------------------- scorers


def _short(text: str, limit: int = SHOWN) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _note(item: str, text: str) -> Detail:
    """A detail that says what was ignored or cut; it is not part of the score."""
    return Detail(item, 0.0, _short(text, 2 * SHOWN), scored=False)


def _ignored(names: list[Any]) -> list[Detail]:
    if not names:
        return []
    shown = ", ".join(_short(n if isinstance(n, str) else repr(n), 40) for n in names[:20])
    more = f" (and {len(names) - 20} more)" if len(names) > 20 else ""
    return [_note("ignored", f"not asked, not scored: {shown}{more}")]


def _mean(details: list[Detail]) -> float:
    scored = [d.score for d in details if d.scored]
    return sum(scored) / len(scored) if scored else 1.0


def _show(value: Any) -> str:
    try:
        return _short(render(encode(value)))
    except Exception:  # never let a display problem fail a score
        return "?"


def score_output(answer: Any, truth: Truth) -> Graded:
    """Against the call's value, or against the program's stdout for stdin/stdout tests."""
    if truth.stdio:
        real = truth.result.stdout
        ok = isinstance(answer, str) and sandbox.matches(answer, real)
        return Graded(float(ok), [Detail("output", float(ok), _show(answer), _short(repr(real[: 2 * SHOWN])))])
    trace = truth.trace
    actual = trace.returned if trace.returned is not None else encode(None)
    ok = matches(answer, actual, truth.mode, truth.rtol)
    return Graded(float(ok), [Detail("output", float(ok), _show(answer), _short(render(actual)))])


def _final_answer(answer: Any, asked: list[str]) -> tuple[dict[Any, Any], list[Any]]:
    """The predicted variables of a final answer, and its other top-level keys: {"y": 6}, or CodeRL+'s
    {"final_output": 7, "variables": {"y": 6}} (read so when "variables" holds a dict and is not
    itself asked about: code may name its own variables `final_output` or `variables`)."""
    if not isinstance(answer, dict):
        raise ParseError(f"a final-values answer is a dict of names, got {type(answer).__name__}")
    inner = answer.get("variables")
    if isinstance(inner, dict) and "variables" not in asked:
        return inner, [k for k in answer if k != "variables"]
    return answer, []


def _variable_details(values: dict[Any, Any], asked: list[str], truth: Truth) -> tuple[list[Detail], list[Any]]:
    """A detail for each asked variable, and the predicted names that were not asked."""
    real = final_values(truth.trace)
    if not asked:
        raise InvalidTask("the final question asks about no variable (give `variables`, or a run that sets some)")
    unknown = [name for name in asked if name not in real]
    if unknown:
        raise InvalidTask(f"variables asked about that the run never defines: {', '.join(unknown[:20])}")
    details = []
    for name in asked:
        actual = real[name]
        if name not in values:
            details.append(Detail(name, 0.0, "", _short(render(actual))))
            continue
        ok = matches(values[name], actual, truth.mode, truth.rtol)
        details.append(Detail(name, float(ok), _show(values[name]), _short(render(actual))))
    asked_set = set(asked)
    return details, [n for n in values if n not in asked_set]


def score_final(answer: Any, truth: Truth) -> Graded:
    """The asked variables only: other names, and a CodeRL+ answer's output, are listed as ignored."""
    asked = asked_variables(truth)
    values, others = _final_answer(answer, asked)
    details, ignored = _variable_details(values, asked, truth)
    return Graded(_mean(details), details + _ignored(others + ignored))


def _predicted_steps(answer: Any) -> list[tuple[int | None, dict[Any, Any]]]:
    if not isinstance(answer, list):
        raise ParseError(
            f"a steps answer is a list of {{'line': ..., 'changes': {{...}}}}, got {type(answer).__name__}"
        )
    steps = []
    for item in answer:
        changes: Any
        if isinstance(item, dict):
            line = item.get("line")
            changes = next((item[k] for k in ("changes", "variables", "vars", "state") if k in item), {})
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            line, changes = item
        else:
            raise ParseError(f"a step must be a dict with 'line' (and 'changes'), got {_show(item)}")
        steps.append((line if type(line) is int else None, changes if isinstance(changes, dict) else {}))
    return steps


def line_states(trace: Trace) -> list[StepState]:
    """The line steps of the traced execution (of the call, when there is one), with their
    frame's variables (`Trace.replay`)."""
    start = max(trace.call_step, 0)
    return [s for s in trace.replay() if s.index >= start and s.step.event == "line"]


def line_changes(trace: Trace) -> list[tuple[int, dict[str, Value]]]:
    """(line, new values of the names it changed) of each line step of `line_states`, without
    holding each step's variables (a wide frame's variables at every step can take gigabytes)."""
    start = max(trace.call_step, 0)
    return [(s.step.line, s.changed) for s in trace.replay() if s.index >= start and s.step.event == "line"]


def value_checks(predicted: dict[Any, Any], real: dict[str, Value], truth: Truth) -> dict[str, bool]:
    """For each name a real step changed or a predicted step names: whether the prediction has
    that name's new value right. A step's similarity is the share of True (1.0 with no names)."""
    checks = {n: n in predicted and matches(predicted[n], v, truth.mode, truth.rtol) for n, v in real.items()}
    checks.update({n: False for n in predicted if isinstance(n, str) and n not in real})
    return checks


def step_window(predicted: list[tuple[int | None, dict[Any, Any]]]) -> int:
    """How many real steps of its line, each side of its own position, a predicted step is compared
    with: `STEP_WORK` shared by the answer's steps in proportion to their size, `MIN_WINDOW` at least."""
    work = 0
    for _, changes in predicted:
        work += 1 + len(changes)
        for value in changes.values():
            if work >= STEP_WORK:
                return MIN_WINDOW
            work += nodes(value, STEP_WORK - work)
    return max(MIN_WINDOW, STEP_WORK // (4 * max(work, 1)))


class _Changes:
    """One step's changes, ready to be compared many times: their names, the (name, key) pairs of
    the values that have an exact key (`compare.exact_key`: a set intersection compares those),
    and the other values (compared one by one)."""

    __slots__ = ("exact", "loose", "names", "values")

    def __init__(self, values: dict[Any, Any], keys: Callable[[Any], Any]) -> None:
        self.values = values
        self.names = frozenset(n for n in values if isinstance(n, str))
        exact = set()
        self.loose = {}
        for name in self.names:
            key = keys(values[name])
            if key is None:
                self.loose[name] = values[name]
            else:
                exact.add((name, key))
        self.exact = frozenset(exact)


class _StepRows:
    """The rows of a steps answer's similarity with the run, made one at a time (`align` takes them
    so). Each predicted step is compared with the real steps of its line near its own position: the
    k-th predicted occurrence of a line with the real occurrences within `step_window` of k (and of
    k shifted by how many more times the line really ran). A pair's similarity is the share of
    `value_checks` that hold, computed without them: names by set, values by `exact_key` where they
    have one. After iterating: `best` (each predicted step's best similarity), `window`, `narrowed`
    (whether some step saw only part of its line's steps) and `compared` (the pairs compared)."""

    def __init__(
        self,
        predicted: list[tuple[int | None, dict[Any, Any]]],
        actual: RealSteps,
        truth: Truth,
    ):
        self.predicted, self.actual, self.truth = predicted, actual, truth  # actual: `line_changes`, cut
        self.window = step_window(predicted)
        self.best = np.zeros(len(predicted))
        self.narrowed, self.compared = False, 0
        self.occurrences: dict[int | None, list[int]] = {}
        for j, (line, _) in enumerate(actual):
            self.occurrences.setdefault(line, []).append(j)
        self.decoded: dict[int, _Changes] = {}

    def _key(self, value: Any) -> Any:
        return exact_key(value) if self.truth.mode == "typed" else None

    def _real_key(self, real: Real) -> Any:
        return exact_key(real.value) if self.truth.mode == "typed" and real.text is None else None

    def _similarity(self, changes: _Changes, j: int) -> float:
        real = self.decoded.get(j)
        if real is None:
            values = {n: _real(v) for n, v in self.actual[j][1].items()}
            real = self.decoded[j] = _Changes(values, self._real_key)
        names = len(real.names) + len(changes.names) - len(real.names & changes.names)
        if not names:
            return 1.0
        truth = self.truth
        right = len(changes.exact & real.exact) + sum(
            equal(changes.values[n], r, truth.mode, truth.rtol) for n, r in real.loose.items() if n in changes.names
        )
        return right / names

    def __iter__(self) -> Iterator[np.ndarray]:
        predicted_count: dict[int | None, int] = {}
        for line, _ in self.predicted:
            predicted_count[line] = predicted_count.get(line, 0) + 1
        seen: dict[int | None, int] = {}
        window = self.window
        for i, (line, values) in enumerate(self.predicted):
            row = np.zeros(len(self.actual))
            k = seen[line] = seen.get(line, -1) + 1
            places = self.occurrences.get(line, []) if line is not None else []
            shift = len(places) - predicted_count[line]
            near = set(range(max(0, k - window), min(len(places), k + window + 1)))
            near.update(range(max(0, k + shift - window), min(len(places), k + shift + window + 1)))
            self.narrowed = self.narrowed or len(near) < len(places)
            self.compared += len(near)
            changes = _Changes(values, self._key)
            for c in near:
                row[places[c]] = self._similarity(changes, places[c])
            self.best[i] = np.max(row, initial=0.0)  # (similarities are never negative)
            yield row


class StepAlignment(NamedTuple):
    """How a steps answer lines up with the run: what `score_steps` scores (`rewards.diff` shows it)."""

    predicted: list[tuple[int | None, dict[Any, Any]]]  # (line, changes) per predicted step, cut at MAX_LENGTH
    actual: list[StepState]  # the real line steps, cut at MAX_LENGTH
    similarity: np.ndarray  # [predicted, actual]: the rows `score_steps` aligns (`value_checks`' share)
    score: float  # the alignment score over the uncut lengths


def align_steps(answer: Any, truth: Truth) -> StepAlignment:
    """The whole similarity matrix of `score_steps` (for showing: up to MAX_LENGTH squared cells)."""
    steps = _predicted_steps(answer)
    real = line_states(truth.trace)
    actual = real[: align.MAX_LENGTH]
    rows = _StepRows(steps[: align.MAX_LENGTH], [(s.step.line, s.changed) for s in actual], truth)
    similarity = np.zeros((len(rows.predicted), len(actual)))
    for i, row in enumerate(rows):
        similarity[i] = row
    score = align.alignment_score(similarity, len(steps), len(real))
    return StepAlignment(rows.predicted, actual, similarity, score)


def score_steps(answer: Any, truth: Truth) -> Graded:
    """The alignment score of the answer's steps with the run's (`_StepRows`, `align`): about
    `STEP_WORK` value parts compared whatever the answer, no matrix held; CodeExecutor's dense
    metrics as components. A CWM-format answer (`cwm.Reading`) is checked against the real trace
    as CWM shows it (`cwm_changes`)."""
    if isinstance(answer, cwm.Reading):
        steps = [(line, {n: _cwm_value(v) for n, v in changes.items()}) for line, changes in answer.steps]
        real: RealSteps = cwm_changes(truth)
    else:
        steps = _predicted_steps(answer)
        real = line_changes(truth.trace)
    rows = _StepRows(steps[: align.MAX_LENGTH], real[: align.MAX_LENGTH], truth)
    score = align.alignment_score(rows, len(steps), len(real))
    details = [Detail(f"step {i} (line {line})", float(rows.best[i])) for i, (line, _) in enumerate(rows.predicted)]
    if len(steps) > len(rows.predicted) or len(real) > len(rows.actual):
        details.append(
            _note("cut", f"only the first {align.MAX_LENGTH} steps are compared (the score divides by all of them)")
        )
    if rows.narrowed:
        within = f"within {rows.window} places ({rows.compared} pairs compared)"
        details.append(_note("window", f"steps were compared with the real steps of their line {within}"))
    same = lambda given, real: equal(given, _real(real), truth.mode, truth.rtol)
    return Graded(score, details, codeexecutor_metrics(rows.predicted, rows.actual, same))


def cwm_changes(truth: Truth) -> RealSteps:
    """The run's line steps as CWM shows them (`tracer.cwm.to_cwm` read back by `cwm.read`): a
    call's last line shows no changes, values are their renderings read as literals."""
    shown = cwm.read(to_cwm(truth.trace, truth.code).completion, truth.code).steps
    return [(line, {n: _cwm_real(v) for n, v in changes.items()}) for line, changes in shown]


def _real(value: Value | Real) -> Real:
    return value if isinstance(value, Real) else Real(value)


def _cwm_real(value: Any) -> Real:
    return Real.known(None, value.text) if isinstance(value, cwm.Opaque) else Real.known(value)


def _cwm_value(value: Any) -> Any:
    """A value CWM showed, as a steps answer holds it: a rendering that is no literal as its text."""
    return value.text if isinstance(value, cwm.Opaque) else value


def codeexecutor_metrics(
    predicted: Steps, actual: Sequence[tuple[int | None, Mapping[str, Any]]], same: Callable[[Any, Any], bool]
) -> dict[str, float]:
    """CodeExecutor's dense metrics (Liu et al., 2023) for one trace: the i-th predicted step is
    compared with the i-th real one. Line level: a step is right when its line and its changes are
    (precision over the predicted steps, recall over the real ones); identifier level: a changed
    variable is right when its step's line is and its value is (over the predicted and the real
    changes; `same(predicted, real)` compares two values). CodeExecutor's states list every variable
    in scope; steps list the changed ones, so these count those. Empty against empty is 1.0."""
    right_steps = right_names = 0
    for (line, changes), (real_line, real_changes) in zip(predicted, actual):
        if line is None or line != real_line:
            continue
        right = sum(1 for n, v in real_changes.items() if n in changes and same(changes[n], v))
        right_names += right
        right_steps += right == len(real_changes) == len(changes)
    predicted_names = sum(len(changes) for _, changes in predicted)
    real_names = sum(len(changes) for _, changes in actual)
    return {
        **_precision_recall("line", right_steps, len(predicted), len(actual)),
        **_precision_recall("identifier", right_names, predicted_names, real_names),
    }


def _precision_recall(level: str, right: int, predicted: int, real: int) -> dict[str, float]:
    precision = right / predicted if predicted else float(real == 0)
    recall = right / real if real else float(predicted == 0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {f"{level}_precision": precision, f"{level}_recall": recall, f"{level}_f1": f1}


def score_lines(answer: Any, truth: Truth) -> Graded:
    if not isinstance(answer, list) or not all(type(x) is int for x in answer):
        raise ParseError("a lines answer is a list of line numbers")
    real = [s.line for s in line_steps(truth.trace)]
    score = align.alignment_score(align.line_similarity(answer, real), len(answer), len(real))
    return Graded(score, [Detail("lines", score, _short(str(answer[:SHOWN])), _short(str(real[:SHOWN])))])


def score_input(answer: Any, truth: Truth) -> Graded:
    """The run is of the predicted call: does it return the output the test asserts?"""
    real = truth.result.value
    ok = real is not None and matches(truth.expected, real, truth.mode, truth.rtol)
    shown = _short(render(real)) if real is not None else ""
    return Graded(float(ok), [Detail("output", float(ok), _show(truth.expected), shown)])


def coderl_plus(answer: Any, truth: Truth) -> tuple[float, list[Detail], dict[str, float]]:
    """CodeRL+'s reward for an answer {"final_output": ..., "variables": {...}} (values compared
    leniently): the reward, the details, and the components (format, values). Its question asks
    the output and the variables; other names are ignored (and listed)."""
    values = answer["variables"]
    if not isinstance(values, dict):
        raise ParseError("'variables' must be a dict of names")
    details = score_output(answer["final_output"], truth).details
    variables, ignored = _variable_details(values, asked_variables(truth), truth)
    details += variables
    share = sum(d.score for d in details) / len(details)
    others = [k for k in answer if k not in ("final_output", "variables")]
    return 0.1 + 0.9 * share, details + _ignored(others + ignored), {"format": 1.0, "values": share}


def score_probes(answer: Any, truth: Truth) -> Graded:
    """Each probe's answer scored on its own (`probes.grade`); the score is their mean. Components:
    the mean per question when a bundle mixes them; with mode coderl_plus, CodeRL+'s shape
    0.1 + 0.9 * mean (format, values)."""
    run = probes.Run(truth.trace)
    details: list[Detail] = []
    by_question: dict[str, list[float]] = {}
    for number, (probe, given) in enumerate(zip(truth.probes, answer), 1):
        value, shown, actual = probes.grade(probe, given, run, truth.mode, truth.rtol)
        details.append(Detail(f"{number}: {probe.label()}", value, shown, actual))
        by_question.setdefault(probe.question, []).append(value)
    mean = sum(d.score for d in details) / len(details) if details else 0.0
    components = {q: sum(v) / len(v) for q, v in by_question.items()} if len(by_question) > 1 else {}
    if truth.mode == "coderl_plus":
        return Graded(0.1 + 0.9 * mean, details, {"format": 1.0, "values": mean, **components})
    return Graded(mean, details, components)


def asked_probes(question: str, given: Any) -> tuple[str, list[Probe]]:
    """The question and its probes, checked: a probe question needs probes of its own question
    (coverage alone: the set of lines that run); "auto" with probes is their question (bundle when
    they mix); other questions take none. Raises InvalidTask."""
    asked = probes.as_probes(given)
    if question == "auto" and asked:
        question = asked[0].question if len({p.question for p in asked}) == 1 else "bundle"
    if question not in PROBE_QUESTIONS:
        if asked:
            raise InvalidTask(f"probes are for the questions {', '.join(PROBE_QUESTIONS)}, not {question!r}")
        return question, asked
    if not asked and question == "coverage":
        asked = [Probe(question="coverage")]
    if not asked:
        raise InvalidTask(f"a {question} question needs probes (what to ask: line, execution, variable)")
    strays = [p.question for p in asked if question != "bundle" and p.question != question]
    if strays:
        raise InvalidTask(f"a {question} question takes {question} probes only, got {', '.join(strays)}")
    return question, asked


# ---------------------------------------------------------------- gold answers


def gold_output(truth: Truth) -> Any:
    if truth.stdio:
        return truth.result.stdout  # the sandbox lets a program write to its real stdout
    returned = truth.trace.returned
    return gold(returned) if returned is not None else None


def gold_final(truth: Truth) -> dict[str, Any]:
    values = final_values(truth.trace)
    return {name: gold(values[name]) for name in truth.variables or [] if name in values}


def gold_coderl_plus(truth: Truth) -> dict[str, Any]:
    return {"final_output": gold_output(truth), "variables": gold_final(truth)}


def gold_steps(truth: Truth) -> dict[str, Any]:
    steps = line_changes(truth.trace)
    return {"steps": [{"line": line, "changes": {k: gold(v) for k, v in changed.items()}} for line, changed in steps]}


def gold_lines(truth: Truth) -> dict[str, Any]:
    return {"lines": [s.line for s in line_steps(truth.trace)]}


def gold_probes(truth: Truth) -> Any:
    """One probe's answer, or the list of several's."""
    run = probes.Run(truth.trace)
    answers = [probes.answer(p, run) for p in truth.probes]
    return answers[0] if len(answers) == 1 else answers


# ---------------------------------------------------------------- the registry

PROBE_QUESTIONS = ("state", "next", "coverage", "bundle")  # asked by their probes' own texts (`Probe.text`)

QUESTIONS: dict[str, Question] = {
    q.name: q
    for q in (
        Question(
            "output",
            score_output,
            gold_output,
            "What does the code produce{what}? Think step by step, then write the value as a Python literal "
            "on the last line.",
        ),
        Question(
            "final",
            score_final,
            gold_final,
            "After the code runs{what}, what are the final values of {names}? Think step by step, then write "
            "a Python dict literal mapping each name to its value on the last line.",
        ),
        Question(
            "steps",
            score_steps,
            gold_steps,
            "Trace the execution{what} line by line: for each executed line, the variables it changes. Think "
            "step by step, then write {{'steps': [{{'line': n, 'changes': {{name: value}}}}, ...]}} on the last "
            "line.",
            numbered=True,
        ),
        Question(
            "lines",
            score_lines,
            gold_lines,
            "Which line numbers execute{what}, in order? Think step by step, then write {{'lines': [...]}} on "
            "the last line.",
            numbered=True,
        ),
        Question("input", score_input, component="input"),
        *(
            Question(name, score_probes, gold_probes, numbered=True, read=probes.read_answers)
            for name in PROBE_QUESTIONS
        ),
    )
}
_WRAPPED = ("steps", "lines", "output")  # answers that may come as {"steps": [...]} and so on


def check_question(question: str) -> None:
    """Raises InvalidTask for a question that is neither "auto" nor in `QUESTIONS`."""
    if question != "auto" and question not in QUESTIONS:
        raise InvalidTask(f"unknown question {question!r}: choose auto, {', '.join(QUESTIONS)}")


def resolve(question: str, value: Any) -> tuple[str, Any]:
    """The question an answer is for ("auto": from its shape), and the part of the answer that matters."""
    check_question(question)
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key in _WRAPPED and question in ("auto", key):
            return key, inner
    if question != "auto":
        return question, value
    if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
        return "final", value
    if isinstance(value, list) and value and all(isinstance(s, dict) and "line" in s for s in value):
        return "steps", value
    return "output", value
