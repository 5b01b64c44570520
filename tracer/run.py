"""Run code under a tracer backend in this process and return its `Trace`.

`trace` runs a snippet (then a call expression, if given); `trace_file` runs a
file as `__main__`. Both run the code in the calling process with its stdin,
stdout, stderr and argv swapped for the duration: they are for trusted code and
for use inside a sandbox child. Untrusted code goes through `sandbox`.
One trace runs at a time per process (a lock serialises callers).
"""

from __future__ import annotations

import builtins
import os
import sys
import threading
import tokenize
import traceback
from collections.abc import Sequence
from types import CodeType
from typing import Any

import msgspec

from .backends import make_backend
from .capture import BoundedWriter, stdin_from
from .codeinfo import walk_code
from .recorder import PYTHON, Recorder
from .schema import ExceptionInfo, Trace
from .values import EncodeLimits, Encoder, render


class TraceLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Caps of one trace. Recording stops at `max_steps` steps or `max_values`
    encoded value nodes (the program itself runs on, untraced); each recorded
    variable value is cut at `max_depth`, `max_items` and `max_str`; the value
    of the call expression (`Trace.returned`) at the larger `max_return_items`
    and `max_return_str`; stdout and stderr keep `max_output` characters each."""

    max_steps: int = 100_000
    max_values: int = 5_000_000
    max_depth: int = 12
    max_items: int = 200
    max_str: int = 2000
    max_return_items: int = 100_000
    max_return_str: int = 1_000_000
    max_output: int = 1 << 20

    def value_limits(self) -> EncodeLimits:
        return EncodeLimits(self.max_depth, self.max_items, self.max_str)

    def returned_limits(self) -> EncodeLimits:
        return EncodeLimits(
            max(self.max_depth, 50), max(self.max_items, self.max_return_items), max(self.max_str, self.max_return_str)
        )


_LOCK = threading.Lock()


def trace(
    source: str,
    call: str | None = None,
    *,
    backend: str = "auto",
    stdin: str | None = None,
    filename: str = "<snippet>",
    capture_output: bool = True,
    module_name: str = "__main__",
    **limits: Any,
) -> Trace:
    """Trace `source`, then the call expression `call` (e.g. "f([1, 2])") if given.

    `trace.returned` is the encoded value of `call`. An exception of the code
    (a SyntaxError too) is recorded in `trace.exception`, never raised.
    `stdin` is the text `input()` reads (None: this process's own stdin).
    With `capture_output=False` the code writes to this process's own
    stdout/stderr and `trace.stdout`/`stderr` stay empty. `module_name` is the
    snippet's `__name__` (another name keeps `if __name__ == "__main__":` blocks
    from running before the call).
    """
    caps = TraceLimits(**limits)
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
        call_code = compile(call, "<call>", "eval", dont_inherit=True) if call is not None else None
    except (SyntaxError, ValueError) as error:
        return _failed_to_compile(error, backend)
    namespace = {"__name__": module_name, "__builtins__": builtins}
    return _run(code, namespace, call_code, backend, caps, stdin, echo=False, capture=capture_output)


def trace_file(
    path: str,
    argv: Sequence[str] = (),
    *,
    call: str | None = None,
    backend: str = "auto",
    stdin: str | None = None,
    echo: bool = False,
    **limits: Any,
) -> Trace:
    """Trace the file at `path` run as `__main__` with `sys.argv = [path, *argv]`.

    With `echo`, the program's output also goes to the real stdout/stderr as it
    is written. Raises OSError if the file cannot be read.
    """
    caps = TraceLimits(**limits)
    path = os.path.abspath(path)
    with tokenize.open(path) as f:
        source = f.read()
    try:
        code = compile(source, path, "exec", dont_inherit=True)
        call_code = compile(call, "<call>", "eval", dont_inherit=True) if call is not None else None
    except (SyntaxError, ValueError) as error:
        return _failed_to_compile(error, backend)
    namespace = {"__name__": "__main__", "__file__": path, "__builtins__": builtins}
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(path))  # as `python path` does: sibling modules import
    try:
        return _run(code, namespace, call_code, backend, caps, stdin, echo=echo, capture=True)
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path


def _failed_to_compile(error: BaseException, backend: str) -> Trace:
    info = ExceptionInfo(type(error).__name__, str(error))
    name = make_backend(backend).name
    return Trace(
        steps=[],
        frames=[],
        backend=name,
        python=PYTHON,
        exception=info,
        exit_code=1,
        stderr=f"{info.type}: {info.message}\n",
    )


def _run(
    code: CodeType,
    namespace: dict,
    call_code: CodeType | None,
    backend_name: str,
    caps: TraceLimits,
    stdin: str | None,
    echo: bool,
    capture: bool,
) -> Trace:
    encoder = Encoder(caps.value_limits())
    backend = make_backend(backend_name)
    recorder = Recorder(encoder, caps.max_steps, caps.max_values, on_stop=backend.stop)
    out = BoundedWriter(caps.max_output, sys.stdout if echo else None, "<stdout>")
    err = BoundedWriter(caps.max_output, sys.stderr if echo else None, "<stderr>")
    user_files = {code.co_filename}
    returned = None
    exception = None
    exit_code = 0
    call_step = -1
    tampered: list[str] = []
    with _LOCK:
        saved = sys.stdin, sys.stdout, sys.stderr
        sys.stdin = saved[0] if stdin is None else stdin_from(stdin)
        if capture:
            sys.stdout, sys.stderr = out, err
        else:
            err = _Passthrough(saved[2], caps.max_output)  # tracebacks still go to the real stderr
        try:
            backend.start(recorder, walk_code(code))
            try:
                exec(code, namespace)
                if call_code is not None:
                    call_step = recorder.step_count
                    result = eval(call_code, namespace)
                    returned = Encoder(caps.returned_limits()).encode(result)
            except SystemExit as stop:
                exit_code = _exit_code(stop, err)
            except BaseException as error:
                exception = recorder.exception_info(error)
                exit_code = 1
                _print_traceback(error, exception, user_files, err)
            finally:
                tampered = backend.intact()
                backend.stop()
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved
    if tampered:
        recorder.stop("tampered", "; ".join(tampered))
    return recorder.finish(
        returned=returned,
        call_step=call_step,
        exception=exception,
        exit_code=exit_code,
        backend=backend.name,
        stdout=out.getvalue(),
        stderr=err.getvalue(),
        stdout_more=out.more,
        stderr_more=err.more,
        tampered=tampered,
    )


class _Passthrough(BoundedWriter):
    """Writes to a real stream and keeps nothing (capture_output=False)."""

    def __init__(self, stream: Any, limit: int):
        super().__init__(0, stream)


def _exit_code(stop: SystemExit, err: BoundedWriter) -> int:
    code = stop.code
    if code is None:
        return 0
    if type(code) is int:
        return code
    err.write((code if type(code) is str else render(Encoder().encode(code))) + "\n")
    return 1


def _print_traceback(error: BaseException, info: ExceptionInfo, user_files: set, err: BoundedWriter) -> None:
    """Python's traceback of the user frames, with the message made by our encoder."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename in user_files]
    err.write("Traceback (most recent call last):\n")
    err.write("".join(traceback.format_list(frames)))
    err.write(f"{info.type}: {info.message}\n" if info.message else f"{info.type}\n")
