"""One task on the judge's side, from spawn to verdict.

`Execution` sends the task spec to the child, feeds its stdin, reads stdout,
stderr and result frames without blocking (capping output and result size),
watches the wall clock and has the zygote kill the task at the deadline, runs
asserts-mode tests against proxies, then classifies the outcome into a status.
"""

from __future__ import annotations

import os
import secrets
import selectors
import signal
import time
from typing import Any

import msgspec

import tracer

from . import compare
from .asserts import ChildGone, from_child, raise_from_child, run_tests, solution_names
from .protocol import (
    SETUP_DONE,
    CallRequest,
    ChannelError,
    DoneRequest,
    FetchRequest,
    FrameReader,
    JobSpec,
    Ready,
    Returned,
    pack,
)
from .result import Job, Result
from .zygote import FD_COUNT, SETUP_FAILED

_EXIT_GRACE = 5.0  # seconds to wait for the zygote's exit report once a task's pipes closed


class Execution:
    """One task from spawn to verdict, on the calling worker thread."""

    def __init__(self, client: Any, slot: int, task: Job):
        self.client = client
        self.task = task
        self.limits = task.limits
        self.nonce = secrets.token_bytes(16)
        self.reader = FrameReader(task.limits.result)
        self.frames: list = []
        self.out = bytearray()
        self.err = bytearray()
        self.out_more = self.err_more = 0
        self.killed_for: str | None = None  # "timeout" or "output_exceeded"
        self.tampered: list[str] = []
        self.setup_done = False
        self.start = time.monotonic()
        self.deadline = self.start + task.limits.wall_time
        pipes = [os.pipe() for _ in range(FD_COUNT)]
        (ctrl_r, self.ctrl_w), (self.res_r, res_w), (in_r, self.in_w), (self.out_r, out_w), (self.err_r, err_w) = pipes
        child_ends = [ctrl_r, res_w, in_r, out_w, err_w]
        try:
            self.handle = client.spawn(slot, task.limits, child_ends)
        finally:
            for fd in child_ends:
                os.close(fd)
        self.pending_stdin = memoryview(task.stdin.encode())
        self.pending_ctrl = bytearray()
        self.selector = selectors.DefaultSelector()
        for fd in (self.res_r, self.out_r, self.err_r):
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ)
        os.set_blocking(self.in_w, False)
        os.set_blocking(self.ctrl_w, False)
        self.open_reads = 3

    # ------------------------------------------------------------ plumbing

    def _send(self, message: Any) -> None:
        self.pending_ctrl += pack(message)
        self._watch_writes()

    def _watch_writes(self) -> None:
        for fd, pending in ((self.ctrl_w, self.pending_ctrl), (self.in_w, self.pending_stdin)):
            if fd < 0:
                continue
            events = selectors.EVENT_WRITE if len(pending) else 0
            try:
                key = self.selector.get_key(fd)
                if not events:
                    self.selector.unregister(fd)
                elif key.events != events:
                    self.selector.modify(fd, events)
            except KeyError:
                if events:
                    self.selector.register(fd, events)
        if not len(self.pending_stdin) and self.in_w >= 0:
            os.close(self.in_w)
            self.in_w = -1

    def _pump(self, until) -> None:
        """Move bytes until `until()` holds, the task's pipes all close, or a limit kills it."""
        while not until() and self.open_reads:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self._kill("timeout")
                remaining = _EXIT_GRACE
                self.deadline = time.monotonic() + _EXIT_GRACE
            for key, events in self.selector.select(timeout=remaining):
                fd = key.fd
                if events & selectors.EVENT_WRITE:
                    self._write(fd)
                    continue
                try:
                    data = os.read(fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not data:
                    self.selector.unregister(fd)
                    self.open_reads -= 1
                    continue
                if fd == self.res_r:
                    self._take_frames(data)
                else:
                    self._take_output(fd, data)

    def _close_control(self) -> None:
        if self.ctrl_w >= 0:
            try:
                self.selector.unregister(self.ctrl_w)
            except KeyError:
                pass
            os.close(self.ctrl_w)
            self.ctrl_w = -1
            self.pending_ctrl.clear()

    def _write(self, fd: int) -> None:
        pending = self.pending_ctrl if fd == self.ctrl_w else self.pending_stdin
        try:
            n = os.write(fd, pending)
        except BlockingIOError:
            return
        except BrokenPipeError:
            n = len(pending)
        if fd == self.ctrl_w:
            del self.pending_ctrl[:n]
        else:
            self.pending_stdin = self.pending_stdin[n:]
        self._watch_writes()

    def _take_frames(self, data: bytes) -> None:
        try:
            for frame in self.reader.feed(data):
                if frame == SETUP_DONE:
                    if self.setup_done:
                        self.tampered.append("a second setup marker on the result channel")
                    self.setup_done = True
                elif frame.nonce != self.nonce:
                    self.tampered.append("a result frame without the task's nonce")
                else:
                    self.frames.append(frame)
        except ChannelError as error:
            self.tampered.append(str(error))
            self.selector.unregister(self.res_r)
            self.open_reads -= 1

    def _take_output(self, fd: int, data: bytes) -> None:
        buffer = self.out if fd == self.out_r else self.err
        room = self.limits.output - len(buffer)
        buffer += data[: max(room, 0)]
        if len(data) > room:
            if fd == self.out_r:
                self.out_more += len(data) - max(room, 0)
            else:
                self.err_more += len(data) - max(room, 0)
            self._kill("output_exceeded")

    def _kill(self, reason: str) -> None:
        if self.killed_for is None:
            self.killed_for = reason
            self.client.kill(self.handle)

    def _next_frame(self) -> Any | None:
        count = len(self.frames)
        self._pump(lambda: len(self.frames) > count)
        return self.frames[count] if len(self.frames) > count else None

    # ------------------------------------------------------------ the run

    def run(self) -> Result:
        try:
            if not self.handle.spawned.wait(timeout=self.limits.wall_time + 30) or self.handle.failure:
                return Result(status="infra_error", message=f"spawn failed: {self.handle.failure or 'no answer'}")
            task = self.task
            names = solution_names(task.tests, task.entry_point) if task.mode == "asserts" else []
            self._send(
                JobSpec(
                    mode=task.mode,
                    code=task.code,
                    nonce=self.nonce,
                    call=task.call,
                    trace=task.trace,
                    filename=task.filename,
                    argv=list(task.argv),
                    trace_limits=dict(task.trace_limits),
                    names=names,
                )
            )
            self._watch_writes()
            result = self._asserts() if task.mode == "asserts" else self._program()
            self._pump(lambda: not self.pending_ctrl)  # deliver what is queued (DoneRequest)
            self._close_control()  # the child's next read ends: it cannot wait for us forever
            self._pump(lambda: False)  # drain output until every pipe closes
            return self._finish(result)
        finally:
            self.selector.close()
            for fd in (self.res_r, self.out_r, self.err_r, self.in_w, self.ctrl_w):
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass

    def _program(self) -> Result:
        frame = self._next_frame()
        if not isinstance(frame, Returned):
            return Result(status="error")
        result = Result(status="ok", value=frame.value, exception=frame.exception, exit_code=frame.exit_code)
        if frame.trace is not None:
            try:
                result.trace = tracer.Trace.from_msgpack(frame.trace)
            except msgspec.DecodeError as error:
                self.tampered.append(f"malformed trace: {error}")
            else:
                self.tampered.extend(result.trace.tampered)
        return result

    def _asserts(self) -> Result:
        task = self.task
        ready = self._next_frame()
        if not isinstance(ready, Ready):
            return Result(status="error")
        if ready.exception is not None:
            return Result(
                status="error",
                exception=ready.exception,
                message=f"the solution raised before the tests: {ready.exception.type}: {ready.exception.message}",
            )
        names: dict[str, Any] = {name: _Proxy(self, name) for name in ready.callable}
        for name in ready.values:
            self._send(FetchRequest(name))
            frame = self._answer()
            names[name] = from_child(frame.value)
        missing = [n for n in ([task.entry_point] if task.entry_point else []) if n not in names]
        if missing:
            self._send(DoneRequest())
            return Result(status="failed", message=f"the solution does not define {', '.join(missing)}")
        outcomes, lost = run_tests(task.tests, task.entry_point, names)
        passed = sum(o.passed for o in outcomes)
        if lost:
            return Result(status="error", message=lost, tests=outcomes, passed=passed, total=len(outcomes))
        self._send(DoneRequest())
        first_failure = next((o for o in outcomes if not o.passed), None)
        status = "passed" if outcomes and first_failure is None else "failed"
        message = (
            "no assertion ran"
            if not outcomes
            else f"{first_failure.test}: {first_failure.message}"
            if first_failure
            else ""
        )
        return Result(status=status, message=message, tests=outcomes, passed=passed, total=len(outcomes))

    def _answer(self) -> Returned:
        frame = self._next_frame()
        if not isinstance(frame, Returned):
            raise ChildGone(self._why_gone())
        return frame

    def _why_gone(self) -> str:
        if self.killed_for == "timeout":
            return f"time limit of {self.limits.wall_time:g} s reached during the tests"
        if self.killed_for:
            return self.killed_for.replace("_", " ")
        return "the solution process ended during the tests"

    def call(self, name: str, args: tuple, kwargs: dict) -> Any:
        self._send(
            CallRequest(name, [tracer.encode(a) for a in args], {k: tracer.encode(v) for k, v in kwargs.items()})
        )
        frame = self._answer()
        if frame.exception is not None:
            raise_from_child(frame.exception)
        return from_child(frame.value)

    def _finish(self, result: Result) -> Result:
        handle = self.handle
        handle.exited.wait(timeout=_EXIT_GRACE)
        exit_report = handle.exit
        result.wall_time = time.monotonic() - self.start
        result.stdout = self.out.decode("utf-8", "replace")
        result.stderr = self.err.decode("utf-8", "replace")
        result.stdout_more, result.stderr_more = self.out_more, self.err_more
        result.tampered = self.tampered + [t for t in result.tampered if t not in self.tampered]
        if exit_report is None:
            self._kill("lost")
            result.status, result.message = "infra_error", handle.failure or "the zygote did not report the task's end"
            return result
        result.cpu_time, result.peak_memory, result.leftovers = (
            exit_report.cpu_time,
            exit_report.peak_memory,
            exit_report.leftovers,
        )
        status = exit_report.status
        if os.WIFSIGNALED(status):
            result.signal = os.WTERMSIG(status)
        elif os.WIFEXITED(status) and result.exit_code is None:
            result.exit_code = os.WEXITSTATUS(status)
        if not self.setup_done:
            result.status = "infra_error"
            result.message = (
                "the child could not set up its isolation"
                if os.WIFEXITED(status) and os.WEXITSTATUS(status) == SETUP_FAILED
                else "the child died before its setup ended"
            )
            result.message += f": {result.stderr.strip()}" if result.stderr.strip() else ""
            return result
        self._classify(result, status)
        return result

    def _classify(self, result: Result, status: int) -> None:
        limits = self.limits
        if self.killed_for == "timeout":
            result.status, result.message = "timeout", f"wall time limit of {limits.wall_time:g} s"
        elif self.killed_for == "output_exceeded":
            result.status, result.message = "output_exceeded", f"output over {limits.output} bytes"
        elif result.signal in (signal.SIGXCPU,) or (
            result.signal == signal.SIGKILL and result.cpu_time >= limits.cpu_time - 0.05
        ):
            result.status, result.message = "timeout", f"CPU time limit of {limits.cpu_time:g} s"
        elif self._memory_error(result):
            result.status, result.message = "memory_exceeded", f"memory budget of {limits.memory >> 20} MiB"
        elif self.tampered:
            result.status, result.message = (
                "error",
                "the code tampered with the result channel or the tracer: " + "; ".join(self.tampered),
            )
        elif (
            result.signal is not None and result.signal != signal.SIGPIPE and result.status not in ("passed", "failed")
        ):
            result.status, result.message = "killed", f"killed by signal {signal.Signals(result.signal).name}"
        elif self.task.mode == "asserts" and result.status in ("passed", "failed", "error"):
            pass  # decided by the tests (or by the solution failing before them)
        elif not self.frames:
            result.status = "error"
            result.message = f"the program ended without a result (exit status {result.exit_code})"
        elif result.exception is not None and (result.exception.type != "SystemExit" or self.task.mode == "call"):
            result.status = "error"
            result.message = f"{result.exception.type}: {result.exception.message}"
        elif self.task.mode == "stdio":
            explanation = compare.explain(result.stdout, self.task.expected_stdout or "", self.task.float_tolerance)
            result.status = "passed" if explanation is None else "failed"
            result.message = explanation or ""
            result.passed, result.total = int(explanation is None), 1
        else:
            result.status = "ok"

    def _memory_error(self, result: Result) -> bool:
        """MemoryError, or a failure (signal or exception) after using 90% of the memory budget."""
        if result.exception is not None and result.exception.type == "MemoryError":
            return True
        failed = result.signal in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT) or result.exception is not None
        return failed and result.peak_memory >= 0.9 * self.limits.memory


class _Proxy:
    """Stands for a solution function in the judge's test namespace."""

    def __init__(self, execution: Execution, name: str):
        self._execution = execution
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._execution.call(self._name, args, kwargs)

    def __repr__(self) -> str:
        return f"<solution function {self._name}>"
