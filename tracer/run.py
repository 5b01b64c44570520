"""The one runner: run code in this process, traced or not, and return its `Trace`.

`trace` runs a snippet (then a call expression, if given); `tracer.program`
runs a file, a directory or a module as `__main__` (`trace_file`,
`trace_module`); the sandbox child runs its jobs through `trace` (backend
"none" when no trace is asked for). All of them compile, run and end the code
the same way, in `_run`, with this process's stdin, stdout, stderr (and, for
programs, argv and sys.path) swapped for the duration: they are for
trusted code and for use inside a sandbox child. Untrusted code goes through
`sandbox`. One run at a time per process (a lock serialises callers).

What is recorded (`record`): "lines" (the default) records every line with
what it changed; "final" records only calls and returns, each return step with
what its frame changed, so `Frame.locals` (final values) and return values are
there while a long loop runs without line events: close to its untraced time
on sys.monitoring (3.12+); under sys.settrace (3.11) any trace function makes
the interpreter itself about twice as slow.

How a run ends, for every caller:
- normally: `exit_code` 0; `returned` is the call expression's value.
- by an uncaught exception: it is `exception`, `exit_code` is 1, and Python's
  traceback of the user frames goes to stderr. A source or call expression
  that does not compile runs nothing; its error is `exception` the same way
  (on stderr as one line, and not echoed: the CLI reports it itself).
- by SystemExit: `exit_code` is what Python would exit with (no code: 0, an
  int: itself, anything else: written to stderr, then 1). Code run as
  `__main__` (a program) has simply ended, and the call expression, if any,
  still runs after it (its own outcome is the run's). Code run under another
  module name (the sandbox's call and asserts modes run it as "solution") was
  loaded for a value or for its names, so the SystemExit is also the run's
  `exception`, and no call follows.

The program's stdout and stderr are real text streams over a bounded capture
(`tracer.capture`); `Trace.stdout_at` says which step wrote which part of stdout.
"""

from __future__ import annotations

import builtins
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, TextIO, get_args

import msgspec

from .backends import make_backend
from .capture import Capture, captured, stdin_from
from .codeinfo import walk_code
from .encode import EncodeLimits, Encoder
from .recorder import Recorder
from .render import render
from .schema import ExceptionInfo, Record, Trace

RECORDS: tuple[Record, ...] = get_args(Record)


class TraceLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Caps of one trace. Recording stops at `max_steps` steps or `max_values`
    encoded value nodes (the program itself runs on, untraced); each recorded
    variable value is cut at `max_depth`, `max_items` and `max_str`; the value
    of the call expression (`Trace.returned`) at the larger `max_return_items`
    and `max_return_str`; stdout and stderr keep their first `max_output` bytes each."""

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
_EXIT_CODE = SystemExit.__dict__["code"].__get__  # SystemExit.code, read past any user property
_TRACEBACK_LIMIT = 1000  # Python's default sys.tracebacklimit


def trace(
    source: str,
    call: str | None = None,
    *,
    backend: str = "auto",
    stdin: str | None = None,
    filename: str = "<snippet>",
    capture_output: bool = True,
    namespace: dict[str, Any] | None = None,
    record: Record = "lines",
    **limits: Any,
) -> Trace:
    """Trace `source`, then the call expression `call` (e.g. "f([1, 2])") if given.

    `trace.returned` is the encoded value of `call`. An exception of the code
    (a SyntaxError too) is recorded in `trace.exception`, never raised.
    `backend` is "auto", "monitoring", "settrace", or "none" (run without
    recording: the Trace has the outcome and no steps). `stdin` is the text
    `input()` reads (None: this process's own stdin). With
    `capture_output=False` the code writes to this process's own stdout/stderr
    and `trace.stdout`/`stderr` stay empty. `namespace` is the module dict the
    code runs in (default: a fresh `__main__`); pass one to keep the names the
    code defines, or to run it under another `__name__` (then an
    `if __name__ == "__main__":` block does not run, and SystemExit is an
    exception: see the module docstring). `record` is "lines" (every line) or
    "final" (calls and returns only, with final values: see the module docstring).
    """
    caps = TraceLimits(**limits)
    namespace = {"__name__": "__main__"} if namespace is None else namespace
    namespace.setdefault("__builtins__", builtins)
    return _run(
        source, filename, call, namespace, backend, caps, stdin, echo=False, capture=capture_output, record=record
    )


def _run(
    source: str,
    filename: str,
    call: str | None,
    namespace: dict[str, Any],
    backend_name: str,
    caps: TraceLimits,
    stdin: str | None,
    echo: bool | TextIO,
    capture: bool,
    record: Record,
) -> Trace:
    """Compile, run (recorded by the backend), evaluate the call, end as the module docstring says.

    `echo`: the program's output also goes to the real stdout and stderr as it
    is written (a stream: its stdout goes there instead of the real stdout)."""
    if record not in RECORDS:
        raise ValueError(f"unknown record {record!r}: choose one of {', '.join(map(repr, RECORDS))}")
    backend = make_backend(backend_name)
    recorder = Recorder(
        Encoder(caps.value_limits()), caps.max_steps, caps.max_values, on_stop=backend.stop, lines=record == "lines"
    )
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
        call_code = compile(call, "<call>", "eval", dont_inherit=True) if call is not None else None
    except Exception as error:  # SyntaxError, ValueError (a null byte), RecursionError (too deeply nested)
        info = ExceptionInfo(type(error).__name__, str(error))
        message = f"{info.type}: {info.message}\n"
        if not capture:
            sys.stderr.write(message)
        return recorder.finish(exception=info, exit_code=1, backend=backend.name, stderr=message if capture else "")
    program = namespace.get("__name__") == "__main__"

    def clock() -> int:  # the step running now; past the last one once recording has stopped
        return recorder.step_count - (recorder.stopped is None)

    echo_out = None if echo is False else sys.stdout if echo is True else echo
    echo_err = None if echo is False else sys.stderr
    out = Capture(caps.max_output, echo_out, clock if backend.name != "none" else None, "<stdout>")
    err = Capture(caps.max_output, echo_err, None, "<stderr>")
    out_text, err_text = captured(out, echo_out, "strict"), captured(err, echo_err, "backslashreplace")
    program_err: TextIO = err_text
    returned = None
    outcome = _Outcome()
    call_step = -1
    tampered: list[str] = []
    with _LOCK:
        saved = sys.stdin, sys.stdout, sys.stderr
        sys.stdin = saved[0] if stdin is None else stdin_from(stdin)
        if capture:
            sys.stdout, sys.stderr = out_text, err_text
        else:
            program_err = saved[2]  # tracebacks still go to the real stderr
        user_files = {code.co_filename}
        try:
            backend.start(recorder, walk_code(code))
            try:
                outcome.run(lambda: exec(code, namespace), program, recorder, program_err, user_files)
                if call_code is not None and outcome.exception is None:  # a program that exited still gets its call
                    call_step = recorder.step_count
                    done, result = outcome.run(
                        lambda: eval(call_code, namespace), program, recorder, program_err, user_files
                    )
                    if done:
                        returned = Encoder(caps.returned_limits()).encode(result)
            finally:
                tampered = backend.intact()
                backend.stop()
                _flush(out_text, err_text)
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved
    if tampered:
        recorder.stop("tampered", "; ".join(tampered))
    stdout, stdout_more, stdout_at = out.text(out_text.encoding)  # the program may have reconfigured it
    stderr, stderr_more, _ = err.text(err_text.encoding)
    return recorder.finish(
        returned=returned,
        call_step=call_step,
        exception=outcome.exception,
        exit_code=outcome.exit_code,
        backend=backend.name,
        stdout=stdout,
        stderr=stderr,
        stdout_more=stdout_more,
        stderr_more=stderr_more,
        stdout_at=stdout_at,
        tampered=tampered,
    )


class _Outcome:
    """How the code (then the call) ended: the exception and exit code of the module docstring."""

    def __init__(self) -> None:
        self.exception: ExceptionInfo | None = None
        self.exit_code = 0

    def run(
        self, action: Callable[[], Any], program: bool, recorder: Recorder, err: TextIO, user_files: set[str]
    ) -> tuple[bool, Any]:
        """(True, its value) when `action` returned, else (False, None) with the outcome set."""
        self.exit_code = 0
        try:
            return True, action()
        except SystemExit as stop:
            self.exit_code = _exit_code(stop, err)
            if not program:
                self.exception = recorder.exception_info(stop)
        except BaseException as error:
            self.exception = recorder.exception_info(error)
            self.exit_code = 1
            _print_traceback(error, self.exception, user_files, err)
        return False, None


def _flush(*streams: TextIO) -> None:
    for stream in streams:
        try:
            stream.flush()
        except (ValueError, OSError):  # closed by the program
            pass


def _exit_code(stop: SystemExit, err: TextIO) -> int:
    code = _EXIT_CODE(stop)
    if code is None:
        return 0
    if type(code) is int:
        return code
    err.write((code if type(code) is str else render(Encoder().encode(code))) + "\n")
    return 1


def _print_traceback(error: BaseException, info: ExceptionInfo, user_files: set[str], err: TextIO) -> None:
    """Python's traceback of the user frames, with the message made by our encoder.

    As Python does, only the innermost `_TRACEBACK_LIMIT` entries are shown: an
    exception out of a deep recursion can have millions of them."""
    tb, depth = error.__traceback__, 0
    while tb is not None:
        tb, depth = tb.tb_next, depth + 1
    tb = error.__traceback__
    for _ in range(depth - _TRACEBACK_LIMIT):
        tb = tb.tb_next if tb is not None else None
    frames = [f for f in traceback.extract_tb(tb) if f.filename in user_files]
    err.write("Traceback (most recent call last):\n")
    err.write("".join(traceback.format_list(frames)))
    err.write(f"{info.type}: {info.message}\n" if info.message else f"{info.type}\n")
