"""The sandbox jobs behind a score: the traced run an answer is checked against, and the
runs that give a `TestSuite`'s pass rate."""

from __future__ import annotations

import msgspec

from sandbox import Job, Limits, Result

from .testcases import InvalidTask, TestSuite


def trace_job(code: str, suite: TestSuite, index: int, limits: Limits, trace_limits: dict[str, int]) -> Job:
    """The traced run of test `index`: its call, or the program on its stdin."""
    if suite.form == "stdio":
        stdin = suite.case(index).stdin
        return Job(mode="script", code=code, stdin=stdin, trace=True, trace_limits=trace_limits, limits=limits)
    call = suite.call(index)
    return Job(mode="call", code=code, call=call, trace=True, trace_limits=trace_limits, limits=limits)


def verdict_jobs(code: str, suite: TestSuite, limits: Limits, trace_first: bool = False) -> list[Job]:
    """The runs that give the tests' pass rate (see `pass_rate`). With `trace_first`, the run of
    the first test also records its trace (asserts: the code and the tests' first call), so
    that one run both judges the code and shows what it did (`rewards.onpolicy`)."""
    jobs = _verdict_jobs(code, suite, limits)
    if trace_first:
        jobs[0] = msgspec.structs.replace(jobs[0], trace=True)
    return jobs


def _verdict_jobs(code: str, suite: TestSuite, limits: Limits) -> list[Job]:
    if suite.form == "asserts":
        return [Job(mode="asserts", code=code, tests=[c.source for c in suite.cases], limits=limits)]
    if suite.form == "check":
        check = suite.cases[0].source
        return [Job(mode="asserts", code=code, tests=check, entry_point=suite.entry_point, limits=limits)]
    if suite.form == "stdio":
        return [
            Job(mode="stdio", code=code, stdin=c.stdin, expected_stdout=c.stdout or "", limits=limits)
            for c in suite.cases
        ]
    if suite.form == "calls":
        return [Job(mode="call", code=code, call=c.call, limits=limits) for c in suite.cases]
    raise InvalidTask("input tests have no verdict without a predicted input")


def pass_rate(suite: TestSuite, results: list[Result]) -> float:
    """The share of tests passed, from the results of `verdict_jobs`."""
    if suite.form in ("asserts", "check"):
        r = results[0]
        return r.passed / r.total if r.total else 0.0
    if suite.form == "stdio":
        return sum(r.status == "passed" for r in results) / len(results)
    return sum(r.status == "ok" for r in results) / len(results)
