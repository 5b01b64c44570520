"""The sandbox jobs behind a score: the traced run an answer is checked against, and the
runs that give a `TestSuite`'s pass rate.

The pass rate is over every planned test, and a test that did not run failed:
an assert list is one asserts-mode job whose tests each count, however early
the solution ended; a check block counts its assertions as the sandbox planned
them (`sandbox.asserts`); each stdin/stdout pair is a job. Tests that assert
nothing cannot verify anything: bare call expressions, or a check block with no
`assert` or `raise`, are an invalid task for a pass rate (they stay valid as the
inputs of trace questions). `entry_points` names what the tests take from the
solution (a check block's `entry_point` always is one); every other name of the
tests resolves in the judge.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

import msgspec

from sandbox import Job, Limits, Result

from .testcases import InvalidTask, TestSuite

_TESTS_NOTHING = "call expressions test nothing (a call passes whenever it does not raise): a pass rate needs asserts"


def trace_job(code: str, suite: TestSuite, index: int, limits: Limits, trace_limits: dict[str, int]) -> Job:
    """The traced run of test `index`: its call, or the program on its stdin."""
    if suite.form == "stdio":
        stdin = suite.case(index).stdin
        return Job(mode="script", code=code, stdin=stdin, trace=True, trace_limits=trace_limits, limits=limits)
    call = suite.call(index)
    return Job(mode="call", code=code, call=call, trace=True, trace_limits=trace_limits, limits=limits)


def verdict_jobs(
    code: str, suite: TestSuite, limits: Limits, entry_points: Sequence[str] = (), trace_first: bool = False
) -> list[Job]:
    """The runs that give the tests' pass rate (see `pass_rate`). With `trace_first`, the run of
    the first test also records its trace (asserts: the code and the tests' first call), so
    that one run both judges the code and shows what it did (`rewards.onpolicy`)."""
    jobs = _verdict_jobs(code, suite, limits, list(entry_points))
    if trace_first:
        jobs[0] = msgspec.structs.replace(jobs[0], trace=True)
    return jobs


def _verdict_jobs(code: str, suite: TestSuite, limits: Limits, names: list[str]) -> list[Job]:
    if suite.form == "asserts":
        tests = [c.source for c in suite.cases]
        return [Job(mode="asserts", code=code, tests=tests, entry_points=names, limits=limits)]
    if suite.form == "check":
        check = suite.cases[0].source
        if not any(isinstance(n, (ast.Assert, ast.Raise)) for n in ast.walk(ast.parse(check))):
            raise InvalidTask("the check block asserts nothing: it cannot fail, so it verifies nothing")
        return [
            Job(
                mode="asserts", code=code, tests=check, entry_point=suite.entry_point, entry_points=names, limits=limits
            )
        ]
    if suite.form == "stdio":
        return [
            Job(mode="stdio", code=code, stdin=c.stdin, expected_stdout=c.stdout or "", limits=limits)
            for c in suite.cases
        ]
    if suite.form == "calls":
        raise InvalidTask(_TESTS_NOTHING)
    raise InvalidTask("input tests have no verdict without a predicted input")


def pass_rate(suite: TestSuite, results: list[Result]) -> float:
    """The share of planned tests passed, from the results of `verdict_jobs` (a test that did not run failed)."""
    if suite.form == "asserts":
        return min(results[0].passed, len(suite.cases)) / len(suite.cases)
    if suite.form == "check":
        r = results[0]
        return r.passed / r.total if r.total else 0.0
    return sum(r.status == "passed" for r in results) / len(results)
