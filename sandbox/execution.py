"""One job on the judge's side: the pipes between spawn and exit, then the verdict.

`Execution` has the zygote fork a child, sends it the `JobSpec`, feeds its
stdin, reads stdout, stderr and messages without blocking (capping output and
message size), watches the wall clock and has the zygote kill the job at the
deadline. Asserts mode's tests run through it (`sandbox.asserts.serve`); with a
trace asked, the answer to their first call carries it; the time the child
spends waiting for the judge between two of its answers does not count against
its wall time. When every pipe has closed and the zygote has
reported the child's end (a child that closed its pipes and lingers is killed
at its deadline), what was seen becomes an `Evidence`, `sandbox.verdict.classify`
gives the status, and the `Result` is built once.

`steps()` is the job as the waits between its steps (`Pump`: move bytes until
something holds; `Await`: a zygote report). `run()` makes each wait in turn on
the calling thread, with a selector of the job's own; a shard's driver
(`sandbox.driver`) instead registers the pipes of all its call, script and
stdio jobs in one selector and resumes each job's steps when its wait is over.
Asserts mode calls into the child from the tests' code, so it runs on a thread.

What the judge checks of the child's messages, whatever the code did in the
child: each carries the job's nonce; each comes in the protocol state that
expects it (one `Ready` first in asserts mode, naming only names the judge
asked for, then one `Returned` per request; one `Returned` for a program), and
nothing comes after; only an asked trace (a program's, or in asserts mode the
answer to the first call) carries one; no value is nested deeper than the
encoder's caps allow; a trace agrees with its message (returned value,
exception, exit code) and names only lines of the job's code. A message that
breaks one of these kills the job at once: status error, `tampered` says why.
"""

from __future__ import annotations

import os
import secrets
import selectors
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, Literal, NamedTuple

import msgspec

import tracer

from . import compare, wire
from .asserts import entry_points, plan, serve
from .job import Job, Result
from .verdict import Evidence, TestsRun, classify
from .wire import (
    CHILD_FDS,
    CONTROL_FD,
    RESULT_FD,
    STDERR_FD,
    STDIN_FD,
    STDOUT_FD,
    JobSpec,
    Ready,
    Returned,
    SetupDone,
)

_EXIT_GRACE = 5.0  # seconds to wait for the zygote's exit report once a job is killed
_DEPTH_MARGIN = 4  # levels a legitimate value may have beyond its encoder's depth cap (a cut marker, complex parts)


class Pump(NamedTuple):
    """Wait: move the job's bytes until `until()` holds or every pipe has closed (the deadline still kills)."""

    until: Callable[[], bool]


class Await(NamedTuple):
    """Wait: until the zygote's report sets `event`, at most `timeout` seconds."""

    event: threading.Event
    timeout: float


Wait = Pump | Await


class Execution:
    """One job from spawn to verdict: `run()` on the calling thread, or `steps()` resumed by a driver's loop.

    The job's pipes go into `selector` (keyed with this execution as data) when one is given, else into
    a selector of its own."""

    def __init__(self, client: Any, slot: int, job: Job, selector: selectors.BaseSelector | None = None):
        self.client = client
        self.job = job
        self.limits = job.limits
        self.nonce = secrets.token_bytes(16)
        self.decoder: wire.Decoder[wire.FromChild] = wire.Decoder(wire.FromChild, job.limits.result)
        self.messages: list[Ready | Returned] = []  # from the child, with the job's nonce
        self.awaiting: type[Ready] | type[Returned] | None = None  # the one message the protocol expects next
        self.asked: set[str] = set()  # asserts mode: the names the judge asked the child for
        self.trace_allowed = False  # the awaited message may carry a trace (a program's; asserts: the first call)
        self.called = False  # asserts mode: the judge sent a call request
        limits = tracer.TraceLimits(**dict(job.trace_limits))
        self.depth = limits.returned_limits().max_depth + _DEPTH_MARGIN
        self.step_depth = limits.value_limits().max_depth + _DEPTH_MARGIN
        self.out = bytearray()
        self.err = bytearray()
        self.out_more = self.err_more = 0
        self.killed_for: Literal["timeout", "output_exceeded", "tampered"] | None = None
        self.tampered: list[str] = []
        self.setup_done = False
        self.start = time.monotonic()
        self.deadline = self.start + job.limits.wall_time
        self.answered_at: float | None = None  # when the child last answered: from then on it waits for the judge
        pipes = {fd: os.pipe() for fd in CHILD_FDS}  # (read end, write end) of each of the child's fds
        child_reads = (CONTROL_FD, STDIN_FD)  # the child reads these; it writes the others
        child_ends = [pipes[fd][0 if fd in child_reads else 1] for fd in CHILD_FDS]
        self.ctrl_w, self.in_w = pipes[CONTROL_FD][1], pipes[STDIN_FD][1]
        self.res_r, self.out_r, self.err_r = pipes[RESULT_FD][0], pipes[STDOUT_FD][0], pipes[STDERR_FD][0]
        try:
            self.handle = client.spawn(slot, job.limits, child_ends)
        finally:
            for fd in child_ends:
                os.close(fd)
        self.pending_stdin = memoryview(job.stdin.encode())
        self.pending_ctrl = bytearray()
        self.own_selector = selector is None
        self.selector = selectors.DefaultSelector() if selector is None else selector
        for fd in (self.res_r, self.out_r, self.err_r):
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ, self)
        os.set_blocking(self.in_w, False)
        os.set_blocking(self.ctrl_w, False)
        self.open_reads = 3

    # ------------------------------------------------------------ plumbing

    def send(self, message: wire.ToChild) -> None:
        """Queue a message for the child and write what its pipes take now (the rest as they take it)."""
        if self.answered_at is not None:  # the child waited for the judge meanwhile: not its time
            self.deadline += time.monotonic() - self.answered_at
            self.answered_at = None
        if isinstance(message, (wire.CallRequest, wire.AttrRequest)):
            self.awaiting = Returned
            first_call = isinstance(message, wire.CallRequest) and not self.called
            self.trace_allowed = self.job.trace and first_call
            self.called = self.called or first_call
        self.pending_ctrl += wire.pack(message)
        if self.ctrl_w >= 0:
            self._write(self.ctrl_w)
        if self.in_w >= 0:  # the first message: stdin starts too
            self._write(self.in_w)

    def receive(self) -> Ready | Returned | None:
        """The child's next message; None once it is gone (ended, killed, or its channel broken)."""
        count = len(self.messages)
        self._pump(lambda: len(self.messages) > count)
        if len(self.messages) <= count:
            return None
        self.answered_at = time.monotonic()
        return self.messages[count]

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
                    self.selector.modify(fd, events, self)
            except KeyError:
                if events:
                    self.selector.register(fd, events, self)
        if not len(self.pending_stdin) and self.in_w >= 0:
            os.close(self.in_w)
            self.in_w = -1

    def _pump(self, until: Callable[[], bool]) -> None:
        """Move bytes until `until()` holds, the job's pipes all close, or a limit kills it."""
        while not until() and self.open_reads:
            for key, events in self.selector.select(timeout=self.time_left()):
                self.on_ready(key.fd, events)

    def time_left(self) -> float:
        """Seconds to the deadline; once it is past, the job is killed and has a grace period to end."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self._kill("timeout")
            remaining = _EXIT_GRACE
            self.deadline = time.monotonic() + _EXIT_GRACE
        return remaining

    def on_ready(self, fd: int, events: int) -> None:
        """One of the job's pipes can be written or read: move what it takes."""
        if events & selectors.EVENT_WRITE:
            self._write(fd)
            return
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        if not data:
            self.selector.unregister(fd)
            self.open_reads -= 1
            return
        if fd == self.res_r:
            self._take_messages(data)
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
            n = 0
        except BrokenPipeError:
            n = len(pending)
        if fd == self.ctrl_w:
            del self.pending_ctrl[:n]
        else:
            self.pending_stdin = self.pending_stdin[n:]
        self._watch_writes()

    def _take_messages(self, data: bytes) -> None:
        try:
            for message in self.decoder.feed(data):
                if isinstance(message, SetupDone):
                    if self.setup_done:
                        self._tamper("a second setup marker on the result channel")
                    self.setup_done = True
                    continue
                broken = self._breaks_protocol(message)
                if broken:
                    self._tamper(broken)
                    return
                self.tampered.extend(message.tampered)
                self.awaiting = None
                self.messages.append(message)
        except wire.ChannelError as error:
            self._tamper(str(error))

    def _breaks_protocol(self, message: Ready | Returned) -> str | None:
        """Why the judge refuses this message from the child (None: it is the one expected)."""
        if message.nonce != self.nonce:
            return "a message without the job's nonce on the result channel"
        if self.awaiting is None or not isinstance(message, self.awaiting):
            return f"a {type(message).__name__} message the judge did not ask for"
        if isinstance(message, Ready):
            unasked = sorted(set(message.names) - self.asked)
            if unasked:
                return f"the child answered for names the judge did not ask for: {', '.join(unasked)[:200]}"
            values = [a.value for a in message.names.values()]
        else:
            if message.trace is not None and not self.trace_allowed:
                return "a trace the judge did not ask for"
            values = [message.value] if message.value is not None else []
        if not _within_depth(values, self.depth):
            return f"a value nested deeper than {self.depth} levels (the encoder's cap)"
        return None

    def _tamper(self, why: str) -> None:
        """The child broke its result channel: stop reading it and kill the job now."""
        self.tampered.append(why)
        if self.res_r in self.selector.get_map():
            self.selector.unregister(self.res_r)
            self.open_reads -= 1
        self._kill("tampered")

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

    def _kill(self, reason: Literal["timeout", "output_exceeded", "tampered"]) -> None:
        if self.killed_for is None:
            self.killed_for = reason
            self.client.kill(self.handle, timeout=reason == "timeout")

    # ------------------------------------------------------------ the run

    def run(self) -> Result:
        """The job from spawn to verdict, waiting on the calling thread."""
        steps = self.steps()
        wait = next(steps)
        while True:
            if isinstance(wait, Pump):
                self._pump(wait.until)
            else:
                wait.event.wait(wait.timeout)
            try:
                wait = steps.send(None)
            except StopIteration as done:
                result: Result = done.value
                return result

    def steps(self) -> Generator[Wait, None, Result]:
        """The job from spawn to verdict, yielding each wait; asserts mode's tests wait on the calling thread."""
        try:
            job = self.job
            yield Await(self.handle.spawned, self.limits.wall_time + 30)
            if not self.handle.spawned.is_set() or self.handle.failure:
                failure = Evidence(mode=job.mode, limits=self.limits, spawned=False, zygote_failure=self.handle.failure)
                return self._result(failure)
            names = (
                plan(job.tests if job.tests is not None else [], entry_points(job)) if job.mode == "asserts" else None
            )
            self.asked = set(names.solution) if names else set()
            self.awaiting = Ready if names else Returned
            self.trace_allowed = job.trace and names is None
            self.send(
                JobSpec(
                    mode=job.mode,
                    code=job.code,
                    nonce=self.nonce,
                    call=job.call,
                    trace=job.trace,
                    trace_record=job.trace_record,
                    filename=job.filename,
                    argv=list(job.argv),
                    trace_limits=dict(job.trace_limits),
                    names=sorted(self.asked),
                )
            )
            answer: Ready | Returned | None
            if names is not None:
                answer, tests_run = serve(self, job, names)
            else:
                yield Pump(lambda: bool(self.messages))
                received = self.messages[0] if self.messages else None
                answer, tests_run = (received if isinstance(received, Returned) else None), TestsRun()
            yield Pump(lambda: not self.pending_ctrl)  # deliver what is queued (DoneRequest)
            self._close_control()  # the child's next read ends: it cannot wait for us forever
            yield Pump(lambda: False)  # drain output until every pipe closes
            # a child whose pipes are all closed may still run: it has until its deadline, like any job
            yield Await(self.handle.exited, max(0.0, self.deadline - time.monotonic()))
            if not self.handle.exited.is_set():
                self._kill("timeout")
                yield Await(self.handle.exited, _EXIT_GRACE)
            return self._finish(answer, tests_run)
        finally:
            self._close()

    def _close(self) -> None:
        fds = [fd for fd in (self.res_r, self.out_r, self.err_r, self.in_w, self.ctrl_w) if fd >= 0]
        if self.own_selector:
            self.selector.close()
        else:
            registered = self.selector.get_map()
            for fd in fds:
                if fd in registered:
                    self.selector.unregister(fd)
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def _finish(self, answer: Ready | Returned | None, tests_run: TestsRun) -> Result:
        """Judge what was seen, once the zygote reported the child's end (or did not in time)."""
        exited: wire.Exited | None = self.handle.exit
        trace = None
        traced = answer if isinstance(answer, Returned) else _first_traced_call(self.messages)
        if traced is not None and traced.trace is not None:
            try:
                trace = tracer.Trace.from_msgpack(traced.trace)
            except (msgspec.DecodeError, RecursionError) as error:
                self.tampered.append(f"malformed trace: {str(error)[:200]}")
            else:
                self.tampered.extend(trace.tampered)
                self.tampered.extend(self._trace_disagrees(trace, traced))
        stdout = self.out.decode("utf-8", "replace")
        job = self.job
        evidence = Evidence(
            mode=job.mode,
            limits=self.limits,
            zygote_failure=self.handle.failure,
            wait_status=exited.status if exited else None,
            setup_done=self.setup_done,
            stderr=self.err.decode("utf-8", "replace"),
            cpu_time=exited.cpu_time if exited else 0.0,
            peak_memory=exited.peak_memory if exited else 0,
            oom_killed=exited.oom_killed if exited else False,
            killed_for=self.killed_for,
            run_time=exited.run_time if exited else 0.0,
            wait_time=exited.wait_time if exited else 0.0,
            tampered=self.tampered,
            answered=answer is not None,
            exception=answer.exception if answer else None,
            exit_code=answer.exit_code if isinstance(answer, Returned) else None,
            stdout_mismatch=(
                compare.explain(stdout, job.expected_stdout or "", job.float_tolerance) if job.mode == "stdio" else None
            ),
            tests=tests_run,
        )
        return self._result(
            evidence,
            value=answer.value if isinstance(answer, Returned) else None,
            trace=traced.trace if trace is not None and traced is not None else None,
            stdout=stdout,
            leftovers=exited.leftovers if exited else 0,
        )

    def _trace_disagrees(self, trace: tracer.Trace, answer: Returned) -> list[str]:
        """What the judge can check of a trace on its own: the message, the code's lines, the value caps."""
        found = []
        if (trace.returned, trace.exception, trace.exit_code) != (answer.value, answer.exception, answer.exit_code):
            found.append("the trace disagrees with the child's message")
        lines = self.job.code.count("\n") + 1
        frames = trace.frames
        if any(not 0 <= s.frame < len(frames) for s in trace.steps):
            found.append("the trace has steps of frames it does not have")
            return found
        if any(frames[s.frame].file != self.job.filename or not 1 <= s.line <= lines for s in trace.steps):
            found.append("the trace names lines that are not in the code")
        values = [v for s in trace.steps for v in (*s.changes.values(), *([s.value] if s.value else []))]
        values += [v for f in trace.frames for v in (f.locals or {}).values()]
        edits = [e for s in trace.steps for e in s.edits.values()]
        if not _within_depth(values, self.step_depth) or not _edits_within_depth(edits, self.step_depth):
            found.append(f"a traced value nested deeper than {self.step_depth} levels (the encoder's cap)")
        return found

    def _result(
        self,
        evidence: Evidence,
        value: tracer.Value | None = None,
        trace: bytes | None = None,
        stdout: str = "",
        leftovers: int = 0,
    ) -> Result:
        """The job's Result: the verdict's status and message, with the evidence behind them."""
        status, message = classify(evidence)
        outcomes = evidence.tests.outcomes
        if evidence.mode == "stdio" and status in ("passed", "failed"):
            passed, total = int(status == "passed"), 1
        else:
            passed, total = sum(o.passed for o in outcomes), len(outcomes)
        return Result(
            status=status,
            message=message,
            value=value,
            exception=evidence.exception,
            trace_msgpack=trace,
            tests=outcomes,
            passed=passed,
            total=total,
            stdout=stdout,
            stderr=evidence.stderr,
            stdout_more=self.out_more,
            stderr_more=self.err_more,
            exit_code=evidence.exit_status,
            signal=evidence.signal,
            wall_time=time.monotonic() - self.start,
            cpu_time=evidence.cpu_time,
            peak_memory=evidence.peak_memory,
            leftovers=leftovers,
            tampered=list(evidence.tampered),
        )


def _within_depth(values: list[tracer.Value], limit: int) -> bool:
    """Whether no value nests deeper than `limit` (walked level by level, never recursively)."""
    level = values
    for _ in range(limit):
        if not level:
            return True
        deeper: list[tracer.Value] = []
        for value in level:
            if value.items:
                deeper += value.items
            if value.keys:
                deeper += value.keys
            if value.attrs:
                deeper += value.attrs.values()
        level = deeper
    return not level


def _edits_within_depth(edits: list[tracer.Edit], limit: int) -> bool:
    """Whether the values that `edits` (of a trace's steps) put, at any level of edits inside
    edits, stay within `limit` levels of the value edited (walked level by level)."""
    level = edits
    for depth in range(limit):
        if not level:
            return True
        values: list[tracer.Value] = []
        deeper: list[tracer.Edit] = []
        for edit in level:
            values += edit.put.values()
            values += edit.attrs.values()
            if edit.splice is not None:
                values += edit.splice.items
                values += edit.splice.keys or ()
            deeper += edit.edit.values()
            deeper += edit.edit_attrs.values()
        if not _within_depth(values, limit - depth - 1):
            return False
        level = deeper
    return not level


def _first_traced_call(messages: list[Ready | Returned]) -> Returned | None:
    """Asserts mode with a trace: the answer to the tests' first call, which carries the trace."""
    return next((m for m in messages if isinstance(m, Returned) and m.trace is not None), None)
