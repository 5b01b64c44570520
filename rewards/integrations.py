"""execalign rewards as the plain callables trainers expect: TRL, verl, OpenRLHF, verifiers.

Every adapter handles both kinds of sample, routed by a `kind` field, as
CodeRL+ mixes them in one batch:
- "rlvr":  the completion is code (the last ```python block, else the whole text),
           scored against `tests` (reward = pass rate);
- "trace": the completion predicts the execution of `code` on `tests`
           (reward = `rewards.score`'s, with `question`, `test_index`, `variables`,
           `mode`, `probes`; a `task` field is read as `question`, its old name).
When `kind` is absent it is "trace" if the sample has `code`, else "rlvr". Any
other kind is an invalid_task, and its message names it.

Everything but the completion comes from the dataset row, never from the
answer: a trace sample must name its question (output, final, steps, lines,
input); a row without one, or with "auto" (which would let the answer's shape
pick the easiest question), is an invalid_task that says so, as is a trace
sample without code. An OpenRLHF label must be a JSON object of the fields (a
JSON list is read as the tests of an rlvr sample); text that is not JSON is an
invalid_task.

Masked samples (status infra_error, starved or invalid_task: ours, the machine's
or the dataset's fault) never become a real 0: TRL gets None (it turns None into NaN
and leaves it out of the mean); verl, OpenRLHF and verifiers, which need a
number, get 0.0 and a flag: `masked` = 1.0 in verl's dict and in OpenRLHF's
`extra_logs`. Drop flagged samples from the loss. Why samples were masked is
logged, once per batch, as a warning of the logger "rewards.integrations".

All adapters are safe to call from threads and from Ray actors: nothing here
uses signals. They use the shared default sandbox pool unless given one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .questions import QUESTIONS
from .score import Score, Scored, run_batch

_FENCE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.S)
STATUS_FLAGS = ("parse_error", "error", "timeout", "memory_exceeded", "output_exceeded", "killed")
KINDS = ("rlvr", "trace")
_log = logging.getLogger(__name__)


def extract_code(completion: str) -> str:
    """The code in a completion: the last fenced block, else the whole text."""
    blocks = _FENCE.findall(completion)
    return blocks[-1] if blocks else completion


def completion_text(completion: Any) -> str:
    """TRL completions are a str, or for conversational data a list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(
            m.get("content", "") if isinstance(m, dict) else str(m)
            for m in completion
            if not isinstance(m, dict) or m.get("role", "assistant") == "assistant"
        )
    return str(completion)


_NOT_JSON = object()  # what `_load` returns, when asked to, for text that is not JSON


def _load(value: Any, not_json: Any = None) -> Any:
    """A JSON string's value, other values as they are; text that is not JSON as it is, or `not_json` if given."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value if not_json is None else not_json
    return value


def invalid(message: str) -> Score:
    """The Score of a sample whose row is malformed: masked, with why."""
    return Score(reward=None, status="invalid_task", message=message)


def named_question(fields: dict[str, Any]) -> Any:
    """The question a row names (`question`, else `task`, its old name), or the invalid_task Score of a
    row that names none or "auto": the answer must never choose its own question."""
    question = fields.get("question") if fields.get("question") is not None else fields.get("task")
    if question is None or question == "" or question == "auto":
        return invalid(
            f"a trace sample must name its question ({', '.join(QUESTIONS)}), "
            f"got {question!r}: 'auto' would let the answer choose it"
        )
    return question


def make_item(completion: str, fields: dict[str, Any]) -> dict[str, Any] | Score:
    """A `score_batch` item from a completion and its sample's fields, or the invalid_task
    Score of a sample whose kind is unknown, whose trace has no code or names no question."""
    tests = _load(fields.get("tests"))
    code = fields.get("code")
    kind = fields.get("kind") or ("trace" if code else "rlvr")
    if kind == "rlvr":
        return {"code": extract_code(completion), "tests": tests}
    if kind != "trace":
        return invalid(f"unknown kind {str(kind)[:100]!r}: choose {' or '.join(KINDS)}")
    if not isinstance(code, str) or not code.strip():
        return invalid("a trace sample needs its code (the program whose execution the answer predicts)")
    question = named_question(fields)
    if isinstance(question, Score):
        return question
    item = {"code": code, "tests": tests, "predicted_trace": completion, "question": question}
    for key in ("test_index", "variables", "mode", "probes"):
        if fields.get(key) is not None:
            item[key] = _load(fields[key]) if key in ("variables", "probes") else fields[key]
    return item


def score_samples(items: Sequence[dict[str, Any] | Score], weights: dict[str, float] | None = None) -> list[Score]:
    """`score_batch` over the items made by `make_item`, the samples already judged kept in place;
    the reasons of the masked ones logged."""
    return [s.score for s in run_samples(items, weights)]


def run_samples(
    items: Sequence[dict[str, Any] | Score], weights: dict[str, float] | None = None, trace_tests: bool = False
) -> list[Scored]:
    """`score_samples`, with each sample's sandbox results (`score.run_batch`; `trace_tests`: the
    RLVR runs of the first test record its trace, for `rewards.onpolicy`)."""
    runs = iter(run_batch([i for i in items if not isinstance(i, Score)], weights=weights, trace_tests=trace_tests))
    scored = [Scored(i, []) if isinstance(i, Score) else next(runs) for i in items]
    masked = Counter(f"{s.score.status}: {s.score.message}" for s in scored if s.score.masked)
    if masked:
        reasons = "; ".join(f"{reason} (x{n})" for reason, n in masked.most_common(5))
        _log.warning("%d of %d samples masked: %s", masked.total(), len(scored), reasons)
    return scored


def summary(scores: Sequence[Score]) -> dict[str, float]:
    """Rates worth logging for a batch: pass rate of RLVR samples, parse errors, timeouts, masked."""
    n = max(len(scores), 1)
    rates = {f"{status}_rate": sum(s.status == status for s in scores) / n for status in ("parse_error", "timeout")}
    rates["infra_error_rate"] = sum(s.masked for s in scores) / n
    tests = [s.components["tests"] for s in scores if "tests" in s.components]
    if tests:
        rates["pass_rate"] = sum(tests) / len(tests)
    valued = [s.reward for s in scores if s.reward is not None]
    rates["reward_mean"] = sum(valued) / len(valued) if valued else 0.0
    return rates


def _value(s: Score, component: str) -> float | None:
    if s.masked:
        return None
    if component == "reward":
        return s.reward
    return s.components.get(component, s.reward)


# ---------------------------------------------------------------- TRL


class TRLReward:
    """A TRL `reward_funcs` entry (sync): `GRPOTrainer(..., reward_funcs=[TRLReward()])`.

    Reads the sample's fields from dataset columns (rename them with `columns`,
    e.g. `columns={"tests": "test_list"}`), returns one float or None per
    completion, and logs execalign/* rates with `log_metric` and each sample's
    status with `log_extra`. `component` picks "reward" (default) or one of the
    Score's components ("tests", "prediction").
    """

    def __init__(
        self,
        columns: dict[str, str] | None = None,
        component: str = "reward",
        weights: dict[str, float] | None = None,
        name: str = "execalign",
    ):
        fields = ("kind", "code", "tests", "question", "task", "test_index", "variables", "mode", "probes")
        self.columns = {k: k for k in fields}
        self.columns.update(columns or {})
        self.component = component
        self.weights = weights
        self.__name__ = name  # TRL names the reward after the callable

    def _items(self, completions: list[Any], kwargs: dict[str, Any]) -> list[dict[str, Any] | Score]:
        items = []
        for i, completion in enumerate(completions):
            fields = {
                key: (kwargs[col][i] if isinstance(kwargs.get(col), (list, tuple)) else None)
                for key, col in self.columns.items()
            }
            items.append(make_item(completion_text(completion), fields))
        return items

    def _finish(self, scores: list[Score], kwargs: dict[str, Any]) -> list[float | None]:
        log_metric, log_extra = kwargs.get("log_metric"), kwargs.get("log_extra")
        if callable(log_metric):
            for key, value in summary(scores).items():
                log_metric(f"{self.__name__}/{key}", value)
        if callable(log_extra):
            log_extra(f"{self.__name__}_status", [s.status for s in scores])
        return [_value(s, self.component) for s in scores]

    def _score(self, prompts: list[Any], completions: list[Any], kwargs: dict[str, Any]) -> list[Score]:
        return score_samples(self._items(completions, kwargs), self.weights)

    def __call__(
        self,
        prompts: list[Any] | None = None,
        completions: list[Any] | None = None,
        completion_ids: list[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        return self._finish(self._score(prompts or [], completions or [], kwargs), kwargs)


class AsyncTRLReward(TRLReward):
    """The same, with `async def __call__`: TRL runs it concurrently with other async reward functions."""

    async def __call__(  # type: ignore[override]  # TRL awaits what a coroutine function returns
        self,
        prompts: list[Any] | None = None,
        completions: list[Any] | None = None,
        completion_ids: list[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        scores = await asyncio.to_thread(self._score, prompts or [], completions or [], kwargs)
        return self._finish(scores, kwargs)


# ---------------------------------------------------------------- verl

VERL_KEYS = ("score", "acc", "masked", "pass_rate", *STATUS_FLAGS)


def _verl_result(s: Score) -> dict[str, float]:
    result = {key: 0.0 for key in VERL_KEYS}
    result["score"] = s.reward if s.reward is not None else 0.0
    result["acc"] = float(s.reward == 1.0)
    result["masked"] = float(s.masked)
    result["pass_rate"] = s.components.get("tests", -1.0)
    if s.status in STATUS_FLAGS:
        result[s.status] = 1.0
    return result


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None, **kwargs: Any
) -> dict[str, float]:
    """verl's `custom_reward_function` (name: compute_score). `ground_truth` is a dict or JSON
    string with the sample's fields (kind, tests, code, question ...); `extra_info` may hold them too.
    Returns the same keys every call (VERL_KEYS); masked samples have score 0.0 and masked 1.0."""
    return _verl_result(score_samples([make_item(solution_str, verl_fields(ground_truth, extra_info))])[0])


def verl_fields(ground_truth: Any, extra_info: dict[str, Any] | None) -> dict[str, Any]:
    """A verl sample's fields: `extra_info`, then `ground_truth` (a dict, JSON, or the tests alone)."""
    fields = dict(extra_info or {}) if isinstance(extra_info, dict) else {}
    truth = _load(ground_truth)
    if isinstance(truth, dict):
        fields.update(truth)
    else:
        fields.setdefault("tests", truth)
    return fields


async def compute_score_async(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None, **kwargs: Any
) -> dict[str, float]:
    """The async form (verl awaits it instead of running it in its executor)."""
    return await asyncio.to_thread(compute_score, data_source, solution_str, ground_truth, extra_info)


# ---------------------------------------------------------------- OpenRLHF


def _response(query: str, prompt: str) -> str:
    return query[len(prompt) :] if prompt and query.startswith(prompt) else query


def openrlhf_reward(queries: list[str], prompts: list[str], labels: list[Any]) -> dict[str, Any]:
    """OpenRLHF's `reward_func(queries, prompts, labels)` and remote reward JSON.

    A label is a dict or JSON string with the sample's fields (a JSON list: the tests of an
    rlvr sample; text that is not JSON: an invalid_task). The three lists have one entry per
    sample (a ValueError otherwise). Returns {"rewards": [...], "scores": [...], "extra_logs": {...}}
    with one float per query; `extra_logs["masked"]` flags samples to drop (their reward is 0.0)."""
    if not len(queries) == len(prompts) == len(labels):
        raise ValueError(
            f"{len(queries)} queries, {len(prompts)} prompts and {len(labels)} labels: one of each per sample"
        )
    items: list[dict[str, Any] | Score] = []
    for query, prompt, label in zip(queries, prompts, labels):
        fields = _load(label, not_json=_NOT_JSON)
        if fields is _NOT_JSON:
            items.append(invalid(f"a label is a JSON object of the sample's fields, got text: {str(label)[:100]!r}"))
            continue
        if not isinstance(fields, dict):
            fields = {"tests": fields}
        items.append(make_item(_response(str(query), str(prompt)), fields))
    scores = score_samples(items)
    rewards = [s.reward if s.reward is not None else 0.0 for s in scores]
    logs: dict[str, Any] = {
        "masked": [float(s.masked) for s in scores],
        "pass_rate": [s.components.get("tests", -1.0) for s in scores],
    }
    for status in STATUS_FLAGS:
        logs[status] = [float(s.status == status) for s in scores]
    return {"rewards": rewards, "scores": rewards, "extra_logs": logs}


# ---------------------------------------------------------------- verifiers


async def verifiers_reward(
    completion: Any = None, answer: Any = None, info: dict[str, Any] | None = None, **kwargs: Any
) -> float:
    """A verifiers rubric reward function (async): fields from `info` (or `answer` as JSON)."""
    fields = dict(info or {})
    loaded = _load(answer)
    if isinstance(loaded, dict):
        fields = {**loaded, **fields}
    item = make_item(completion_text(completion), fields)
    s = (await asyncio.to_thread(score_samples, [item]))[0]
    return s.reward if s.reward is not None else 0.0
