"""How execalign scales with workers, and the CPU each job costs in each process (issue 10).

    python -m benchmarks.scaling_bench [--workers 1,2,16] [--jobs 2000] [--repeat 3] [--candidates 10]
                                       [--input-functions 200 (800: the whole workload)]

For each number of workers (default 1, 2, 4 ... up to the machine's cores), on a
pool of `sandbox.shard_count(workers)` shards:
- executions/s of a trivial program and of the 800 CRUXEval calls traced;
- answers scored/s by `rewards.score_batch` (cold cache) for output, final and steps
  (the recorded answer and one corruption of it per call, as `rewards_bench`),
  read and scored in this process; at the largest number of workers also in
  that many scoring processes (`rewards.scorers`);
- from the OS's own accounting (/proc), the CPU per job of each process kind: the
  judge (this process, every thread: it hands jobs to the shards), the drivers
  (one per shard: pipes, asserts, verdicts), the zygotes (with PID namespaces two
  per shard: an outer one that waits, an inner one that forks), the scoring
  processes and the children (what the zygotes reaped: the jobs and their
  leftovers; `Result.cpu_time` beside it), with the projected ceiling `jobs / max
  CPU-seconds of any single process`, which a 2-core machine can measure for 16
  workers.
Then the input-prediction workload (`benchmarks.input_prediction`) at the largest
number of workers: execalign against CRUXEval's evaluation approach, on 200 of
the 800 functions by default (CRUXEval's approach takes 7 minutes for all 800 x 10
on 2 cores), with both projected to 16 cores from their measured CPU. Reports go
to results/scaling-pyXY.md (scaling-wN-pyXY.md for other worker counts).

Timed workloads run --repeat times (median and min-max reported; the machine
may be shared, so the spread matters). Targets (reported, met or not): CPU per
trivial job <= 2.0 ms over all processes; projected single-process ceiling
>= 8000 jobs/s with 16 workers configured.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import rewards
import sandbox
from rewards import tasks

from . import input_prediction
from .accounting import Spent, Usage
from .common import RESULTS, load_cruxeval, median_range, python_version, report
from .rewards_bench import corrupt

Items = dict[str, list[dict[str, Any]]]  # per question, the score_batch items
TRIVIAL = sandbox.Job(mode="call", code="x = 1", call="x")
TARGET_TOTAL_MS = 2.0
TARGET_CEILING = 8000
TARGET_WORKERS = 16
PROJECTED_CORES = (16, 64, 200)  # the projection of the trivial workload (see `accounting.Spent.projected`)


@dataclass
class Run:
    count: int  # jobs or answers
    seconds: float
    spent: Spent
    result_cpu: float | None = None  # sum of Result.cpu_time (sandbox workloads only)

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def ms(self, seconds: float) -> float:
        return seconds * 1000 / self.count


def measure(pool: sandbox.Pool, count: int, work: Callable[[], list[Any]]) -> Run:
    before = Usage.now(pool, before=True)
    start = time.perf_counter()
    out = work()
    seconds = time.perf_counter() - start
    spent = Usage.now(pool).since(before)
    result_cpu = sum(r.cpu_time for r in out) if out and isinstance(out[0], sandbox.Result) else None
    bad = {r.status for r in out if getattr(r, "status", "ok") in ("infra_error", "invalid_task")}
    if bad:
        print(f"warning: statuses {bad} in a timed workload", file=sys.stderr)
    return Run(count, seconds, spent, result_cpu)


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def scoring_items(rows: list[dict[str, str]], pool: sandbox.Pool) -> Items:
    """Per question, the right answer and one corruption of it for each CRUXEval call (built once)."""
    rnd = random.Random(0)
    items: Items = {"output": []}
    for r in rows:
        for answer in (r["output"], corrupt(r["output"], rnd)):
            items["output"].append(
                {"code": r["code"], "tests": [f"f({r['input']})"], "predicted_trace": answer, "question": "output"}
            )
    for question in ("final", "steps"):
        items[question] = []
        for r in rows:
            t = tasks.build_task(r["code"], call=f"f({r['input']})", question=question, pool=pool)
            if isinstance(t, tasks.AlignmentTask):
                for answer in (t.answer, corrupt(t.answer, rnd)):
                    items[question].append({**t.score_args, "predicted_trace": answer})
    return items


def score_cold(items: list[dict[str, Any]], pool: sandbox.Pool, processes: int = 0) -> list[rewards.Score]:
    rewards.CACHE.clear()
    return rewards.score_batch(items, pool=pool, processes=processes)


def run_workers(
    workers: int, args: argparse.Namespace, rows: list[dict[str, str]], items: Items | None, processes: int
) -> tuple[dict[str, list[Run]], Items | None, str]:
    """Every workload on a fresh pool of `workers`; the scoring items are built on the first pool.

    With `processes`, the scoring workloads run again in that many scoring processes."""
    runs: dict[str, list[Run]] = {}
    with sandbox.Pool(workers) as pool:
        pool.map([TRIVIAL] * 50)  # warm up: threads started, slots made
        if items is None and rows:
            items = scoring_items(rows, pool)
        traced = [sandbox.Job(mode="call", code=r["code"], call=f"f({r['input']})", trace=True) for r in rows]
        for _ in range(args.repeat):  # interleaved, so a busy moment of the machine hits every workload alike
            runs.setdefault("trivial", []).append(measure(pool, args.jobs, partial(pool.map, [TRIVIAL] * args.jobs)))
            if traced:
                runs.setdefault("cruxeval traced", []).append(measure(pool, len(traced), partial(pool.map, traced)))
        if processes and items:
            score_cold(items["output"][:200], pool, processes)  # the scoring processes started, outside the runs
        for _ in range(args.score_repeat):
            for question, answers in (items or {}).items():
                runs.setdefault(question, []).append(measure(pool, len(answers), partial(score_cold, answers, pool)))
                if processes:
                    work = partial(score_cold, answers, pool, processes)
                    runs.setdefault(f"{question} (scoring processes)", []).append(measure(pool, len(answers), work))
        layers = str(getattr(pool.layers, "describe", str)())
    return runs, items, layers


def cpu_row(workers: int, name: str, run: Run) -> str:
    s = run.spent

    def kind(each: dict[int, float]) -> str:
        return f"{run.ms(sum(each.values())):.3f} ({run.ms(max(each.values())):.3f})" if each else "-"

    result_cpu = f"{run.ms(run.result_cpu):.3f}" if run.result_cpu is not None else "-"
    faults = s.children_faults / run.count
    scoring = kind(s.scoring) if s.scorer > 0 else "-"
    return (
        f"| {workers} | {name} | {run.ms(s.judge):.3f} | {kind(s.drivers)} | {kind(s.zygotes)} | {kind(s.slots)} "
        f"| {kind(s.janitors)} | {scoring} | "
        f"{run.ms(s.children):.3f} | {result_cpu} | {run.ms(s.total):.3f} | {s.ceiling(run.count):.0f} | {faults:.0f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cores = os.cpu_count() or 2
    default = sorted({1 << i for i in range(cores.bit_length()) if 1 << i <= cores} | {cores})
    parser.add_argument(
        "--workers",
        default=",".join(map(str, default)),
        help="comma-separated worker counts (default: 1, 2, 4 ... up to the cores; e.g. 16 for the projection)",
    )
    parser.add_argument("--jobs", type=int, default=2000, help="trivial jobs per timed run")
    parser.add_argument("--functions", type=int, default=800, help="CRUXEval functions traced and scored")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each execution workload")
    parser.add_argument("--score-repeat", type=int, default=1, help="timed runs of each scoring workload")
    parser.add_argument("--candidates", type=int, default=10, help="input-prediction candidates per function (0: skip)")
    parser.add_argument(
        "--input-functions", type=int, default=200, help="CRUXEval functions in the input workload (800: all)"
    )
    parser.add_argument("--input-repeat", type=int, default=1, help="runs of each input-prediction evaluator")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    worker_counts = [int(w) for w in args.workers.split(",")]
    rows = input_prediction.spaced(load_cruxeval(), args.functions)
    load_before = os.getloadavg()[0]

    items = None
    by_workers = {}
    layers = ""
    for workers in worker_counts:
        print(f"workers {workers} ...", file=sys.stderr)
        processes = workers if workers == max(worker_counts) and workers > 1 else 0
        by_workers[workers], items, layers = run_workers(workers, args, rows, items, processes)

    names = list(by_workers[worker_counts[-1]])
    shards = {w: sandbox.shard_count(w) for w in worker_counts}
    header = [
        f"# Scaling benchmark, Python {python_version()}, workers {args.workers} on {cores} CPUs",
        "",
        "Shards (a driver process and its zygote each) per number of workers: "
        + ", ".join(f"{w}: {n}" for w, n in shards.items())
        + ".",
        "",
        layers,
        "",
        f"Execution workloads: {args.repeat} timed run(s) each (trivial: {args.jobs} jobs; CRUXEval: {len(rows)} "
        f"calls, traced); scoring: {args.score_repeat} run(s) of `score_batch` from a cold cache (final and steps: "
        "the calls that have a task). Rates: median (min-max). Load average (1 min) before the workloads "
        f"{load_before:.1f}, after {os.getloadavg()[0]:.1f}: above the {cores} cores, other work shared the machine.",
        "",
        "## Throughput",
        "",
        "| workers | "
        + " | ".join(f"{n} {'executions' if n in ('trivial', 'cruxeval traced') else 'scored'}/s" for n in names)
        + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for workers, runs in by_workers.items():
        header.append(
            f"| {workers} | "
            + " | ".join(median_range([r.rate for r in runs[n]]) if n in runs else "-" for n in names)
            + " |"
        )
    cpu = [
        "",
        "## CPU per job (or per answer) by process kind, from the OS's accounting (median run)",
        "",
        "ms of CPU (user + system). judge: this process (it hands jobs to the shards and takes results back; "
        "in the scoring workloads it also reads and scores the answers, unless scoring processes do). drivers, "
        "zygotes, slots, janitors, scoring: all such processes together (the busiest one in brackets; with PID "
        "namespaces a shard's zygote is two processes, an outer one that waits and an inner one that serves the "
        "driver; a zygote's slot processes, one per slot, fork and reap the jobs). "
        "children (OS): what the slot processes reaped, jobs and leftovers; Result.cpu_time: the jobs' own figure. "
        "ceiling: jobs / CPU-seconds of the busiest single process. faults: minor page faults per child.",
        "",
        "| workers | workload | judge | drivers | zygotes | slots | janitors | scoring | children (OS) "
        "| Result.cpu_time | total | ceiling jobs/s | faults |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    threads = ["", "## The judge's CPU per trivial job by thread (median run), ms", ""]
    for workers, runs in by_workers.items():
        for name in names:
            if name in runs:
                cpu.append(cpu_row(workers, name, median_run(runs[name])))
        run = median_run(runs["trivial"])
        parts = sorted(run.spent.threads.items(), key=lambda kv: -kv[1])
        threads.append(f"- {workers} workers: " + ", ".join(f"{k} {run.ms(v):.3f}" for k, v in parts))

    targets = ["", "## Targets", ""]
    for workers, runs in by_workers.items():
        run = median_run(runs["trivial"])
        total = run.ms(run.spent.total)
        ceiling = run.spent.ceiling(run.count)
        targets.append(
            f"- {workers} workers: CPU per trivial job {total:.2f} ms over all processes "
            f"(target <= {TARGET_TOTAL_MS} ms: {'met' if total <= TARGET_TOTAL_MS else 'NOT met'}); "
            f"projected ceiling {ceiling:.0f} jobs/s"
            + (
                f" (target >= {TARGET_CEILING} with {TARGET_WORKERS} workers: "
                f"{'met' if ceiling >= TARGET_CEILING else 'NOT met'})"
                if workers == TARGET_WORKERS
                else ""
            )
        )
    if TARGET_WORKERS not in by_workers:
        targets.append(f"- the ceiling target is for {TARGET_WORKERS} workers: run with `--workers {TARGET_WORKERS}`")
    run = median_run(by_workers[max(worker_counts)]["trivial"])
    targets += ["", f"Projected trivial executions/s from the CPU per job at {max(worker_counts)} workers (computed):"]
    for cores in PROJECTED_CORES:
        bounds = run.spent.projected(run.count, cores)
        bound = min(bounds, key=lambda k: bounds[k])
        targets.append(
            f"- {cores} cores: {bounds[bound]:.0f}/s, bound by {bound} ("
            + ", ".join(f"{k}: {v:.0f}" for k, v in bounds.items())
            + ")"
        )

    section: list[str] = []
    if rows and args.candidates > 0:
        print("input prediction ...", file=sys.stderr)
        chosen = input_prediction.spaced(rows, args.input_functions)
        section = ["", *input_prediction.compare(chosen, max(worker_counts), args.candidates, args.input_repeat).lines]
    name = "scaling" if worker_counts == default else "scaling-w" + "-".join(map(str, worker_counts))
    report(name, "\n".join([*header, *cpu, *threads, *targets, *section]) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
