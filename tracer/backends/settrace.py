"""The `sys.settrace` backend (every Python version; the only one before 3.12).

The global trace function is called for every new frame; it returns the local
trace function only for user code objects, so library code runs without line
events (each call into it still costs one global-trace call). Threads started
while tracing are traced through `threading.settrace`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from types import CodeType, FrameType
from typing import Any

from .. import env
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

    def start(self, recorder: Recorder, codes: Iterable[CodeType]) -> None:
        codes = frozenset(codes)
        rec = recorder

        def local(frame: FrameType, event: str, arg: Any) -> Any | None:
            if not self._active:
                return None
            try:
                if event == "line":
                    rec.line(frame, frame.f_lineno)
                elif event == "return":
                    code, lasti = frame.f_code.co_code, frame.f_lasti
                    if _is_yield(code, lasti):
                        rec.yielded(frame, arg)
                    elif code[lasti] in _RETURNS:
                        rec.returned(frame, arg)
                    else:
                        rec.unwound(frame, None)
                elif event == "exception":
                    rec.raised(frame, arg[1])
            except RecursionError:
                rec.dropped += 1
            except Exception as error:  # a bug of ours must not change the traced program
                rec.stop("tracer_error", f"{type(error).__name__}: {error}")
            return local

        def global_trace(frame: FrameType, event: str, arg: Any) -> Any | None:
            if event != "call" or frame.f_code not in codes or not self._active:
                return None
            try:
                rec.call(frame)
            except RecursionError:
                rec.dropped += 1
            except Exception as error:
                rec.stop("tracer_error", f"{type(error).__name__}: {error}")
            return local

        self._global = global_trace
        self._active = True
        self._previous = sys.gettrace()
        threading.settrace(global_trace)
        sys.settrace(global_trace)

    def stop(self) -> None:
        if self._active:
            self._active = False
            sys.settrace(self._previous)
            threading.settrace(None)

    def intact(self) -> list[str]:
        if self._active and sys.gettrace() is not self._global:
            return ["sys.settrace was replaced or cleared by the traced code"]
        return []
