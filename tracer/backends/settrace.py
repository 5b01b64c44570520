"""The `sys.settrace` backend (every Python version; the only one before 3.12).

The global trace function is called for every new frame; it returns the local
trace function only for user code objects, so library code runs without line
events (each call into it still costs one global-trace call). Without line
recording (`record="final"`) user frames get no line events either
(`f_trace_lines`). Threads started while tracing are traced through
`threading.settrace`.

Python itself removes the trace function when calling it fails, which happens
when the traced code reaches the recursion limit: that loss is the program's
own behaviour, recorded as `Stop("recursion_limit")`. Tampering is told apart
from it: while tracing, `sys.settrace` is a wrapper that notes every call by
the traced code, and a trace function gone without such a call and without
the code having been at the recursion limit is tampering too.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from types import CodeType, FrameType
from typing import Any

from .. import env
from ..accel import LineHook
from ..recorder import Recorder

_RETURNS = env.RETURN_OPCODES
_YIELD = env.YIELD_OPCODE
_RESUME = env.RESUME_OPCODE

if env.YIELD_REPORTED_AT_RESUME:

    def _is_yield(code: bytes, lasti: int) -> bool:
        """At a 'return' event: is the frame suspending (at the RESUME after a YIELD_VALUE)?"""
        return code[lasti] == _RESUME and lasti >= 2 and code[lasti - 2] == _YIELD

else:

    def _is_yield(code: bytes, lasti: int) -> bool:
        """At a 'return' event: is the frame suspending (at a YIELD_VALUE)?"""
        return code[lasti] == _YIELD


class SettraceBackend:
    name = "settrace"

    def __init__(self) -> None:
        self._active = False
        self._global: Any = None
        self._previous: Any = None
        self._settrace: Any = sys.settrace
        self._recorder: Recorder | None = None
        self._calls = 0  # calls of sys.settrace by the traced code with another function than ours
        self._hook: LineHook | None = None

    def start(self, recorder: Recorder, codes: Iterable[CodeType]) -> None:
        codes = frozenset(codes)
        rec = recorder
        lines = recorder.lines

        def local(frame: FrameType, event: str, arg: Any) -> Any | None:
            if not self._active:
                return None
            try:
                if event == "line":
                    rec.line(frame, frame.f_lineno)
                elif event == "return":
                    code, lasti = frame.f_code.co_code, frame.f_lasti
                    if code[lasti] in _RETURNS:
                        rec.returned(frame, arg)
                    elif _is_yield(code, lasti) and (arg is not None or not rec.unwinding(frame)):
                        rec.yielded(frame, arg)
                    else:  # an exception, also one thrown into a generator at its yield
                        rec.unwound(frame, None)
                elif event == "exception":
                    rec.raised(frame, arg[1])
            except Exception as error:  # a bug of ours must not change the traced program
                rec.failed(error)
            return local

        def global_trace(frame: FrameType, event: str, arg: Any) -> Any | None:
            if event != "call" or frame.f_code not in codes or not self._active:
                return None
            if not lines:
                frame.f_trace_lines = False
            try:
                rec.call(frame)
            except Exception as error:
                rec.failed(error)
            return trace_function

        hook = self._hook = recorder.hot
        trace_function: Any = local
        if hook is not None:  # line events compiled, every other event to `local`
            hook.other = local
            hook.active = True
            trace_function = hook

        real = self._settrace = sys.settrace

        def settrace(function: Any) -> None:
            if function is not global_trace:  # (new threads set ours, through threading.settrace)
                self._calls += 1
            real(function)

        settrace.__doc__ = real.__doc__
        self._global = global_trace
        self._recorder = recorder
        self._calls = 0
        self._active = True
        self._previous = sys.gettrace()
        threading.settrace(global_trace)
        sys.settrace = settrace
        real(global_trace)

    def stop(self) -> None:
        if self._active:
            self._active = False
            if self._hook is not None:
                self._hook.active = False
            sys.settrace = self._settrace
            sys.settrace(self._previous)
            threading.settrace(None)

    def intact(self) -> list[str]:
        """Tampering found; a trace function lost at the recursion limit is not tampering
        (it stops the recorder with reason "recursion_limit")."""
        if not self._active:
            return []
        if self._calls:
            return ["the traced code called sys.settrace"]
        if sys.gettrace() is self._global:
            return []
        rec = self._recorder
        if sys.gettrace() is None and rec is not None and rec.dropped:
            rec.stop(
                "recursion_limit",
                "Python removed the trace function when the code reached the recursion limit;"
                " what ran after that was not recorded",
            )
            return []
        return ["sys.settrace was replaced or cleared by the traced code"]
