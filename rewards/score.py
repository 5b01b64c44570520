"""`score` and `score_batch`: a model's answer against what the code really does.

The question (what the answer predicts: output, final, steps, lines, input, or
the white-box state, next, coverage and bundle, asked by `probes`; see
`rewards.questions`) is given, or "auto": chosen from the answer's shape:
{"final_output"/"variables"} or a dict of names -> final; {"steps": [...]}, a
list of step dicts or a CWM-format trace -> steps; {"lines": [...]} -> lines;
{"output": x} or any other value -> output; with probes, their question.
`Score.question` says which was chosen. Tests with `assert f(??) == out` make it
"input". "auto" is for a person reading the Score: it lets the answer pick the
question, so a policy would pick the easiest one. Rewards for training name the
question: the trainer adapters and the server take it from the dataset row and
refuse "auto" (`rewards.integrations`).

With no answer, the reward is the tests' pass rate (`Score.question` "tests").
`weights` mixes the answer's score ("prediction", default 1) with the pass rate
("tests", default 0). mode="coderl_plus" gives CodeRL+'s reward for a final
answer instead: 0.1 for the format plus 0.9 * correct / (1 + n), lenient values.

Statuses: ok, parse_error (reward 0: the answer cannot be read, or is too
large or too deep to score), the code's own failures from the sandbox (error,
timeout, memory_exceeded, output_exceeded, killed: reward 0), and those that
must be masked, never scored, so their reward is None: the sandbox's
`NOT_VERDICTS` (infra_error, ours or the machine's; starved, a timeout the
machine caused) and invalid_task (malformed tests or fields, or tests that
assert nothing). Nothing an answer holds can make any of those: any failure
while reading or scoring an answer is its parse_error. Nothing here raises
into the caller for bad input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, NamedTuple

import msgspec

import sandbox
from sandbox import Job, Limits, Result
from tracer import encode, render, to_literal

from . import cwm, scorers
from .cache import CACHE, ResultCache
from .compare import DEFAULT_RTOL
from .jobs import pass_rate, trace_job, verdict_jobs
from .parse import ParseError, parse_answer, parse_arguments
from .probes import Probe
from .questions import PROBE_QUESTIONS, QUESTIONS, Detail, Truth, asked_probes, check_question, coderl_plus, resolve
from .testcases import InvalidTask, parse_tests

DEFAULT_WEIGHTS = {"prediction": 1.0, "tests": 0.0}
DEFAULT_LIMITS = Limits(wall_time=10.0, cpu_time=10.0)
MODES = ("typed", "coderl_plus")
_MASKED = (*sandbox.NOT_VERDICTS, "invalid_task")


class Score(msgspec.Struct, kw_only=True):
    reward: float | None  # None when the status must be masked (infra_error, starved, invalid_task)
    status: str
    question: str = ""  # the question scored (auto resolved), or "tests" for the pass rate alone
    components: dict[str, float] = {}
    details: list[Detail] = []
    prediction: Any = None  # the parsed answer
    message: str = ""

    @property
    def masked(self) -> bool:
        """True when a trainer must drop this sample instead of scoring it."""
        return self.status in _MASKED


class Item(msgspec.Struct, kw_only=True):
    """One thing to score (the arguments of `score`). As a dict, "task" is accepted for "question"."""

    code: str
    tests: Any
    predicted_trace: Any = None
    question: str = "auto"
    test_index: int = 0
    variables: list[str] | None = None
    mode: str = "typed"
    probes: list[Probe] = []  # state, next, coverage, bundle: the points of the run asked about
    entry_points: list[str] | None = None  # what the tests take from the solution (see `rewards.jobs`)


def as_item(raw: Any) -> Item:
    """An `Item`, or a dict of its fields (with "task", the old name of "question")."""
    if isinstance(raw, Item):
        return raw
    if isinstance(raw, dict) and "task" in raw:
        raw = dict(raw)
        raw.setdefault("question", raw.pop("task"))
    return msgspec.convert(raw, Item)


class _Plan:
    """The sandbox jobs one item needs, and how to turn their results into a Score."""

    def __init__(
        self, item: Item, limits: Limits, trace_limits: dict[str, int], with_verdict: bool, trace_tests: bool = False
    ):
        self.item = item
        self.suite = parse_tests(item.tests, item.question)
        self.question, self.probes = asked_probes(item.question, item.probes)
        self.parsed: Any = None
        self.answer: Any = None
        self.expected: Any = None  # input: the output the test asserts
        self.jobs: list[Job] = []  # the runs the answer is checked against
        self.verdict: list[Job] = []  # the runs that give the pass rate, when it is weighed in too
        self.parse_error: str | None = None
        if item.mode not in MODES:
            raise InvalidTask(f"unknown mode {item.mode!r}: choose {' or '.join(MODES)}")
        if self.suite.form == "input":
            self.question = "input"
            self._plan_input(limits)
            return
        if item.predicted_trace is None:
            self.question = "tests"
            self.jobs = verdict_jobs(item.code, self.suite, limits, item.entry_points or (), trace_first=trace_tests)
            return
        check_question(item.question)  # the task's fields are checked before the answer is read
        self.jobs = [trace_job(item.code, self.suite, item.test_index, limits, trace_limits)]
        if with_verdict:
            self.verdict = verdict_jobs(item.code, self.suite, limits, item.entry_points or ())
        reader = QUESTIONS[self.question].read if self.question in QUESTIONS else None
        try:
            if cwm.is_cwm(item.predicted_trace) and self.question in ("auto", "steps"):
                self.question, self.parsed = "steps", cwm.read(item.predicted_trace, item.code)
                self.answer = self.parsed
            elif reader is not None:
                self.parsed = self.answer = reader(item.predicted_trace, self.probes)
            else:
                self.parsed = parse_answer(item.predicted_trace).value
                self.question, self.answer = resolve(self.question, self.parsed)
        except Exception as error:  # whatever the answer holds, it is the answer's failure
            self.jobs = self.verdict = []
            self.parse_error = _answer_failure(error)
            return
        if self.question in ("output", "final") or (
            item.mode == "coderl_plus" and self.question not in PROBE_QUESTIONS
        ):
            # Final values and the output need no line events: recorded as "final", a long run
            # costs close to its untraced time (and is not cut at the step cap).
            self.jobs = [msgspec.structs.replace(self.jobs[0], trace_record="final")]

    def _plan_input(self, limits: Limits) -> None:
        case = self.suite.case(self.item.test_index)
        if case.expected is None:
            raise InvalidTask(f"input tests look like 'assert f(??) == output', got {case.source!r}")
        self.expected = case.expected_value()
        if case.function is None:
            raise InvalidTask(f"cannot find the function in {case.source!r}")
        if self.item.predicted_trace is None:
            raise InvalidTask("an input question needs a predicted input")
        try:
            args, kwargs = parse_arguments(self.item.predicted_trace, case.function)
        except Exception as error:  # whatever the answer holds, it is the answer's failure
            self.parse_error = _answer_failure(error)
            return
        self.parsed = list(args)
        try:  # exact source, however long: a cut marker would not run
            shown = [to_literal(a) for a in args] + [f"{k}={to_literal(v)}" for k, v in kwargs.items()]
        except Exception as error:  # (a ValueError says why; anything else is the answer's failure too)
            why = str(error)[:200] if isinstance(error, ValueError) else _answer_failure(error)
            self.parse_error = f"the input cannot be written as Python: {why}"
            return
        call = f"{case.function}({', '.join(shown)})"
        self.jobs = [Job(mode="call", code=self.item.code, call=call, limits=limits)]

    def finish(self, results: list[Result], verdict: list[Result], weights: dict[str, float], rtol: float) -> Score:
        result = self._score(results, rtol)
        if verdict and result.status == "ok":
            result.components["tests"] = pass_rate(self.suite, verdict)
            result.reward = _mix(result.components, weights)
        return result

    def _score(self, results: list[Result], rtol: float) -> Score:
        item, question = self.item, self.question
        if self.parse_error is not None:
            return Score(
                reward=0.0,
                status="parse_error",
                question=question,
                message=self.parse_error,
                components={"format": 0.0},
            )
        checked = ("ok", "passed", "failed")
        failed = next(
            (r for r in results if r.status in _MASKED or (question != "tests" and r.status not in checked)), None
        )
        if failed is not None:
            return Score(
                reward=None if failed.status in _MASKED else 0.0,
                status=failed.status,
                question=question,
                prediction=self.parsed,
                message=failed.message,
            )
        if question == "tests":
            rate = pass_rate(self.suite, results)
            return Score(reward=rate, status="ok", question=question, components={"tests": rate})
        truth = Truth(
            result=results[0],
            code=item.code,
            stdio=self.suite.form == "stdio",
            variables=item.variables,
            expected=self.expected,
            mode=item.mode,
            rtol=rtol,
            probes=tuple(self.probes),
        )
        try:
            if item.mode == "coderl_plus" and question not in ("input", *PROBE_QUESTIONS):
                return self._coderl_plus(truth)
            asked = QUESTIONS[question]
            value, details, components = asked.score(self.answer, truth)
        except InvalidTask as error:  # also a probe about a line that never runs that often, or an undefined variable
            return Score(reward=None, status="invalid_task", question=question, message=str(error))
        except Exception as error:  # whatever the answer holds, it is the answer's failure, never masked
            return Score(
                reward=0.0,
                status="parse_error",
                question=question,
                prediction=self.parsed,
                message=_answer_failure(error),
            )
        return Score(
            reward=value,
            status="ok",
            question=question,
            components={asked.component: value, **(components or {})},
            details=details,
            prediction=self.parsed,
        )

    def _coderl_plus(self, truth: Truth) -> Score:
        answer = self.parsed
        if not (isinstance(answer, dict) and "final_output" in answer and "variables" in answer):
            return Score(
                reward=0.0,
                status="parse_error",
                question="final",
                prediction=answer,
                message="CodeRL+ answers are {'final_output': ..., 'variables': {...}}",
                components={"format": 0.0},
            )
        reward, details, components = coderl_plus(answer, truth)
        return Score(
            reward=reward, status="ok", question="final", prediction=answer, details=details, components=components
        )


def _answer_failure(error: BaseException) -> str:
    """Why an answer could not be read or scored, in a line."""
    if isinstance(error, ParseError):
        return str(error)
    if isinstance(error, (RecursionError, MemoryError)):
        return f"the answer is too deep or too large to score ({type(error).__name__})"
    text = str(error)
    return f"the answer could not be scored: {type(error).__name__}: {text[:200]}"


def jsonable(s: Score) -> Score:
    """The Score, with its prediction as text where JSON cannot hold it (a complex, a dict with tuple keys)."""
    try:
        msgspec.json.encode(s.prediction)
        return s
    except (TypeError, ValueError, OverflowError, RecursionError):
        try:
            shown = render(encode(s.prediction))
        except Exception:  # a value too odd even to render: say what it was
            shown = f"<{type(s.prediction).__name__}>"
        return msgspec.structs.replace(s, prediction=shown)


def _mix(components: dict[str, float], weights: dict[str, float]) -> float:
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
    question: str = "auto",
    task: str | None = None,
    test_index: int = 0,
    variables: list[str] | None = None,
    mode: str = "typed",
    probes: Sequence[Probe | dict[str, Any]] | None = None,
    entry_points: list[str] | None = None,
    weights: dict[str, float] | None = None,
    rtol: float = DEFAULT_RTOL,
    limits: Limits = DEFAULT_LIMITS,
    trace_limits: dict[str, int] | None = None,
    pool: sandbox.Pool | None = None,
    cache: ResultCache = CACHE,
) -> Score:
    """Score one answer (see the module docstring). Never raises for bad input.

    `probes` (`rewards.probes.Probe`s or dicts of their fields) say what a state, next, coverage
    or bundle question asks. `entry_points` names the functions (or classes) the tests take from
    the solution; every other name the tests use resolves in the judge (see `rewards.jobs`).
    `task=` is the old name of `question=`, kept as an alias (used when `question` is not given)."""
    if task is not None and question == "auto":
        question = task
    item = {  # a dict, so that `as_item` checks the probes given as dicts
        "code": code,
        "tests": tests,
        "predicted_trace": predicted_trace,
        "question": question,
        "test_index": test_index,
        "variables": variables,
        "mode": mode,
        "probes": list(probes or ()),
        "entry_points": entry_points,
    }
    return score_batch(
        [item], weights=weights, rtol=rtol, limits=limits, trace_limits=trace_limits, pool=pool, cache=cache
    )[0]


def score_batch(
    items: Iterable[Any],
    *,
    weights: dict[str, float] | None = None,
    rtol: float = DEFAULT_RTOL,
    limits: Limits = DEFAULT_LIMITS,
    trace_limits: dict[str, int] | None = None,
    pool: sandbox.Pool | None = None,
    cache: ResultCache = CACHE,
    progress: bool = False,
    processes: int | None = None,
) -> list[Score]:
    """Score many answers at once, in the order given; one bad item never fails the batch.

    Items are `Item`s or dicts with the arguments of `score`. Each distinct
    sandbox run is made once (and cached), whatever the number of answers about it.
    `processes`: how many scoring processes read and score the answers (`rewards.scorers`);
    None chooses (several for a large batch on a machine with cores to spare), 0 scores them
    here. The Scores are the same either way.
    """
    scored = run_batch(
        items,
        weights=weights,
        rtol=rtol,
        limits=limits,
        trace_limits=trace_limits,
        pool=pool,
        cache=cache,
        progress=progress,
        processes=processes,
    )
    return [s.score for s in scored]


class Scored(NamedTuple):
    """An item's Score and the sandbox results it was scored from, in the order its plan made them
    (for an item without an answer: the runs of its tests, the first one first; empty when nothing ran)."""

    score: Score
    results: list[Result]


class BatchOptions(NamedTuple):
    """How a batch is scored (the keyword arguments of `run_batch` that reach its plans and scorers)."""

    weights: dict[str, float]
    rtol: float
    limits: Limits
    trace_limits: dict[str, int]
    trace_tests: bool


def run_batch(
    items: Iterable[Any],
    *,
    weights: dict[str, float] | None = None,
    rtol: float = DEFAULT_RTOL,
    limits: Limits = DEFAULT_LIMITS,
    trace_limits: dict[str, int] | None = None,
    pool: sandbox.Pool | None = None,
    cache: ResultCache = CACHE,
    progress: bool = False,
    trace_tests: bool = False,
    processes: int | None = None,
) -> list[Scored]:
    """`score_batch`, keeping each item's sandbox results beside its Score. With `trace_tests`,
    the run of an answerless item's first test also records its trace (same run, same verdict;
    `jobs.verdict_jobs`): what `rewards.onpolicy` builds alignment tasks from."""
    options = BatchOptions({**DEFAULT_WEIGHTS, **(weights or {})}, rtol, limits, trace_limits or {}, trace_tests)
    items = list(items)
    count = scorers.processes_for(len(items)) if processes is None else processes
    if count > 0:
        return scorers.shared(count).run_batch(items, options, pool, cache, progress, count)
    plans = plan_batch(items, options)
    jobs = batch_jobs(plans)
    results = cache.run(jobs, pool, progress) if jobs else []
    return attach_results(finish_batch(plans, results, options), [job_count(plan) for plan in plans], results)


def plan_batch(items: list[Any], options: BatchOptions) -> list[_Plan | Score]:
    """Each item's plan (its answer read, the sandbox runs it needs), or its Score when it needs none."""
    with_verdict = options.weights.get("tests", 0) > 0
    return [_plan(raw, options.limits, options.trace_limits, with_verdict, options.trace_tests) for raw in items]


def batch_jobs(plans: list[_Plan | Score]) -> list[Job]:
    """The sandbox runs the plans need, in their order."""
    return [job for plan in plans if isinstance(plan, _Plan) for job in plan.jobs + plan.verdict]


def job_count(plan: _Plan | Score) -> int:
    return len(plan.jobs) + len(plan.verdict) if isinstance(plan, _Plan) else 0


def finish_batch(plans: list[_Plan | Score], results: list[Result], options: BatchOptions) -> list[Score]:
    """The Scores, from the results of `batch_jobs(plans)` in the same order."""
    remaining = iter(results)
    return [
        plan if isinstance(plan, Score) else _finish(plan, remaining, options.weights, options.rtol) for plan in plans
    ]


def attach_results(scores: list[Score], counts: list[int], results: list[Result]) -> list[Scored]:
    """Each Score with its item's results: the next `counts[i]` of `results` (those of `batch_jobs`)."""
    remaining = iter(results)
    return [Scored(score, list(islice(remaining, count))) for score, count in zip(scores, counts)]


def _plan(
    raw: Any, limits: Limits, trace_limits: dict[str, int], with_verdict: bool, trace_tests: bool
) -> _Plan | Score:
    try:
        return _Plan(as_item(raw), limits, trace_limits, with_verdict, trace_tests)
    except (InvalidTask, msgspec.ValidationError, SyntaxError) as error:
        return Score(reward=None, status="invalid_task", message=str(error))
    except Exception as error:  # a bug of ours: masked, and says so
        return _infra_error(error)


def _finish(plan: _Plan, results: Iterator[Result], weights: dict[str, float], rtol: float) -> Score:
    """The plan's Score, from its own results: the next ones, in the order it listed its jobs."""
    own, verdict = list(islice(results, len(plan.jobs))), list(islice(results, len(plan.verdict)))
    try:
        return plan.finish(own, verdict, weights, rtol)
    except Exception as error:  # a bug of ours: masked, and says so
        return _infra_error(error)


def _infra_error(error: Exception) -> Score:
    return Score(reward=None, status="infra_error", message=f"{type(error).__name__}: {error}")
