"""What runs inside a task child, after isolation is in place.

The child reads its `JobSpec` from the control pipe, runs the code, and writes
result frames to the result pipe: `Returned` for call, script and stdio modes;
for asserts mode a `Ready` frame, then one `Returned` per call request until
`DoneRequest`. It ends with `os._exit`, so atexit hooks, excepthook rewrites and
daemon threads of the code cannot change anything after the frame is written.
Values are encoded with the tracer's typed encoder, which runs no user code.
"""

from __future__ import annotations

import builtins
import os
import sys
from typing import Any

import msgspec

import tracer
from tracer import ExceptionInfo, TraceLimits, encode, exception_info, to_python

from .protocol import (
    CallRequest,
    DoneRequest,
    FetchRequest,
    JobSpec,
    Ready,
    Returned,
    read_exact,
    read_request,
    write_frame,
)

_SPEC_LIMIT = 64 << 20


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def run(control_fd: int, result_fd: int) -> None:
    """Serve one task; never returns."""
    spec = read_spec(control_fd)
    try:
        if spec.mode == "asserts":
            _serve_asserts(spec, control_fd, result_fd)
        else:
            write_frame(result_fd, _run_program(spec))
    finally:
        _flush()
        os._exit(0)


def read_spec(fd: int) -> JobSpec:
    size = int.from_bytes(read_exact(fd, 4), "big")
    if size > _SPEC_LIMIT:
        raise ValueError(f"task spec of {size} bytes is over the cap")
    return msgspec.msgpack.decode(read_exact(fd, size), type=JobSpec)


def _run_program(spec: JobSpec) -> Returned:
    limits = dict(spec.trace_limits)
    sys.argv = [spec.filename, *spec.argv]
    module_name = "__main__" if spec.mode != "call" else "solution"  # a call does not run the main guard
    if spec.trace:
        t = tracer.trace(
            spec.code, spec.call, filename=spec.filename, capture_output=False, module_name=module_name, **limits
        )
        return Returned(spec.nonce, t.returned, t.exception, t.to_msgpack(), t.exit_code)
    namespace = {"__name__": module_name, "__builtins__": builtins}
    caps = TraceLimits(**limits)
    try:
        exec(compile(spec.code, spec.filename, "exec", dont_inherit=True), namespace)
        value = None
        if spec.call is not None:
            result = eval(compile(spec.call, "<call>", "eval", dont_inherit=True), namespace)
            value = encode(result, caps.returned_limits())
        return Returned(spec.nonce, value)
    except SystemExit as stop:
        code = stop.code if type(stop.code) is int else (0 if stop.code is None else 1)
        exception = None if spec.mode != "call" else exception_info(stop)
        return Returned(spec.nonce, exception=exception, exit_code=code)
    except BaseException as error:
        info = exception_info(error)
        _print_exception(info)
        return Returned(spec.nonce, exception=info, exit_code=1)


def _print_exception(info: ExceptionInfo) -> None:
    try:
        sys.stderr.write(f"{info.type}: {info.message}\n")
    except Exception:
        pass


def _serve_asserts(spec: JobSpec, control_fd: int, result_fd: int) -> None:
    namespace: dict[str, Any] = {"__name__": "solution", "__builtins__": builtins}
    caps = TraceLimits(**dict(spec.trace_limits))
    try:
        exec(compile(spec.code, spec.filename, "exec", dont_inherit=True), namespace)
    except BaseException as error:
        write_frame(result_fd, Ready(spec.nonce, exception=exception_info(error)))
        return
    callables = [n for n in spec.names if n in namespace and callable(namespace[n])]
    values = [n for n in spec.names if n in namespace and n not in callables]
    write_frame(result_fd, Ready(spec.nonce, callable=callables, values=values))
    while True:
        request = read_request(control_fd, _SPEC_LIMIT)
        if isinstance(request, DoneRequest):
            return
        if isinstance(request, FetchRequest):
            write_frame(result_fd, Returned(spec.nonce, encode(namespace.get(request.name), caps.returned_limits())))
            continue
        assert isinstance(request, CallRequest)
        try:
            args = [to_python(a) for a in request.args]
            kwargs = {k: to_python(v) for k, v in request.kwargs.items()}
            value = namespace[request.name](*args, **kwargs)
            frame = Returned(spec.nonce, encode(value, caps.returned_limits()))
        except BaseException as error:  # SystemExit too: the code does not get to end the session
            frame = Returned(spec.nonce, exception=exception_info(error))
        _flush()
        write_frame(result_fd, frame)
