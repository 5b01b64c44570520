"""CRUXEval-I scoring side by side: execalign against CRUXEval's own evaluation approach.

    python -m benchmarks.input_prediction [--workers 2] [--candidates 10]

The workload: the 800 CRUXEval functions, each with `--candidates` inputs made
deterministically (seeded) from the recorded input: the recorded input itself,
then distinct mutations of it, one to three edits each (about a quarter of the
mutations still give the output, the rest do not).
Both evaluators judge the same candidates in the same run, with the same number
of worker processes and the same 3 s timeout:

- execalign: `rewards.score_batch` with CRUXEval-I items (`assert f(??) == output`
  tests, the candidate `f(...)` as the answer), on a `sandbox.Pool(workers)`;
- CRUXEval's approach (their `evaluation/`, rewritten here): a
  `ProcessPoolExecutor(workers)` maps the 800 samples; for each candidate a
  `multiprocessing.Manager` list and a `multiprocessing.Process` that, in a
  temporary directory with its output swallowed, builtins and `os` functions
  disabled and an interval-timer timeout, `exec`s `<code>\\nassert <output> == f(<candidate>)`;
  the parent joins with the timeout plus 1 s and kills what is still alive.

It reports candidates/s for each, the ratio, the CPU of each (the judge, the
zygote and the children for execalign; every process of the executor for
CRUXEval's approach, from RUSAGE_CHILDREN) and where the two verdicts differ
(execalign compares typed: `True != 1`, `1 != 1.0`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import random
import resource
import signal
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from types import FrameType
from typing import Any

import rewards
import sandbox
from rewards import tasks
from rewards.parse import ParseError, parse_arguments

from .accounting import Spent, Usage
from .common import RESULTS, load_cruxeval, median_range, python_version, report

TIMEOUT = 3.0  # seconds: CRUXEval's check_correctness(..., 3)
PROJECTED_CORES = 16


def mutate(value: Any, rnd: random.Random) -> Any:
    """One random edit somewhere in a value: a number moved, a character or element changed, added or dropped."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rnd.choice((value + 1, value - 1, value * 2 + 1, -value - 1, 0 if value else 7))
    if isinstance(value, float):
        return rnd.choice((value + 1.0, value * 2.5, -value - 0.5))
    if isinstance(value, str):
        i = rnd.randrange(len(value) + 1)
        char = rnd.choice("aZ3 ,.x!")
        edits = [value[:i] + char + value[i:]]
        if value:
            i = min(i, len(value) - 1)
            edits += [value[:i] + value[i + 1 :], value[:i] + char + value[i + 1 :]]
        return rnd.choice(edits)
    if isinstance(value, (list, tuple)):
        items = list(value)
        i = rnd.randrange(len(items) + 1)
        if items and rnd.random() < 0.6:
            i = min(i, len(items) - 1)
            if rnd.random() < 0.3:
                del items[i]
            else:
                items[i] = mutate(items[i], rnd)
        else:
            items.insert(i, mutate(items[i - 1], rnd) if items else 1)
        return type(value)(items)
    if isinstance(value, dict):
        if value and rnd.random() < 0.7:
            key = rnd.choice(list(value))
            return {**value, key: mutate(value[key], rnd)}
        return {**value, mutate(next(iter(value), "k"), rnd): 1}
    return None if value is not None else 0


def candidate_inputs(row: dict[str, str], count: int, rnd: random.Random) -> list[str]:
    """The recorded input, then up to count - 1 distinct mutations of it (1 to 3 edits), as argument lists."""
    out = [row["input"]]
    try:
        args, _ = parse_arguments(f"f({row['input']})", "f")
    except ParseError:
        return out
    seen = {tasks.as_text(list(args))}
    for _ in range(count * 20):
        if len(out) == count or not args:
            break
        changed = list(args)
        for _ in range(rnd.choice((1, 1, 2, 3))):
            i = rnd.randrange(len(changed))
            try:
                changed[i] = mutate(changed[i], rnd)
            except TypeError:  # an unhashable dict key made by the edit
                pass
        key = tasks.as_text(changed)
        if key not in seen:
            seen.add(key)
            out.append(", ".join(tasks.as_text(a) for a in changed))
    return out


# ---------------------------------------------------------------- CRUXEval's approach


class _Timeout(Exception):
    pass


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _Timeout


def _run_program(program: str, outcome: Any, timeout: float) -> None:
    """In the per-candidate process: a scratch directory, no output, guarded builtins, a timer."""
    with tempfile.TemporaryDirectory() as scratch:
        cwd = os.getcwd()
        os.chdir(scratch)
        import builtins
        import shutil

        rmtree, rmdir, chdir = shutil.rmtree, os.rmdir, os.chdir
        builtins.exit = builtins.quit = None  # type: ignore[assignment]
        for name in ("kill", "system", "putenv", "remove", "rmdir", "fork", "killpg", "rename", "unlink", "chdir"):
            setattr(os, name, None)
        shutil.rmtree = None  # type: ignore[assignment]
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                signal.signal(signal.SIGALRM, _on_alarm)
                signal.setitimer(signal.ITIMER_REAL, timeout)
                try:
                    exec(program, {})
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            outcome.append("passed")
        except _Timeout:
            outcome.append("timed out")
        except BaseException as error:
            outcome.append(f"failed: {error}")
        shutil.rmtree, os.rmdir, os.chdir = rmtree, rmdir, chdir
        os.chdir(cwd)


def _check(program: str, timeout: float) -> bool:
    manager = multiprocessing.Manager()
    outcome = manager.list()
    process = multiprocessing.Process(target=_run_program, args=(program, outcome, timeout))
    process.start()
    process.join(timeout=timeout + 1)
    if process.is_alive():
        process.kill()
    return bool(outcome) and outcome[0] == "passed"


def _score_sample(args: tuple[list[str], tuple[str, str, str]]) -> list[bool]:
    generations, (code, _, output) = args
    return [("f(" in g) and _check(f"{code}\nassert {output} == {g}", TIMEOUT) for g in generations]


def cruxeval_approach(
    rows: list[dict[str, str]], candidates: list[list[str]], workers: int
) -> tuple[float, float, list[bool]]:
    """Seconds, CPU seconds of all its processes, and each candidate's verdict."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    work = [([f"f({c})" for c in cands], (r["code"], r["input"], r["output"])) for r, cands in zip(rows, candidates)]
    with ProcessPoolExecutor(workers) as executor:
        verdicts = [v for sample in executor.map(_score_sample, work) for v in sample]
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, verdicts


# ---------------------------------------------------------------- execalign


def execalign_items(rows: list[dict[str, str]], candidates: list[list[str]]) -> list[dict[str, Any]]:
    return [
        {
            "code": r["code"],
            "tests": [f"assert f(??) == {r['output']}"],
            "predicted_trace": f"f({c})",
            "question": "input",
        }
        for r, cands in zip(rows, candidates)
        for c in cands
    ]


def execalign_approach(items: list[dict[str, Any]], workers: int) -> tuple[float, Spent, list[rewards.Score], int]:
    """Seconds, CPU by process kind, the scores, and the number of sandbox runs made."""
    limits = sandbox.Limits(wall_time=TIMEOUT, cpu_time=TIMEOUT)
    cache = rewards.ResultCache(max_entries=0)
    with sandbox.Pool(workers) as pool:
        pool.map([sandbox.Job(mode="call", code="x = 1", call="x")] * 20)
        before = Usage.now(pool, before=True)
        start = time.perf_counter()
        scores = rewards.score_batch(items, pool=pool, limits=limits, cache=cache)
        seconds = time.perf_counter() - start
        spent = Usage.now(pool).since(before)
    return seconds, spent, scores, cache.misses


@dataclass
class Comparison:
    candidates: int
    right: int
    lines: list[str]


def compare(rows: list[dict[str, str]], workers: int, count: int, repeat: int = 1) -> Comparison:
    """Both evaluators on the same candidates (alternating, `repeat` times each); a markdown section."""
    rnd = random.Random(0)
    candidates = [candidate_inputs(r, count, rnd) for r in rows]
    items = execalign_items(rows, candidates)
    n = len(items)
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(execalign_approach(items, workers))
        theirs.append(cruxeval_approach(rows, candidates, workers))
    scores, runs = ours[0][2], ours[0][3]
    verdicts = theirs[0][2]
    statuses: dict[str, int] = {}
    for s in scores:
        statuses[s.status] = statuses.get(s.status, 0) + 1
    right = sum(s.reward == 1.0 for s in scores)
    timeouts = sum(s.status == "timeout" for s in scores)
    differ = [
        (item["predicted_trace"], item["tests"][0], s, v)
        for item, s, v in zip(items, scores, verdicts)
        if (s.reward == 1.0) != v
    ]
    our_rates = [n / o[0] for o in ours]
    their_rates = [n / t[0] for t in theirs]
    ratios = [t[0] / o[0] for o, t in zip(ours, theirs)]

    best = min(ours, key=lambda o: o[0])[1]
    their_cpu = min(t[1] for t in theirs)
    lines = [
        f"## Input prediction: {len(rows)} CRUXEval functions x {count} candidates = {n} answers, "
        f"{workers} workers, {repeat} run(s) each",
        "",
        f"execalign made {runs} sandbox runs; {right} candidates are right ({right * 100 / n:.0f}%); "
        f"execalign statuses {statuses}; CRUXEval's approach says {sum(verdicts)} pass. {timeouts} candidates "
        f"loop past the {TIMEOUT:g} s timeout in both: about {timeouts * TIMEOUT / workers:.0f} s of each "
        "evaluator's wall time.",
        "",
        "| evaluator | candidates/s (median, min-max) | CPU ms per candidate, all processes | of which |",
        "|---|---|---|---|",
        f"| execalign `score_batch` (sandbox, every layer) | {median_range(our_rates)} | {best.total * 1000 / n:.2f} | "
        f"judge {best.judge * 1000 / n:.2f}, drivers {best.driver * 1000 / n:.2f}, "
        f"zygotes {best.zygote * 1000 / n:.2f}, slot processes {best.slot * 1000 / n:.2f}, "
        f"janitors {best.janitor * 1000 / n:.2f}, scoring processes {best.scorer * 1000 / n:.2f}, "
        f"children {best.children * 1000 / n:.2f} |",
        f"| CRUXEval's approach (ProcessPoolExecutor, Manager + Process per candidate) | {median_range(their_rates)} | "
        f"{their_cpu * 1000 / n:.2f} | executor workers, managers and per-candidate processes |",
        "",
        f"execalign is {median_range(ratios, '{:.2f}')}x the speed of CRUXEval's approach (same run, same {workers} "
        f"workers; target on 16 cores: >= 5x). Verdicts differ on {len(differ)} of {n} candidates.",
        "",
        *projection(best, their_cpu, n),
    ]
    for predicted, test, score, verdict in differ[:10]:
        lines.append(
            f"- `{test}` with `{predicted[:60]}`: execalign {score.status} ({score.reward}), "
            f"CRUXEval {'pass' if verdict else 'fail'}"
        )
    return Comparison(n, right, [*lines, ""])


def projection(ours: Spent, theirs_cpu: float, n: int, cores: int = PROJECTED_CORES) -> list[str]:
    """Both evaluators on `cores` cores, from the CPU measured here: each is bound by all its CPU over the
    cores, and execalign also by its busiest single process (the judge; a driver or a zygote with the work
    spread over `shard_count` shards; a slot process with it spread over `cores` slots). CRUXEval's
    evaluator is a pool of processes, each candidate in processes of its own: nothing there is single."""
    bounds = ours.projected(1, cores)
    bound, ours_rate = min(bounds.items(), key=lambda kv: kv[1])
    theirs_rate = cores / theirs_cpu
    return [
        f"Projected to {cores} cores from this CPU: execalign {ours_rate * n:.0f} candidates/s (bound by {bound}; "
        + ", ".join(f"{k}: {v * n:.0f}/s" for k, v in bounds.items())
        + f"), CRUXEval's approach {theirs_rate * n:.0f}/s: {ours_rate / theirs_rate:.2f}x "
        f"(target >= 5x; CPU figures of this machine, where fork and page faults cost about 10x bare metal's, "
        "and a candidate that loops to the timeout counts the CPU it got).",
    ]


def spaced(rows: list[dict[str, str]], count: int) -> list[dict[str, str]]:
    """`count` of the rows, evenly spaced (all of them when count >= len(rows))."""
    if count >= len(rows):
        return rows
    return [rows[i * len(rows) // count] for i in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--candidates", type=int, default=10, help="candidate inputs per function")
    parser.add_argument("--functions", type=int, default=800, help="how many CRUXEval functions (evenly spaced)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each evaluator (alternating)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    rows = spaced(load_cruxeval(), args.functions)
    if not rows:
        return 1
    comparison = compare(rows, args.workers, args.candidates, args.repeat)
    title = f"# Input prediction, Python {python_version()}, {args.workers} workers on {os.cpu_count()} CPUs\n"
    report("input", title + "\n" + "\n".join(comparison.lines), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
