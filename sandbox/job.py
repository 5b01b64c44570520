"""A job and what it returns: `Job`, its `Limits`, the `Result` with a `Status` from a closed set."""

from __future__ import annotations

from functools import cached_property
from typing import Literal

import msgspec

from tracer import ExceptionInfo, Trace, Value

Status = Literal[
    "ok",
    "passed",
    "failed",
    "error",
    "timeout",
    "memory_exceeded",
    "output_exceeded",
    "killed",
    "starved",
    "infra_error",
]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]
# Statuses that say nothing about the code: mask the sample, never cache the result.
# starved: the machine gave the job too little CPU to finish in its wall time (retried first, see `Pool`);
# infra_error: our failure or the machine's. No job can cause either (see `sandbox.verdict`).
NOT_VERDICTS: tuple[str, ...] = ("starved", "infra_error")
Mode = Literal["call", "asserts", "stdio", "script"]


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Resource limits of one job. Times in seconds, sizes in bytes."""

    wall_time: float = 10.0  # judge's clock, then SIGKILL of the whole job
    cpu_time: float = 10.0  # RLIMIT_CPU
    memory: int = 512 << 20  # RLIMIT_AS budget above the child's size at start
    output: int = 1 << 20  # stdout and stderr, each
    file_size: int = 16 << 20  # RLIMIT_FSIZE
    open_files: int = 64  # RLIMIT_NOFILE
    processes: int = 16  # RLIMIT_NPROC for the job's own uid (root only)
    result: int = 64 << 20  # largest message accepted from the child


class TestOutcome(msgspec.Struct, frozen=True):
    test: str  # the assertion's source
    passed: bool
    message: str = ""  # "expected 7, got 8", or the exception


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """One unit of work for the sandbox.

    mode "call":    run `code`, then evaluate `call` (e.g. "f([1, 2])"); `Result.value` is its value.
    mode "asserts": run `code` in the child, then `tests` in the judge against the solution's
                    values: a list of assert statements, or a HumanEval `check` block
                    (`tests` is its source and `entry_point` the function it checks).
                    `entry_points`: the names the tests take from the solution (with
                    `entry_point`); when given, every other name resolves in the judge
                    (see `sandbox.asserts` for the rule without them).
    mode "stdio":   run `code` as __main__ with `stdin`; compare stdout with `expected_stdout`
                    (see `sandbox.compare`).
    mode "script":  run `code` as __main__ with `argv` and `stdin`.
    `trace=True` records a `tracer.Trace` in the child, in the same run that gives the verdict:
    call, script and stdio modes trace the whole run; asserts mode traces the code, then the
    first call the tests make to it (e.g. `f(3)` of `assert f(3) == 7`; later calls are not
    traced; `Trace.returned` is that call's value). A traced call that raises also writes its
    traceback to stderr, as in call mode.
    `trace_record` is what it records (`tracer.trace`'s `record`): "lines", or "final" (calls
    and returns with final values only, for questions about final values: close to untraced speed).
    """

    mode: Mode
    code: str
    call: str | None = None
    tests: list[str] | str | None = None
    entry_point: str | None = None
    entry_points: list[str] = []
    stdin: str = ""
    expected_stdout: str | None = None
    float_tolerance: float | None = None
    argv: list[str] = []
    trace: bool = False
    trace_record: Literal["lines", "final"] = "lines"
    trace_limits: dict[str, int] = {}
    filename: str = "<solution>"
    limits: Limits = Limits()


class Result(msgspec.Struct, kw_only=True, dict=True):
    """What a job returns: its status (see `sandbox.verdict`), why, and the evidence behind it.

    The trace travels as MessagePack (`trace_msgpack`) and is decoded when `trace` is first read: a
    pool's process that only hands results on (to a cache, to scoring processes) never decodes it."""

    status: Status
    message: str = ""  # why: the failing test, the exception, the limit hit
    value: Value | None = None  # call mode: the call's value
    exception: ExceptionInfo | None = None  # the code's own exception
    trace_msgpack: bytes | None = None  # the recorded trace (`Job.trace=True`): read it as `trace`
    tests: list[TestOutcome] = []
    passed: int = 0
    total: int = 0
    stdout: str = ""
    stderr: str = ""
    stdout_more: int = 0  # bytes cut off by the output cap
    stderr_more: int = 0
    exit_code: int | None = None
    signal: int | None = None
    wall_time: float = 0.0
    cpu_time: float = 0.0
    peak_memory: int = 0
    leftovers: int = 0  # processes the code left behind (all killed)
    tampered: list[str] = []  # signs the code forged results or disabled the tracer

    @cached_property
    def trace(self) -> Trace | None:
        """The recorded `tracer.Trace` (`Job.trace=True`), decoded on first read."""
        return None if self.trace_msgpack is None else Trace.from_msgpack(self.trace_msgpack)
