"""The verdict: one pure function that turns what was seen of a job into its status.

`classify(evidence)` decides every status a `Result` can have, first match wins:

1. infra_error: the judge failed, the zygote did not spawn the child or report
   its end, or the child could not set up its isolation (ours or the machine's:
   the child writes `SetupDone` before any of the job's code runs, and the
   zygote reports every end, so no job can reach these);
2. error: the judge killed the job for breaking its result channel's protocol;
3. starved: a wall timeout of a job whose processes ran less than half of the
   wall time and waited, runnable, for a CPU more than a quarter of it (the
   machine's share, not the code: jobs cannot start sessions or lower their
   priority, so a job's own processes share its one CPU group);
4. the limits: timeout (the judge's wall clock, or the CPU rlimit),
   output_exceeded, memory_exceeded;
5. error: the code tampered with the result channel or the tracer;
6. killed: a signal nobody else explains (SIGPIPE excepted; in asserts mode only
   when the tests did not give a verdict);
7. the mode's own verdict: asserts mode's tests (passed, failed, or error when
   the solution ended or raised before or during them); for programs error
   (no result, or the code's exception), then stdio's stdout comparison
   (passed, failed), else ok.

It runs no process and reads no clock: `Evidence` holds everything it needs.
"""

from __future__ import annotations

import os
import signal
from typing import Literal

import msgspec

from tracer import ExceptionInfo

from .job import Job, Limits, Mode, Result, Status, TestOutcome
from .wire import SETUP_FAILED


class TestsRun(msgspec.Struct, frozen=True, kw_only=True):
    """Asserts mode: what running the tests against the solution found."""

    outcomes: list[TestOutcome] = []
    missing: list[str] = []  # names the tests need that the solution does not define (no test ran)
    lost: bool = False  # the child ended or was killed in the middle of the tests


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """Everything `classify` needs to know about one finished (or failed) job."""

    mode: Mode
    limits: Limits = Limits()
    judge_error: str | None = None  # a bug of ours while running the job: "TypeError: ..."
    spawned: bool = True  # the zygote forked the child
    zygote_failure: str | None = None  # why the zygote did not spawn the child or report its end
    wait_status: int | None = None  # os.wait status from the zygote's Exited report; None: no report
    setup_done: bool = False  # the child said its isolation was in place
    stderr: str = ""  # the child's stderr (explains a failed setup)
    cpu_time: float = 0.0
    peak_memory: int = 0  # bytes
    oom_killed: bool = False  # the kernel killed a process of the job for its memory cgroup's limit
    killed_for: Literal["timeout", "output_exceeded", "tampered"] | None = None  # why the judge had the job killed
    run_time: float = 0.0  # killed for a timeout: seconds the job's processes ran ...
    wait_time: float = 0.0  # ... and waited, runnable, for a CPU (0 where the kernel does not say)
    tampered: list[str] = []  # signs of forged messages or a disabled tracer
    answered: bool = False  # the child sent its result (asserts mode: its Ready)
    exception: ExceptionInfo | None = None  # the code's own exception (asserts mode: before the tests)
    exit_code: int | None = None  # the exit status the child reported for the code (programs)
    stdout_mismatch: str | None = None  # stdio mode: why stdout is not the expected one; None: it matches
    tests: TestsRun = TestsRun()

    @property
    def signal(self) -> int | None:
        """The signal that ended the child, if one did."""
        if self.wait_status is None or not os.WIFSIGNALED(self.wait_status):
            return None
        return os.WTERMSIG(self.wait_status)

    @property
    def exit_status(self) -> int | None:
        """The code's exit status as the child reported it, else the child process's own."""
        if self.exit_code is not None:
            return self.exit_code
        if self.wait_status is None or not os.WIFEXITED(self.wait_status):
            return None
        return os.WEXITSTATUS(self.wait_status)


def classify(e: Evidence) -> tuple[Status, str]:
    """The job's status and why (the message a `Result` carries)."""
    limits = e.limits
    if e.judge_error is not None:
        return "infra_error", f"judge error: {e.judge_error}"
    if not e.spawned:
        return "infra_error", f"spawn failed: {e.zygote_failure or 'no answer'}"
    if e.wait_status is None:
        return "infra_error", e.zygote_failure or "the zygote did not report the job's end"
    if not e.setup_done:
        setup_failed = os.WIFEXITED(e.wait_status) and os.WEXITSTATUS(e.wait_status) == SETUP_FAILED
        why = "the child could not set up its isolation" if setup_failed else "the child died before its setup ended"
        return "infra_error", why + (f": {e.stderr.strip()}" if e.stderr.strip() else "")
    if e.killed_for == "tampered":
        return "error", "the code broke its result channel: " + "; ".join(e.tampered)
    sig = e.signal
    if e.killed_for == "timeout":
        if e.run_time < 0.5 * limits.wall_time and e.wait_time > 0.25 * limits.wall_time:
            return "starved", (
                f"wall time limit of {limits.wall_time:g} s, but the job ran {e.run_time:.2f} s and waited "
                f"{e.wait_time:.2f} s for a CPU: the machine was too busy to judge it"
            )
        return "timeout", f"wall time limit of {limits.wall_time:g} s"
    if e.killed_for == "output_exceeded":
        return "output_exceeded", f"output over {limits.output} bytes"
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and e.cpu_time >= limits.cpu_time - 0.05):
        return "timeout", f"CPU time limit of {limits.cpu_time:g} s"
    if _out_of_memory(e, sig):
        return "memory_exceeded", f"memory budget of {limits.memory >> 20} MiB"
    if e.tampered:
        return "error", "the code tampered with the result channel or the tracer: " + "; ".join(e.tampered)
    killed: tuple[Status, str] | None = None
    if sig is not None and sig != signal.SIGPIPE:
        killed = "killed", f"killed by signal {signal.Signals(sig).name}"
    if e.mode == "asserts":
        status, message = _tests_verdict(e)
        return killed if killed and status == "error" else (status, message)
    if killed:
        return killed
    if not e.answered:
        return "error", f"the program ended without a result (exit status {e.exit_status})"
    if e.exception is not None and (e.exception.type != "SystemExit" or e.mode == "call"):
        return "error", f"{e.exception.type}: {e.exception.message}"
    if e.mode == "stdio":
        return ("passed", "") if e.stdout_mismatch is None else ("failed", e.stdout_mismatch)
    return "ok", ""


def _out_of_memory(e: Evidence, sig: int | None) -> bool:
    """MemoryError, a process of the job killed for its memory cgroup's limit, or a failure (signal or
    exception) after using 90% of the memory budget."""
    if e.oom_killed or (e.exception is not None and e.exception.type == "MemoryError"):
        return True
    failed = sig in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT) or e.exception is not None
    return failed and e.peak_memory >= 0.9 * e.limits.memory


def _tests_verdict(e: Evidence) -> tuple[Status, str]:
    """Asserts mode: what the tests say (or why they could not run)."""
    if not e.answered:
        return "error", f"the solution ended before the tests ran (exit status {e.exit_status})"
    if e.exception is not None:
        return "error", f"the solution raised before the tests: {e.exception.type}: {e.exception.message}"
    if e.tests.missing:
        return "failed", f"the solution does not define {', '.join(e.tests.missing)}"
    if e.tests.lost:
        return "error", "the solution process ended during the tests"
    outcomes = e.tests.outcomes
    if not outcomes:
        return "failed", "no assertion ran"
    failure = next((o for o in outcomes if not o.passed), None)
    return ("passed", "") if failure is None else ("failed", f"{failure.test}: {failure.message}")


def judge_failure(job: Job, why: str) -> Result:
    """The Result of a job the judge failed to run (a bug of ours, a shard's driver that died): infra_error."""
    status, message = classify(Evidence(mode=job.mode, limits=job.limits, judge_error=why))
    return Result(status=status, message=message)
