"""Trace a program as `python` runs it: a file, a directory with `__main__.py`, or a module (`-m`).

`trace_file(path, argv)` runs a file (or a directory's `__main__.py`) as
`__main__` with `sys.argv = [path, *argv]` and the file's directory first on
`sys.path`; `trace_module(name, argv)` finds the module as `python -m` does
(the current directory first on `sys.path`, a package's `__main__`), with its
`__spec__` and `__package__` set so that its relative imports work. Both end
as every run does (`tracer.run`).

Stopping a program from outside: `timeout=` (seconds) raises `ProgramTimeout`
in the program when it runs past it, and `interruptions()` (what the CLI uses)
turns SIGTERM into `SystemExit(143)` and SIGINT into `KeyboardInterrupt` the
same way. Each is raised in the program's own code, never inside the tracer (a
signal that arrives while the tracer is working is held for a few
milliseconds), so what was recorded up to then is a consistent `Trace`. They
use SIGALRM, and need the main thread.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import os
import signal
import sys
import threading
import tokenize
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any, NamedTuple, TextIO

from .run import TraceLimits, _run
from .schema import Record, Trace

_TRACER_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_RETRY = 0.005  # seconds before a signal that found the tracer working is raised again
_PENDING: list[BaseException] = []  # what such a signal raises then (any `interruptions` block raises it)


class NotSource(ValueError):
    """The file is not Python source text (binary, or not in its declared encoding)."""


class ProgramTimeout(BaseException):
    """Raised inside the traced program when it runs past its `timeout` (not an Exception:
    the program's own `except Exception` does not swallow it)."""


def trace_file(
    path: str,
    argv: Sequence[str] = (),
    *,
    call: str | None = None,
    backend: str = "auto",
    stdin: str | None = None,
    echo: bool | TextIO = False,
    timeout: float | None = None,
    record: Record = "lines",
    **limits: Any,
) -> Trace:
    """Trace the file at `path` (or the `__main__.py` of the directory `path`) run as `__main__`.

    `sys.argv` is `[path, *argv]`. `call` is traced after the program; `stdin`
    is the text it reads (None: this process's stdin). With `echo`, the
    program's output also goes to the real stdout/stderr as it is written
    (`echo` a stream: its stdout goes there instead). `timeout`: see the module
    docstring; `record`: as for `tracer.trace`; `limits`: `TraceLimits`. Raises OSError if the file cannot be
    read, `NotSource` if it is not Python source text.
    """
    return _trace(
        _file(path, argv), call=call, backend=backend, stdin=stdin, echo=echo, timeout=timeout, record=record, **limits
    )


def trace_module(name: str, argv: Sequence[str] = (), **options: Any) -> Trace:
    """Trace the module `name` run as `python -m name` does (a package: its `__main__`);
    `options` as `trace_file`'s.

    Raises ImportError (ModuleNotFoundError) when there is no such module or it
    has no Python source, and what importing its parent packages raises.
    """
    return _trace(_module(name, argv), **options)


class _Program(NamedTuple):
    """A program as `python` would start it."""

    source: str
    path: str  # the file that runs as __main__
    argv: list[str]
    first_on_path: str  # what python puts first on sys.path
    namespace: dict[str, Any]


def _file(path: str, argv: Sequence[str]) -> _Program:
    directory = os.path.isdir(path)
    main = os.path.abspath(os.path.join(path, "__main__.py") if directory else path)
    if directory and not os.path.isfile(main):
        raise FileNotFoundError(f"can't find '__main__' module in {path!r}")
    namespace = {"__name__": "__main__", "__file__": main, "__builtins__": builtins}
    first = os.path.abspath(path) if directory else os.path.dirname(main)
    return _Program(read_source(main), main, [path if directory else main, *argv], first, namespace)


def _module(name: str, argv: Sequence[str]) -> _Program:
    cwd = os.getcwd()
    sys.path.insert(0, cwd)
    try:
        spec = importlib.util.find_spec(name)  # imports the parent packages, as python -m does
        if spec is not None and spec.submodule_search_locations is not None:
            spec = importlib.util.find_spec(name + ".__main__")
            if spec is None:
                raise ModuleNotFoundError(
                    f"No module named {name}.__main__; {name!r} is a package and cannot be directly executed"
                )
    finally:
        sys.path.remove(cwd)
    if spec is None:
        raise ModuleNotFoundError(f"No module named {name}")
    origin = spec.origin
    if not origin or not origin.endswith(".py") or not os.path.isfile(origin):
        raise ModuleNotFoundError(f"module {name} has no Python source to trace ({origin or 'built in'})")
    namespace = {
        "__name__": "__main__",
        "__file__": origin,
        "__spec__": spec,
        "__package__": spec.parent,
        "__loader__": spec.loader,
        "__builtins__": builtins,
    }
    return _Program(read_source(origin), origin, [origin, *argv], cwd, namespace)


def read_source(path: str) -> str:
    """The text of a Python file, decoded as Python does (PEP 263); `NotSource` if it is not text."""
    try:
        with tokenize.open(path) as f:
            source = f.read()
    except (SyntaxError, UnicodeDecodeError) as error:  # SyntaxError: an unknown or wrong encoding declaration
        raise NotSource(f"{path} is not Python source text ({_reason(error)})") from None
    if "\0" in source:
        raise NotSource(f"{path} is not Python source text (it contains null bytes: a binary file?)")
    return source


def _reason(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"not valid {error.encoding} at byte {error.start}: a binary file?"
    return str(error.args[0]) if error.args else type(error).__name__


def _trace(
    program: _Program,
    *,
    call: str | None = None,
    backend: str = "auto",
    stdin: str | None = None,
    echo: bool | TextIO = False,
    timeout: float | None = None,
    record: Record = "lines",
    **limits: Any,
) -> Trace:
    caps = TraceLimits(**limits)
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = program.argv
    sys.path.insert(0, program.first_on_path)  # as python does: sibling modules import
    try:
        with interruptions(timeout=timeout, signals=()) if timeout is not None else contextlib.nullcontext():
            return _run(program.source, program.path, call, program.namespace, backend, caps, stdin, echo, True, record)
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path


@contextlib.contextmanager
def interruptions(
    *, timeout: float | None = None, signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)
) -> Iterator[list[int]]:
    """While the block runs, `signals` (SIGTERM: SystemExit(143); SIGINT: KeyboardInterrupt) and
    the end of `timeout` seconds (`ProgramTimeout`) raise in the traced program's own code.
    The block gets the list of the signals (of `signals`) received, as they come."""
    if threading.current_thread() is not threading.main_thread():
        raise ValueError("timeouts and signals need the main thread")

    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGALRM:
            received.append(signum)
        if signum == signal.SIGALRM:
            error = _PENDING.pop() if _PENDING else ProgramTimeout(f"the program ran past its timeout of {timeout:g} s")
        elif signum == signal.SIGTERM:
            error = SystemExit(128 + signal.SIGTERM)
        else:
            error = KeyboardInterrupt()
        if _in_tracer(frame):  # never inside the tracer's own work: again in a moment
            _PENDING.append(error)
            signal.setitimer(signal.ITIMER_REAL, _RETRY)
            return
        raise error

    wanted = [signal.SIGALRM, *signals]
    saved = {s: signal.signal(s, on_signal) for s in wanted}
    if timeout is not None:
        signal.setitimer(signal.ITIMER_REAL, max(timeout, 1e-6))
    try:
        yield received
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _PENDING.clear()
        for s, handler in saved.items():
            signal.signal(s, handler)


def _in_tracer(frame: FrameType | None) -> bool:
    return frame is not None and frame.f_code.co_filename.startswith(_TRACER_DIR)
