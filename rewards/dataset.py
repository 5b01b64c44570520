"""Datasets for trainers: alignment tasks as rows that TRL and verl read, built from code and inputs.

    rows, skipped = build_rows(read_rows("cruxeval.jsonl"), ["final", "state", "next"], seed=0)
    write_rows(rows, "tasks.parquet")
    rewards.score(**rows[0]["score_args"], predicted_trace=rows[0]["answer"]).reward  # 1.0

Input rows hold `code` and its inputs: `call` (a call expression, or a list of them), `stdin` (a
program's input, or a list), `input` (CRUXEval: the arguments of `f`, or of the row's
`entry_point`), or `tests` (asserts, calls or stdin pairs, as `rewards.score` takes them: each
test's input). An `id` is kept in `extra_info`.

Each output row is one `AlignmentTask`, with
- TRL's columns: `prompt` (chat messages; plain text for the cwm template, which is no chat),
  `answer` (the gold answer's text), and the fields `integrations.TRLReward` scores with:
  `kind` ("trace"), `code`, `tests`, `question`, `variables`, `mode`, `probes`;
- verl's: `data_source`, `prompt`, `ability`, `reward_model` ({"style": "rule", "ground_truth":
  the scoring fields as JSON text, which `integrations.compute_score` reads}), `extra_info`
  (index, item, id, seed, template);
- `score_args`: the keyword arguments of `rewards.score` that check an answer to it.
Task i of an item (`per_item` per question) asks about the item's input i (cycling) with seed
`seed + i`; a task equal to an earlier one of the same item is left out. Rows whose code fails
or has nothing to ask about are skipped, counted by reason.

Files are JSONL or, by their suffix, Parquet (pyarrow: `pip install execalign[parquet]`). A
Parquet column holds one type: write tasks on call inputs and on stdin inputs to separate files.
"""

from __future__ import annotations

import json
import pathlib
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

import sandbox

from .cache import CACHE, ResultCache
from .integrations import completion_text
from .questions import QUESTIONS
from .score import Item, Score, score_batch
from .tasks import TEMPLATES, AlignmentTask, Skipped, build_task, task_job
from .testcases import InvalidTask, parse_tests

ABILITY = "code_execution"
PREDICTION_FIELDS = ("predicted_trace", "prediction", "completion", "response")  # where `score_rows` looks
_CHUNK = 1024  # inputs run at once before their tasks are built (the shared cache holds them meanwhile)


def inputs(row: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    """The (call, stdin) pairs a row asks about (ValueError, with the reason, when it has none)."""
    if not isinstance(row.get("code"), str) or not row["code"].strip():
        raise ValueError("no code")
    calls, stdins = _listed(row.get("call")), _listed(row.get("stdin"))
    if row.get("input") is not None:
        calls.append(f"{row.get('entry_point') or 'f'}({row['input']})")
    if row.get("tests") is not None:
        try:
            suite = parse_tests(row["tests"])
            for index, case in enumerate(suite.cases):
                if suite.form == "stdio":
                    stdins.append(case.stdin)
                elif suite.form != "input":
                    calls.append(suite.call(index))
        except InvalidTask as error:
            raise ValueError(f"tests: {error}") from None
    found: list[tuple[str | None, str | None]] = [(c, None) for c in calls] + [(None, s) for s in stdins]
    if not found:
        raise ValueError("no input (call, stdin, input or tests)")
    return found


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def build_rows(
    items: Iterable[dict[str, Any]],
    questions: Sequence[str],
    *,
    template: str = "execalign",
    per_item: int = 1,
    seed: int = 0,
    data_source: str = "execalign",
    pool: sandbox.Pool | None = None,
    cache: ResultCache = CACHE,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The dataset's rows, and how many tasks were skipped for each reason (see the module docstring)."""
    askable = [name for name, q in QUESTIONS.items() if q.gold is not None]
    unknown = [q for q in questions if q not in askable]
    if unknown:
        raise ValueError(f"unknown question {', '.join(unknown)}: choose {', '.join(askable)}")
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}: choose {', '.join(TEMPLATES)}")
    rows: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    listed = list(items)
    for start in range(0, len(listed), _CHUNK):
        planned: list[tuple[int, dict[str, Any], list[tuple[str | None, str | None]]]] = []
        for number, item in enumerate(listed[start : start + _CHUNK], start):
            try:
                planned.append((number, item, inputs(item)))
            except ValueError as error:
                skipped[str(error).split(":")[0]] += len(questions) * per_item
        jobs = []
        for _, item, found in planned:
            for call, stdin in found[:per_item]:
                try:
                    jobs.append(task_job(item["code"], call, stdin))
                except InvalidTask:
                    continue  # build_task says why
        cache.run(jobs, pool, progress)  # every input once, in parallel; build_task then finds them cached
        for number, item, found in planned:
            seen: set[str] = set()
            for question in questions:
                for i in range(per_item):
                    call, stdin = found[i % len(found)]
                    task = build_task(
                        item["code"],
                        call,
                        stdin,
                        question=question,
                        template=template,
                        seed=seed + i,
                        pool=pool,
                        cache=cache,
                    )
                    if isinstance(task, Skipped):
                        skipped[task.reason.split(":")[0]] += 1
                    elif task.prompt + task.answer in seen:
                        skipped["the same task as another of its item"] += 1
                    else:
                        seen.add(task.prompt + task.answer)
                        rows.append(task_row(task, len(rows), number, item.get("id"), data_source))
    return rows, skipped


def task_row(task: AlignmentTask, index: int, item: int, item_id: Any, data_source: str) -> dict[str, Any]:
    """One task as a row for TRL and verl (see the module docstring)."""
    args = task.score_args
    template = task.metadata.get("template", "execalign")
    return {
        "prompt": task.prompt if template == "cwm" else [{"role": "user", "content": task.prompt}],
        "answer": task.answer,
        "kind": "trace",
        **{key: args[key] for key in ("code", "tests", "question", "variables", "mode", "probes")},
        "score_args": args,
        "data_source": data_source,
        "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": json.dumps({"kind": "trace", **args})},
        "extra_info": {
            "index": index,
            "item": item,
            "id": None if item_id is None else str(item_id),
            "seed": task.metadata.get("seed", 0),
            "template": template,
        },
    }


def read_rows(path: str | pathlib.Path) -> list[dict[str, Any]]:
    """The rows of a JSONL or Parquet file (ValueError, naming the line, when one is not a JSON object)."""
    path = pathlib.Path(path)
    if path.suffix == ".parquet":
        rows: list[dict[str, Any]] = _pyarrow().parquet.read_table(path).to_pylist()
        return rows
    rows = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as error:
                raise ValueError(f"{path}:{number}: not JSON: {error}") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: a row is a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def write_rows(rows: Sequence[dict[str, Any]], path: str | pathlib.Path) -> None:
    """Write rows as JSONL, or as Parquet when the path ends in .parquet."""
    path = pathlib.Path(path)
    if path.suffix == ".parquet":
        pa = _pyarrow()
        try:
            table = pa.Table.from_pylist(list(rows))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise ValueError(
                f"the rows do not fit one Parquet schema ({error}); tasks on call inputs and on stdin inputs "
                "have different `tests` columns: write them to separate files, or to JSONL"
            ) from None
        pa.parquet.write_table(table, path)
        return
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(msgspec.json.encode(row).decode() + "\n")


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ValueError("Parquet needs pyarrow: pip install 'execalign[parquet]'") from None
    return pyarrow


def score_rows(
    rows: Sequence[dict[str, Any]],
    prediction_field: str | None = None,
    *,
    pool: sandbox.Pool | None = None,
    progress: bool = False,
) -> list[Score]:
    """Score each row's prediction: rows with `score_args` (a dataset built here) or the fields of
    `rewards.score` themselves. The prediction is `prediction_field` (a row without it is an
    invalid_task), else the first of PREDICTION_FIELDS a row has (none: the tests' pass rate, or
    for a task row an invalid_task);
    chat messages are joined into their assistant text."""
    items: list[dict[str, Any] | Score] = []
    for row in rows:
        if prediction_field is not None and prediction_field not in row:
            items.append(Score(reward=None, status="invalid_task", message=f"the row has no {prediction_field!r}"))
            continue
        task = isinstance(row.get("score_args"), dict)
        fields = dict(row["score_args"]) if task else dict(row)
        name = prediction_field or next((f for f in PREDICTION_FIELDS if f in row), None)
        if task and name is None:  # a task's tests are its inputs: without an answer there is nothing to score
            missing = f"the row has no prediction (no {', '.join(PREDICTION_FIELDS)}; name its column)"
            items.append(Score(reward=None, status="invalid_task", message=missing))
            continue
        prediction = row.get(name) if name else None
        fields["predicted_trace"] = completion_text(prediction) if isinstance(prediction, list) else prediction
        items.append({k: v for k, v in fields.items() if k in _ITEM_FIELDS})
    scored = iter(score_batch([i for i in items if not isinstance(i, Score)], pool=pool, progress=progress))
    return [i if isinstance(i, Score) else next(scored) for i in items]


_ITEM_FIELDS = {f.name for f in msgspec.structs.fields(Item)} | {"task"}  # what `score_batch` reads of a row


def summary_table(scores: Sequence[Score]) -> str:
    """A table of the scores: per question, how many, the mean reward, how many scored 1.0, and the statuses."""
    groups: dict[str, list[Score]] = {}
    for s in scores:
        groups.setdefault(s.question or "-", []).append(s)
    groups["all"] = list(scores)
    head = f"{'question':<10} {'rows':>6} {'reward':>7} {'=1.0':>6}  statuses"
    lines = [head, "-" * len(head)]
    for question, group in groups.items():
        valued = [s.reward for s in group if s.reward is not None]
        mean = f"{sum(valued) / len(valued):.3f}" if valued else "-"
        statuses = ", ".join(f"{status} {n}" for status, n in Counter(s.status for s in group).most_common())
        perfect = sum(r == 1.0 for r in valued)
        lines.append(f"{question:<10} {len(group):>6} {mean:>7} {perfect:>6}  {statuses}")
    return "\n".join(lines)
