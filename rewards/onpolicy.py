"""On-policy alignment tasks (CodeRL+): a batch's failed code rollouts, turned into questions about
their own execution, and the share of each later batch that asks them.

CodeRL+ (Jiang et al., 2025) executes the failed rollouts of each step, asks the model to predict
the output and final variable values of its own wrong program on the first test's input, keeps
those tasks in a buffer and fills 40% of the prompts of later batches from it (their code: the
previous step's extraction, drawn with replacement, one step behind the policy). Here:

- The trace comes from the run that scored the rollout: `score.run_batch(..., trace_tests=True)`
  has the sandbox record the first test's run while it judges it (`sandbox.Job.trace`; in asserts
  mode the code and the tests' first call), so extraction costs no sandbox run of its own.
- `extract(rollouts, Extractor(...))` picks the rollouts that qualify and builds their tasks
  (`tasks.build_task` on that run). Default, as CodeRL+: failed (not every test passed), ran
  cleanly on the first test, produced output (a value other than None; a program: some stdout),
  one task per distinct (input, output) in the batch, asking CodeRL+'s question with its template.
  Options: `select="all"`, `require_output=False`, `max_per_prompt`, `dedup=False`, and a prompt
  length limit (`max_prompt_tokens`, counted by `prompt_length`: a callable or a tokenizer).
  Every rollout not taken is counted under one reason (`SKIP_REASONS`).
- `Mix` lays out each batch of B prompts: the first int(ratio * B) places are drawn from the
  buffer (`rewards.buffer`), the rest are dataset rows, shuffled per pass through the dataset.
  The trainer glue (`rewards.onpolicy_trl`, `rewards.onpolicy_verl`) reads its batches in order.
"""

from __future__ import annotations

import ast
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from sandbox import Result
from tracer import render

from .score import Scored
from .tasks import AlignmentTask, build_task
from .testcases import InvalidTask, TestSuite, parse_tests

SKIP_REASONS = (
    "masked",  # the rollout's score is infra_error or invalid_task
    "passed",  # it passed every test (select="failed")
    "not_clean",  # the first test's run raised, timed out or was cut short
    "untraceable",  # the first test is not one plain call with literal arguments, or its run has no trace
    "no_output",  # the first test's run produced nothing (None; an empty stdout)
    "duplicate",  # another rollout of the batch had the same input and output
    "per_prompt",  # max_per_prompt tasks were already taken from this prompt
    "nothing_to_ask",  # build_task found no question to ask about the run
    "too_long",  # the prompt is over max_prompt_tokens
)
SkipReason = Literal[
    "masked", "passed", "not_clean", "untraceable", "no_output", "duplicate", "per_prompt", "nothing_to_ask", "too_long"
]
ORIGIN = "onpolicy"  # AlignmentTask.metadata["origin"] of the tasks built here


@dataclass(frozen=True)
class Rollout:
    """One scored RLVR rollout: its prompt (`group`: the tasks of one prompt share it), the code it
    wrote, the tests, and its `Scored` (from `run_batch(..., trace_tests=True)`)."""

    group: str
    code: str
    tests: Any
    scored: Scored


@dataclass(frozen=True)
class Extractor:
    """Which rollouts make alignment tasks, and which task they make (see the module docstring)."""

    select: Literal["failed", "all"] = "failed"
    require_output: bool = True
    dedup: bool = True
    max_per_prompt: int | None = None
    max_prompt_tokens: int | None = None
    prompt_length: Callable[[str], int] | Any = None  # a callable, or a tokenizer (chat template applied if it has one)
    question: str = "final"
    template: str = "coderl_plus"
    max_variables: int = 3
    seed: int = 0


@dataclass
class Seen:
    """What one batch's extraction has taken so far: (input, output) pairs, and tasks per prompt.
    `extract` starts a fresh one per call unless given one (verl's reward scores a batch sample by
    sample, and passes the batch's)."""

    pairs: set[tuple[str, str]] = field(default_factory=set)
    per_prompt: Counter[str] = field(default_factory=Counter)


@dataclass
class Extraction:
    tasks: list[AlignmentTask] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def extract(
    rollouts: Sequence[Rollout], extractor: Extractor = Extractor(), step: int | None = None, seen: Seen | None = None
) -> Extraction:
    """The alignment tasks of a batch's rollouts (in order), and the others counted by reason.
    `step` (the trainer's) is kept in each task's metadata. Never runs the sandbox."""
    out = Extraction()
    seen = Seen() if seen is None else seen
    length = _length_function(extractor.prompt_length) if extractor.max_prompt_tokens is not None else None
    for rollout in rollouts:
        task = _task(rollout, extractor, seen)
        if isinstance(task, str):
            out.skipped[task] += 1
            continue
        if length is not None and length(task.prompt) > (extractor.max_prompt_tokens or 0):
            out.skipped["too_long"] += 1
            continue
        seen.per_prompt[rollout.group] += 1
        task.metadata.update(origin=ORIGIN, step=step, group=rollout.group, pass_rate=rollout.scored.score.reward)
        out.tasks.append(task)
    return out


def _task(rollout: Rollout, extractor: Extractor, seen: Seen) -> AlignmentTask | SkipReason:
    score = rollout.scored.score
    if score.masked or not rollout.scored.results:
        return "masked"
    if extractor.select == "failed" and score.reward == 1.0:
        return "passed"
    try:
        suite = parse_tests(rollout.tests)
    except InvalidTask:
        return "masked"
    run = first_run(suite, rollout.scored.results[0])
    if isinstance(run, str):
        return run
    trace = run.trace
    assert trace is not None  # first_run checked it
    stdio = suite.form == "stdio"
    given = suite.case(0).stdin if stdio else suite.call(0)
    if stdio:
        output = run.stdout if run.stdout.strip() else None
    else:
        output = render(trace.returned) if trace.returned is not None and trace.returned.t != "none" else None
    if extractor.require_output and output is None:
        return "no_output"
    if extractor.dedup:
        key = (given, output or "")
        if key in seen.pairs:
            return "duplicate"
        seen.pairs.add(key)
    if extractor.max_per_prompt is not None and seen.per_prompt[rollout.group] >= extractor.max_per_prompt:
        return "per_prompt"
    built = build_task(
        rollout.code,
        call=None if stdio else given,
        stdin=given if stdio else None,
        question=extractor.question,
        template=extractor.template,
        seed=extractor.seed,
        max_variables=extractor.max_variables,
        result=run,
    )
    return built if isinstance(built, AlignmentTask) else "nothing_to_ask"


def first_run(suite: TestSuite, result: Result) -> Result | SkipReason:
    """The first test's run, from the result of the traced verdict job that ran it, as the call-mode
    (or script-mode) `Result` that `build_task` reads; or why there is none."""
    trace = result.trace
    if suite.form in ("asserts", "check"):
        case = suite.cases[0]
        if trace is None and result.status not in ("passed", "failed"):
            return "not_clean"  # the code raised before the tests, or the run was cut short
        if trace is None or case.function is None or not _literal_call(case.call):
            return "untraceable"  # the tests' first call is not the call the task would show
        start = max(trace.call_step, 0)
        called = next((trace.frames[s.frame].function for s in trace.steps[start:] if s.event == "call"), None)
        if called != case.function:
            return "untraceable"
    elif result.status not in ("ok", "passed", "failed"):
        return "not_clean"
    if trace is None:
        return "untraceable"
    if trace.exception is not None or trace.stopped is not None or trace.tampered or trace.exit_code != 0:
        return "not_clean"
    return msgspec.structs.replace(result, status="ok", value=trace.returned, message="", tests=[])


def _literal_call(call: str | None) -> bool:
    """`f(1, [2, 3], k='x')`: one call of a name, every argument a literal."""
    try:
        node = ast.parse(call or "", mode="eval").body
    except SyntaxError:
        return False
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return False
    arguments = [*node.args, *(k.value for k in node.keywords if k.arg is not None)]
    if len(arguments) != len(node.args) + len(node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
        return False
    try:
        for argument in arguments:
            ast.literal_eval(argument)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _length_function(measure: Any) -> Callable[[str], int]:
    """A prompt's length in tokens: by a callable, or by a tokenizer (with its chat template if it has one)."""
    if measure is None:
        raise ValueError("max_prompt_tokens needs prompt_length: a callable (text -> tokens) or a tokenizer")
    if hasattr(measure, "encode"):
        if getattr(measure, "chat_template", None):
            return lambda text: len(
                measure.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)
            )
        return lambda text: len(measure.encode(text, add_special_tokens=False))
    if callable(measure):
        return lambda text: int(measure(text))
    raise TypeError(f"prompt_length must be a callable or a tokenizer, got {type(measure).__name__}")


def task_fields(task: AlignmentTask) -> dict[str, Any]:
    """The fields a trainer sample needs to be scored as the task's answer (`integrations.make_item`)."""
    return {"kind": "trace", **task.score_args, "test_index": 0}


def rollouts_of(items: Sequence[Any], scored: Sequence[Scored], groups: Sequence[str]) -> list[Rollout]:
    """The RLVR rollouts among trainer samples: `items` as `integrations.make_item` made them (a
    dict, or the Score of a sample it could not read), their `Scored`, and each one's prompt."""
    return [
        Rollout(group, item["code"], item["tests"], s)
        for item, s, group in zip(items, scored, groups)
        if isinstance(item, dict) and "predicted_trace" not in item
    ]


class Mix:
    """The layout of each batch of `batch_prompts` prompts: its first int(ratio * batch_prompts)
    places are alignment tasks (drawn from the buffer, keyed by the batch), the others dataset rows,
    in an order shuffled afresh (by `seed`) on each pass through the dataset. A trainer that reads
    indices 0, 1, 2, ... in order (TRL without shuffling, verl's sequential sampler) gets exactly
    that share in every batch."""

    def __init__(self, rows: int, batch_prompts: int, ratio: float = 0.4, seed: int = 0):
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"the alignment share must be in [0, 1), got {ratio}")
        if rows < 1 or batch_prompts < 1:
            raise ValueError("the mix needs at least one dataset row and one prompt per batch")
        self.rows, self.batch_prompts, self.ratio, self.seed = rows, batch_prompts, ratio, seed
        self.per_batch = int(ratio * batch_prompts)
        if ratio > 0 and self.per_batch == 0:
            raise ValueError(f"a batch of {batch_prompts} prompts has no place for a share of {ratio}: raise either")
        self.dataset_per_batch = batch_prompts - self.per_batch
        self.batches = -(-rows // self.dataset_per_batch)  # per pass
        self.passes = 0
        self._last_batch = -1
        self._order: list[int] = []

    def __len__(self) -> int:
        return self.batches * self.batch_prompts

    def place(self, index: int) -> tuple[int, int | None]:
        """(key, slot) of an alignment place: the batch's key (increasing over passes) and the place
        in its draw; or (row, None) of a dataset row. A pass ends when the indices start again."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        batch, position = divmod(index, self.batch_prompts)
        if batch < self._last_batch or not self._order:
            self.passes += bool(self._order)
            self._order = random.Random(f"{self.seed}:{self.passes}").sample(range(self.rows), self.rows)
        self._last_batch = batch
        if position < self.per_batch:
            return self.passes * self.batches + batch, position
        return self._order[(batch * self.dataset_per_batch + position - self.per_batch) % self.rows], None

    def fallback(self, key: int, slot: int) -> int:
        """The dataset row that takes an alignment place while the buffer cannot fill it."""
        return random.Random(f"{self.seed}:fallback:{key}:{slot}").randrange(self.rows)


__all__ = [
    "ORIGIN",
    "SKIP_REASONS",
    "Extraction",
    "Extractor",
    "Mix",
    "Rollout",
    "Seen",
    "extract",
    "first_run",
    "rollouts_of",
    "task_fields",
]
