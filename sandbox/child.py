"""What runs inside a job's child, after isolation is in place.

The child reads its `JobSpec` from the control pipe, runs the code, and writes
messages (`sandbox.wire`) to the result pipe: `Returned` for call, script and
stdio modes; for asserts mode `Ready`, then one `Returned` per call or fetch
request until `DoneRequest` (with a trace asked, the first call's carries it).
It ends with `os._exit`, so atexit hooks, excepthook rewrites and daemon threads
of the code cannot change anything after the message is written. Values are
encoded with the tracer's typed encoder, which runs no user code.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import tracer
from tracer import TraceLimits, encode, exception_info, to_python

from . import wire
from .wire import CallRequest, DoneRequest, FetchRequest, JobSpec, Ready, Returned

_CONTROL = wire.Decoder[wire.ToChild](wire.ToChild, wire.CONTROL_LIMIT)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def run(control_fd: int, result_fd: int) -> None:
    """Serve one job; never returns."""
    try:  # whatever happens, this process ends here: it never returns into the zygote's code
        spec = _CONTROL.read(control_fd)
        if not isinstance(spec, JobSpec):
            raise wire.ChannelError(f"expected the job's spec first, got {type(spec).__name__}")
        if spec.mode == "asserts":
            _serve_asserts(spec, control_fd, result_fd)
        else:
            wire.write(result_fd, _run_program(spec))
    finally:
        _flush()
        os._exit(0)


def _run_program(spec: JobSpec) -> Returned:
    """Run the code, then the call, by the tracer's runner (its rules: `tracer.run`), traced if asked."""
    sys.argv = [spec.filename, *spec.argv]
    module_name = "__main__" if spec.mode != "call" else "solution"  # a call does not run the main guard
    limits: dict[str, Any] = dict(spec.trace_limits)
    t = tracer.trace(
        spec.code,
        spec.call,
        backend="auto" if spec.trace else "none",
        filename=spec.filename,
        capture_output=False,
        namespace={"__name__": module_name},
        **limits,
    )
    return Returned(spec.nonce, t.returned, t.exception, t.to_msgpack() if spec.trace else None, t.exit_code)


def _serve_asserts(spec: JobSpec, control_fd: int, result_fd: int) -> None:
    """The code runs, then the judge's requests are answered in order (see `_Session`).

    With `spec.trace`, the code and the tests' first call are one traced run, as in call mode:
    the code runs under the tracer, then the call expression `HOOK()` answers the judge's
    requests up to its first call and makes that call inside the run; the `Returned` of that
    call carries the trace. Later calls are not traced."""
    session = _Session(spec, control_fd, result_fd)
    namespace = session.namespace
    if not spec.trace:
        ran = tracer.trace(spec.code, backend="none", filename=spec.filename, capture_output=False, namespace=namespace)
    else:
        namespace[HOOK] = session.first_call
        limits: dict[str, Any] = dict(spec.trace_limits)
        ran = tracer.trace(
            spec.code, f"{HOOK}()", filename=spec.filename, capture_output=False, namespace=namespace, **limits
        )
        if namespace.get(HOOK) is session.first_call:
            del namespace[HOOK]
        if session.broken is not None:
            raise session.broken
        if session.first is not None:  # the traced call's answer: its value or exception, and the trace
            value = None if ran.exception is not None else ran.returned
            wire.write(result_fd, Returned(spec.nonce, value, ran.exception, ran.to_msgpack()))
        if session.done:
            return
    if not session.ready_sent:
        if ran.exception is not None:  # the code failed (or removed the hook): the tests never run
            wire.write(result_fd, Ready(spec.nonce, exception=ran.exception))
            return
        session.ready()  # the code replaced the hook: the tests run untraced
    while (request := session.next_call()) is not None:
        wire.write(result_fd, session.answer(request))


HOOK = "__execalign_first_call__"  # asserts mode with a trace: the call expression that serves the first call


class _Session:
    """Asserts mode in the child: the judge's fetch and call requests about the code's names."""

    def __init__(self, spec: JobSpec, control_fd: int, result_fd: int):
        self.spec, self.control_fd, self.result_fd = spec, control_fd, result_fd
        self.namespace: dict[str, Any] = {"__name__": "solution"}
        self.caps = TraceLimits(**dict(spec.trace_limits))
        self.ready_sent = False
        self.done = False  # the judge sent DoneRequest
        self.first: CallRequest | None = None  # the call made inside the traced run
        self.broken: wire.ChannelError | None = None

    def ready(self) -> None:
        spec, namespace = self.spec, self.namespace
        callables = [n for n in spec.names if n in namespace and callable(namespace[n])]
        values = [n for n in spec.names if n in namespace and n not in callables]
        wire.write(self.result_fd, Ready(spec.nonce, callable=callables, values=values))
        self.ready_sent = True

    def next_call(self) -> CallRequest | None:
        """Answer fetches until the next call request; None once the judge is done."""
        while True:
            request = _CONTROL.read(self.control_fd)
            if isinstance(request, DoneRequest):
                self.done = True
                return None
            if isinstance(request, FetchRequest):
                value = encode(self.namespace.get(request.name), self.caps.returned_limits())
                wire.write(self.result_fd, Returned(self.spec.nonce, value))
                continue
            if not isinstance(request, CallRequest):
                raise wire.ChannelError(f"unexpected {type(request).__name__} during the tests")
            return request

    def _call(self, request: CallRequest) -> Any:
        args = [to_python(a) for a in request.args]
        kwargs = {k: to_python(v) for k, v in request.kwargs.items()}
        return self.namespace[request.name](*args, **kwargs)

    def answer(self, request: CallRequest) -> Returned:
        try:
            answer = Returned(self.spec.nonce, encode(self._call(request), self.caps.returned_limits()))
        except BaseException as error:  # SystemExit too: the code does not get to end the session
            answer = Returned(self.spec.nonce, exception=exception_info(error))
        _flush()
        return answer

    def first_call(self) -> Any:
        """The traced run's call expression: Ready, the requests up to the first call, then that call,
        whose value or exception is the run's (the tracer records it as call mode's)."""
        try:
            self.ready()
            request = self.next_call()
        except wire.ChannelError as error:
            self.broken = error
            return None
        if request is None:
            return None
        self.first = request
        try:
            return self._call(request)
        finally:
            _flush()
