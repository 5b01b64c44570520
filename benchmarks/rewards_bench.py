"""Reward throughput on CRUXEval, and the latency of a GRPO-sized batch.

    python -m benchmarks.rewards_bench [--workers 2]

1. Output predictions for the 800 CRUXEval calls (the recorded output and a
   simple corruption of it): scores/s for `output`, `final` and `steps`, from a
   cold cache (each distinct code runs once, traced, in the sandbox).
2. A GRPO batch: 1024 rollouts, one test each (64 problems x 16 answers), traced
   and scored with `score_batch` from a cold cache; and the worst case where all
   1024 rollouts are different programs. Target: <= 2 s for the 1024-batch.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

import rewards
import sandbox
from rewards import tasks

from .common import RESULTS, load_cruxeval, python_version, report


def _perturb(value, rnd: random.Random):
    """One plausible mistake somewhere in a value: off by one, a changed character, a dropped element."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rnd.choice((-1, 1))
    if isinstance(value, float):
        return value * 1.5 + 1
    if isinstance(value, str):
        if not value:
            return "x"
        i = rnd.randrange(len(value))
        return value[:i] + ("x" if value[i] != "x" else "y") + value[i + 1 :]
    if isinstance(value, dict) and value:
        key = rnd.choice(list(value))
        return {**value, key: _perturb(value[key], rnd)}
    if isinstance(value, (list, tuple)) and value:
        i = rnd.randrange(len(value))
        changed = list(value)
        changed[i] = _perturb(changed[i], rnd)
        return type(value)(changed)
    return [value]


def corrupt(text: str, rnd: random.Random) -> str:
    """The answer with one plausible mistake (text that is no literal gets a suffix)."""
    from tracer import from_literal

    try:
        return tasks.as_text(_perturb(from_literal(text), rnd))
    except ValueError:
        return text + " + 1"


def timed(items, **kw):
    rewards.CACHE.clear()
    start = time.perf_counter()
    scores = rewards.score_batch(items, **kw)
    return time.perf_counter() - start, scores


def summary(scores) -> str:
    statuses: dict = {}
    for s in scores:
        statuses[s.status] = statuses.get(s.status, 0) + 1
    mean = sum(s.reward or 0 for s in scores) / len(scores)
    return f"mean reward {mean:.3f}, statuses {statuses}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    rows = load_cruxeval()
    if not rows:
        return 1
    rnd = random.Random(0)
    lines = []
    with sandbox.Pool(args.workers) as pool:
        pool.map([sandbox.Job(mode="call", code="x = 1", call="x")] * 20)
        out_items = []
        for r in rows:
            for answer in (r["output"], corrupt(r["output"], rnd)):
                out_items.append(
                    {"code": r["code"], "tests": [f"f({r['input']})"], "predicted_trace": answer, "question": "output"}
                )
        seconds, scores = timed(out_items, pool=pool)
        lines.append(
            f"| output | {len(out_items)} | {seconds:.2f} | {len(out_items) / seconds:.0f} | {summary(scores)} |"
        )

        built = {}
        for question in ("final", "steps"):
            gold = [tasks.build_task(r["code"], call=f"f({r['input']})", question=question, pool=pool) for r in rows]
            built[question] = [(r, t) for r, t in zip(rows, gold) if isinstance(t, tasks.AlignmentTask)]
            items = []
            for _, t in built[question]:
                items.append({"code": t.code, "tests": t.tests, "predicted_trace": t.answer, "question": question})
                items.append(
                    {"code": t.code, "tests": t.tests, "predicted_trace": corrupt(t.answer, rnd), "question": question}
                )
            seconds, scores = timed(items, pool=pool)
            lines.append(
                f"| {question} ({len(built[question])} of 800 have a task) | {len(items)} | {seconds:.2f} | "
                f"{len(items) / seconds:.0f} | {summary(scores)} |"
            )

        problems = rnd.sample(rows, 64)
        group = []
        for r in problems:
            for k in range(16):
                answer = r["output"] if k % 2 == 0 else corrupt(r["output"], rnd)
                group.append(
                    {"code": r["code"], "tests": [f"f({r['input']})"], "predicted_trace": answer, "question": "output"}
                )
        grpo_seconds, grpo_scores = timed(group, pool=pool)
        distinct = [
            {"code": r["code"], "tests": [f"f({r['input']})"], "predicted_trace": r["output"], "question": "output"}
            for r in (rows * 2)[:1024]
        ]
        distinct = [dict(d, code=d["code"] + f"\n# {i}") for i, d in enumerate(distinct)]
        worst_seconds, worst_scores = timed(distinct, pool=pool)

    text = "\n".join(
        [
            f"# Rewards benchmark, Python {python_version()}, {args.workers} sandbox workers on {os.cpu_count()} CPUs",
            "",
            "| question | answers | seconds (cold cache) | scores/s | outcome |",
            "|---|---|---|---|---|",
            *lines,
            "",
            "| GRPO batch of 1024 rollouts, one test each | seconds | outcome |",
            "|---|---|---|",
            f"| 64 problems x 16 answers (traced, scored) | {grpo_seconds:.2f} | {summary(grpo_scores)} |",
            f"| 1024 different programs (worst case) | {worst_seconds:.2f} | {summary(worst_scores)} |",
            "",
        ]
    )
    report("rewards", text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
