"""What runs inside a job's child, after isolation is in place.

The child reads its `JobSpec` from the control pipe, runs the code, and writes
messages (`sandbox.wire`) to the result pipe: `Returned` for call, script and
stdio modes; for asserts mode `Ready`, then one `Returned` per call or fetch
request until `DoneRequest`. It ends with `os._exit`, so atexit hooks, excepthook
rewrites and daemon threads of the code cannot change anything after the message
is written. Values are encoded with the tracer's typed encoder, which runs no
user code.
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
        record=spec.trace_record,
        filename=spec.filename,
        capture_output=False,
        namespace={"__name__": module_name},
        **limits,
    )
    return Returned(spec.nonce, t.returned, t.exception, t.to_msgpack() if spec.trace else None, t.exit_code)


def _serve_asserts(spec: JobSpec, control_fd: int, result_fd: int) -> None:
    namespace: dict[str, Any] = {"__name__": "solution"}
    caps = TraceLimits(**dict(spec.trace_limits))
    ran = tracer.trace(spec.code, backend="none", filename=spec.filename, capture_output=False, namespace=namespace)
    if ran.exception is not None:
        wire.write(result_fd, Ready(spec.nonce, exception=ran.exception))
        return
    callables = [n for n in spec.names if n in namespace and callable(namespace[n])]
    values = [n for n in spec.names if n in namespace and n not in callables]
    wire.write(result_fd, Ready(spec.nonce, callable=callables, values=values))
    while True:
        request = _CONTROL.read(control_fd)
        if isinstance(request, DoneRequest):
            return
        if isinstance(request, FetchRequest):
            wire.write(result_fd, Returned(spec.nonce, encode(namespace.get(request.name), caps.returned_limits())))
            continue
        if not isinstance(request, CallRequest):
            raise wire.ChannelError(f"unexpected {type(request).__name__} during the tests")
        try:
            args = [to_python(a) for a in request.args]
            kwargs = {k: to_python(v) for k, v in request.kwargs.items()}
            value = namespace[request.name](*args, **kwargs)
            answer = Returned(spec.nonce, encode(value, caps.returned_limits()))
        except BaseException as error:  # SystemExit too: the code does not get to end the session
            answer = Returned(spec.nonce, exception=exception_info(error))
        _flush()
        wire.write(result_fd, answer)
