"""`score` and `score_batch`: a model's answer against what the code really does.

Tasks (what the answer predicts):
- "output": the value of the traced call (stdout for stdin/stdout tests);
- "final":  final values of variables ({"y": 6}), or the CodeRL+ answer
            {"final_output": 7, "variables": {"y": 6}} (the output is one more item);
- "steps":  the line-by-line trajectory, [{"line": 3, "changes": {"y": 6}}, ...];
- "lines":  the sequence of executed line numbers, {"lines": [2, 3, 4]};
- "input":  CRUXEval-I, arguments that make `f` return the asserted output;
- "auto":   from the answer's shape: {"final_output"/"variables"} or a dict of
            names -> final; {"steps": [...]} or a list of step dicts -> steps;
            {"lines": [...]} -> lines; {"output": x} or any other value -> output.
            `Score.task` says which was chosen.

Rewards, in [0, 1]: output and input 1 or 0; final: correct items / items,
where the items are the variables asked for (`variables=`, else those worth
asking about: see `tasks.interesting_variables`) plus every other predicted name;
steps and lines: the alignment score (`align`). With no answer, the reward is the
tests' pass rate. `weights` mixes the answer's score ("prediction", default 1)
with the pass rate ("tests", default 0). mode="coderl_plus" gives CodeRL+'s
reward instead: 0.1 for the format plus 0.9 * correct / (1 + n), lenient values.

Statuses: ok, parse_error (reward 0), the code's own failures from the sandbox
(error, timeout, memory_exceeded, output_exceeded, killed: reward 0), and two
that must be masked, never scored, so their reward is None: infra_error (ours or
the machine's) and invalid_task (malformed tests). Nothing here raises into the
caller for bad input.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import numpy as np

import sandbox
from sandbox import Job, Limits, Result
from tracer import Trace, encode, render

from . import align
from .compare import DEFAULT_RTOL, matches
from .parse import ParseError, parse_answer, parse_arguments
from .tasks import final_values, interesting_variables, line_steps
from .truth import (
    CACHE,
    InvalidTask,
    ResultCache,
    expected_output,
    function_name,
    normalize_tests,
    pass_rate,
    trace_task,
    verdict_tasks,
)

TASKS = ("output", "final", "steps", "lines", "input")
DEFAULT_WEIGHTS = {"prediction": 1.0, "tests": 0.0}
DEFAULT_LIMITS = Limits(wall_time=10.0, cpu_time=10.0)
_MASKED = ("infra_error", "invalid_task")


class Detail(msgspec.Struct, frozen=True):
    item: str  # "output", "y", "step 3 (line 5)", "lines"
    score: float  # 1.0 right, 0.0 wrong, in between for partly right steps
    predicted: str = ""
    actual: str = ""


class Score(msgspec.Struct, kw_only=True):
    reward: float | None  # None when the status must be masked (infra_error, invalid_task)
    status: str
    task: str = ""
    components: dict[str, float] = {}
    details: list[Detail] = []
    prediction: Any = None  # the parsed answer
    message: str = ""

    @property
    def masked(self) -> bool:
        """True when a trainer must drop this sample instead of scoring it."""
        return self.status in _MASKED


class Item(msgspec.Struct, kw_only=True):
    """One thing to score (the arguments of `score`)."""

    code: str
    tests: Any
    predicted_trace: Any = None
    task: str = "auto"
    test_index: int = 0
    variables: list[str] | None = None
    mode: str = "typed"


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _show(value: Any) -> str:
    try:
        return _short(render(encode(value)))
    except Exception:  # never let a display problem fail a score
        return "?"


def resolve_task(task: str, value: Any) -> tuple[str, Any]:
    """The task an answer is for, and the part of the answer that matters."""
    if task not in ("auto", *TASKS):
        raise InvalidTask(f"unknown task {task!r}: choose auto, {', '.join(TASKS)}")
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key in ("steps", "lines", "output") and task in ("auto", key):
            return key, inner
    if task != "auto":
        return task, value
    if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
        return "final", value
    if isinstance(value, list) and value and all(isinstance(s, dict) and "line" in s for s in value):
        return "steps", value
    return "output", value


# ---------------------------------------------------------------- per task


def _score_output(
    predicted: Any, trace: Trace, stdout: str | None, mode: str, rtol: float
) -> tuple[float, list[Detail]]:
    """Against the call's value, or against `stdout` for stdin/stdout tests (None otherwise)."""
    if stdout is not None:
        real = stdout
        ok = isinstance(predicted, str) and sandbox.matches(predicted, real)
        return float(ok), [Detail("output", float(ok), _show(predicted), _short(repr(real)))]
    actual = trace.returned if trace.returned is not None else encode(None)
    ok = matches(predicted, actual, mode, rtol)
    return float(ok), [Detail("output", float(ok), _show(predicted), _short(render(actual)))]


def _score_final(
    predicted: Any,
    trace: Trace,
    stdout: str | None,
    variables: list[str] | None,
    mode: str,
    rtol: float,
    code: str | None = None,
) -> tuple[float, list[Detail], int]:
    if not isinstance(predicted, dict):
        raise ParseError(f"a final-values answer is a dict of names, got {type(predicted).__name__}")
    values = (
        predicted.get("variables", predicted)
        if ("variables" in predicted or "final_output" in predicted)
        else predicted
    )
    if not isinstance(values, dict):
        raise ParseError("'variables' must be a dict of names")
    asked = list(variables) if variables is not None else interesting_variables(trace, code)
    names = asked + [n for n in values if isinstance(n, str) and n not in asked and n != "final_output"]
    real = final_values(trace)
    details = []
    if "final_output" in predicted:
        _, output_details = _score_output(predicted["final_output"], trace, stdout, mode, rtol)
        details += output_details
    for name in names:
        actual = real.get(name)
        if name not in values or actual is None:
            details.append(
                Detail(
                    name,
                    0.0,
                    _show(values[name]) if name in values else "",
                    render(actual) if actual is not None else "<no such variable>",
                )
            )
            continue
        ok = matches(values[name], actual, mode, rtol)
        details.append(Detail(name, float(ok), _show(values[name]), _short(render(actual))))
    total = len(details)
    return (sum(d.score for d in details) / total if total else 1.0), details, len(asked)


def _predicted_steps(predicted: Any) -> list[tuple[int | None, dict]]:
    if not isinstance(predicted, list):
        raise ParseError(
            f"a steps answer is a list of {{'line': ..., 'changes': {{...}}}}, got {type(predicted).__name__}"
        )
    steps = []
    for item in predicted:
        if isinstance(item, dict):
            line = item.get("line")
            changes = next((item[k] for k in ("changes", "variables", "vars", "state") if k in item), {})
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            line, changes = item
        else:
            raise ParseError(f"a step must be a dict with 'line' (and 'changes'), got {_show(item)}")
        steps.append((line if type(line) is int else None, changes if isinstance(changes, dict) else {}))
    return steps


def _score_steps(predicted: Any, trace: Trace, mode: str, rtol: float) -> tuple[float, list[Detail]]:
    pred = _predicted_steps(predicted)[: align.MAX_LENGTH]
    real = line_steps(trace)
    actual = real[: align.MAX_LENGTH]
    by_line: dict[int, list[int]] = {}
    for j, step in enumerate(actual):
        by_line.setdefault(step.line, []).append(j)
    similarity = np.zeros((len(pred), len(actual)))
    for i, (line, changes) in enumerate(pred):
        for j in by_line.get(line, ()):
            real_changes = actual[j].changes
            names = set(real_changes) | {k for k in changes if isinstance(k, str)}
            if not names:
                similarity[i, j] = 1.0
                continue
            right = sum(1 for n in real_changes if n in changes and matches(changes[n], real_changes[n], mode, rtol))
            similarity[i, j] = right / len(names)
    score = align.alignment_score(similarity, len(pred), len(real))
    best = similarity.max(axis=1) if similarity.size else np.zeros(len(pred))
    details = [Detail(f"step {i} (line {line})", float(best[i])) for i, (line, _) in enumerate(pred)]
    return score, details


def _score_lines(predicted: Any, trace: Trace) -> tuple[float, list[Detail]]:
    if not isinstance(predicted, list) or not all(type(x) is int for x in predicted):
        raise ParseError("a lines answer is a list of line numbers")
    real = [s.line for s in line_steps(trace)]
    score = align.alignment_score(align.line_similarity(predicted, real), len(predicted), len(real))
    return score, [Detail("lines", score, _short(str(predicted)), _short(str(real)))]


# ---------------------------------------------------------------- scoring


class _Plan:
    """The sandbox runs one item needs, and how to turn their results into a Score."""

    def __init__(self, item: Item, limits: Limits, trace_limits: dict, with_verdict: bool):
        self.item = item
        self.tests = normalize_tests(item.tests, item.task)
        self.parsed: Any = None
        self.task = item.task
        self.tasks: list[Job] = []  # the runs the answer is compared with
        self.verdict: list[Job] = []  # the runs that give the pass rate, when it is weighed in too
        self.parse_error: str | None = None
        if item.mode not in ("typed", "coderl_plus"):
            raise InvalidTask(f"unknown mode {item.mode!r}: choose typed or coderl_plus")
        if self.tests.kind == "input" or item.task == "input":
            self.task = "input"
            self._plan_input(limits)
            return
        if item.predicted_trace is None:
            self.task = "tests"
            self.tasks = verdict_tasks(item.code, self.tests, limits)
            return
        try:
            parsed = parse_answer(item.predicted_trace)
            self.parsed = parsed.value
            self.task, self.answer = resolve_task(item.task, parsed.value)
        except ParseError as error:
            self.parse_error = str(error)
            return
        self.tasks = [trace_task(item.code, self.tests, item.test_index, limits, trace_limits)]
        if with_verdict:
            self.verdict = verdict_tasks(item.code, self.tests, limits)

    def _plan_input(self, limits: Limits) -> None:
        tests, index = self.tests, self.item.test_index
        if not 0 <= index < len(tests.items):
            raise InvalidTask(f"test_index {index} is out of range for {len(tests.items)} tests")
        self.expected = expected_output(tests, index)
        name = function_name(tests, index)
        if self.item.predicted_trace is None:
            raise InvalidTask("an input task needs a predicted input")
        try:
            args, kwargs = parse_arguments(self.item.predicted_trace, name)
        except ParseError as error:
            self.parse_error = str(error)
            return
        self.parsed = list(args)
        call = (
            f"{name}("
            + ", ".join([render(encode(a)) for a in args] + [f"{k}={render(encode(v))}" for k, v in kwargs.items()])
            + ")"
        )
        self.tasks = [Job(mode="call", code=self.item.code, call=call, limits=limits)]

    def finish(self, results: list[Result], weights: dict, rtol: float) -> Score:
        item = self.item
        if self.parse_error is not None:
            return Score(
                reward=0.0, status="parse_error", task=self.task, message=self.parse_error, components={"format": 0.0}
            )
        failed = next(
            (
                r
                for r in results
                if r.status in _MASKED or (self.task != "tests" and r.status not in ("ok", "passed", "failed"))
            ),
            None,
        )
        if failed is not None:
            return Score(
                reward=None if failed.status in _MASKED else 0.0,
                status=failed.status,
                task=self.task,
                prediction=self.parsed,
                message=failed.message,
            )
        if self.task == "tests":
            rate = pass_rate(self.tests, results)
            return Score(reward=rate, status="ok", task="tests", components={"tests": rate})
        if self.task == "input":
            real = results[0].value
            ok = real is not None and matches(self.expected, real, item.mode, rtol)
            return Score(
                reward=float(ok),
                status="ok",
                task="input",
                components={"input": float(ok)},
                details=[Detail("output", float(ok), _show(self.expected), render(real) if real else "")],
                prediction=self.parsed,
            )
        trace = results[0].trace
        # a program's output: the sandbox lets it write to its real stdout, so the Result has it
        stdout = results[0].stdout if self.tests.kind == "stdio" else None
        try:
            if item.mode == "coderl_plus":
                return self._coderl_plus(trace, stdout, rtol)
            if self.task == "output":
                value, details = _score_output(self.answer, trace, stdout, item.mode, rtol)
            elif self.task == "final":
                value, details, _ = _score_final(self.answer, trace, stdout, item.variables, item.mode, rtol, item.code)
            elif self.task == "steps":
                value, details = _score_steps(self.answer, trace, item.mode, rtol)
            else:
                value, details = _score_lines(self.answer, trace)
        except ParseError as error:
            return Score(reward=0.0, status="parse_error", task=self.task, prediction=self.parsed, message=str(error))
        components = {"prediction": value}
        reward = _mix(components, weights)
        return Score(
            reward=reward, status="ok", task=self.task, components=components, details=details, prediction=self.parsed
        )

    def _coderl_plus(self, trace: Trace, stdout: str | None, rtol: float) -> Score:
        answer = self.parsed
        if not (isinstance(answer, dict) and "final_output" in answer and "variables" in answer):
            return Score(
                reward=0.0,
                status="parse_error",
                task="final",
                prediction=answer,
                message="CodeRL+ answers are {'final_output': ..., 'variables': {...}}",
                components={"format": 0.0},
            )
        _, details, asked = _score_final(
            answer, trace, stdout, self.item.variables, "coderl_plus", rtol, self.item.code
        )
        items = details[: 1 + asked]  # CodeRL+ counts the output and the asked variables only
        correct = sum(d.score for d in items)
        reward = 0.1 + 0.9 * correct / (1 + asked)
        return Score(
            reward=reward,
            status="ok",
            task="final",
            prediction=answer,
            details=details,
            components={"format": 1.0, "values": correct / (1 + asked)},
        )


def _mix(components: dict[str, float], weights: dict) -> float:
    used = {k: w for k, w in weights.items() if k in components and w > 0}
    total = sum(used.values())
    if not total:
        return components.get("prediction", components.get("tests", 0.0))
    return min(1.0, max(0.0, sum(components[k] * w for k, w in used.items()) / total))


def score(
    code: str,
    tests: Any,
    predicted_trace: Any = None,
    *,
    task: str = "auto",
    test_index: int = 0,
    variables: list[str] | None = None,
    mode: str = "typed",
    weights: dict | None = None,
    rtol: float = DEFAULT_RTOL,
    limits: Limits = DEFAULT_LIMITS,
    trace_limits: dict | None = None,
    pool: sandbox.Pool | None = None,
    cache: ResultCache = CACHE,
) -> Score:
    """Score one answer (see the module docstring). Never raises for bad input."""
    item = Item(
        code=code,
        tests=tests,
        predicted_trace=predicted_trace,
        task=task,
        test_index=test_index,
        variables=variables,
        mode=mode,
    )
    return score_batch(
        [item], weights=weights, rtol=rtol, limits=limits, trace_limits=trace_limits, pool=pool, cache=cache
    )[0]


def score_batch(
    items: Iterable[Any],
    *,
    weights: dict | None = None,
    rtol: float = DEFAULT_RTOL,
    limits: Limits = DEFAULT_LIMITS,
    trace_limits: dict | None = None,
    pool: sandbox.Pool | None = None,
    cache: ResultCache = CACHE,
    progress: bool = False,
) -> list[Score]:
    """Score many answers at once, in the order given; one bad item never fails the batch.

    Items are `Item`s or dicts with the arguments of `score`. Each distinct
    sandbox run is made once (and cached), whatever the number of answers about it.
    """
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    trace_limits = trace_limits or {}
    plans: list[Any] = []
    for raw in items:
        try:
            item = raw if isinstance(raw, Item) else msgspec.convert(raw, Item)
            plans.append(_Plan(item, limits, trace_limits, with_verdict=weights.get("tests", 0) > 0))
        except (InvalidTask, msgspec.ValidationError, SyntaxError) as error:
            plans.append(Score(reward=None, status="invalid_task", message=str(error)))
        except Exception as error:  # a bug of ours: masked, and says so
            plans.append(Score(reward=None, status="infra_error", message=f"{type(error).__name__}: {error}"))
    every_task = [t for p in plans if isinstance(p, _Plan) for t in p.tasks + p.verdict]
    results = cache.run(every_task, pool, progress) if every_task else []
    scores, at = [], 0
    for plan in plans:
        if isinstance(plan, Score):
            scores.append(plan)
            continue
        main = results[at : at + len(plan.tasks)]
        verdict = results[at + len(plan.tasks) : at + len(plan.tasks) + len(plan.verdict)]
        at += len(plan.tasks) + len(plan.verdict)
        try:
            result = plan.finish(main, weights, rtol)
            if verdict and result.status == "ok":
                result.components["tests"] = pass_rate(plan.tests, verdict)
                result.reward = _mix(result.components, weights)
            scores.append(result)
        except Exception as error:
            scores.append(Score(reward=None, status="infra_error", message=f"{type(error).__name__}: {error}"))
    return scores
