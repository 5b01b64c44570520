"""The `sys.monitoring` backend (Python 3.12+, PEP 669).

Local events (PY_START, PY_RESUME, PY_RETURN, PY_YIELD, LINE, JUMP) are
switched on for the user code objects only, so library code runs at full speed;
without line recording (`record="final"`) LINE, JUMP and RAISE stay off.
Like `sys.settrace`, a backward jump to the start of the same line (a loop or
comprehension written on one line) is a new line event; forward jumps are
disabled after their first firing. RAISE,
PY_UNWIND and PY_THROW can only be global on 3.12/3.13; their callbacks drop
events of other code at once. Events of every thread are delivered.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from types import CodeType
from typing import Any

from ..codeinfo import line_of_offsets
from ..recorder import Recorder

_MONITORING: Any = sys.monitoring  # type: ignore[attr-defined]  # 3.12+ (mypy checks the code as 3.11)
_TOOL_NAME = "execalign"
_PREFERRED_IDS = (4, 3, 2, 1, 0)  # leave 5 (optimizer) alone; 0-2 are debugger, coverage, profiler


class MonitoringBackend:
    name = "monitoring"

    def __init__(self) -> None:
        self._tool: int = -1
        self._codes: frozenset[CodeType] = frozenset()
        self._callbacks: dict[int, Any] = {}
        self._global_events = 0

    def start(self, recorder: Recorder, codes: Iterable[CodeType]) -> None:
        mon = _MONITORING
        ev = mon.events
        for tool in _PREFERRED_IDS:
            if mon.get_tool(tool) is None:
                break
        else:
            raise RuntimeError("no free sys.monitoring tool id (all 6 are in use)")
        mon.use_tool_id(tool, _TOOL_NAME)
        self._tool = tool
        self._codes = codes = frozenset(codes)
        rec = recorder
        getframe = sys._getframe

        def guarded(handler: Callable[..., object]) -> Callable[..., None]:
            def callback(*args: Any) -> None:
                try:
                    handler(*args)
                except Exception as error:  # a bug of ours must not change the traced program
                    rec.failed(error)

            return callback

        hook = rec.hot
        line = rec.line if hook is None else hook.line

        def record_line(frame: Any, lineno: int) -> None:
            try:
                line(frame, lineno)
            except Exception as error:  # a bug of ours must not change the traced program
                rec.failed(error)

        def on_line(code: CodeType, line: int) -> None:
            record_line(getframe(1), line)

        offset_lines: dict[CodeType, dict[int, int]] = {}  # filled on a code's first backward jump
        disable = mon.DISABLE

        def on_jump(code: CodeType, source: int, target: int) -> Any:
            if target > source:
                return disable
            lines = offset_lines.get(code)
            if lines is None:
                lines = offset_lines[code] = line_of_offsets(code)
            line = lines.get(target)
            if line is None or line != lines.get(source):
                return disable  # a jump to another line: its LINE event follows
            record_line(getframe(1), line)
            return None

        def on_raise(code: CodeType, offset: int, exc: BaseException) -> None:
            if code in codes:
                rec.raised(getframe(2), exc)

        def on_unwind(code: CodeType, offset: int, exc: BaseException) -> None:
            if code in codes:
                rec.unwound(getframe(2), exc)

        def on_throw(code: CodeType, offset: int, exc: BaseException) -> None:
            if code in codes:
                rec.call(getframe(2))

        # The frequent events without `guarded`'s extra call.
        def on_start(code: CodeType, offset: int) -> None:
            try:
                rec.call(getframe(1))
            except Exception as error:
                rec.failed(error)

        def on_return(code: CodeType, offset: int, value: Any) -> None:
            try:
                rec.returned(getframe(1), value)
            except Exception as error:
                rec.failed(error)

        def on_yield(code: CodeType, offset: int, value: Any) -> None:
            try:
                rec.yielded(getframe(1), value)
            except Exception as error:
                rec.failed(error)

        self._callbacks = {
            ev.PY_START: on_start if hook is None else hook.monitor_start,
            ev.PY_RESUME: on_start if hook is None else hook.monitor_start,
            ev.PY_RETURN: on_return if hook is None else hook.monitor_return,
            ev.PY_YIELD: on_yield,
            ev.LINE: on_line if hook is None else hook.monitor_line,
            ev.JUMP: on_jump,
            ev.RAISE: guarded(on_raise),
            ev.PY_UNWIND: guarded(on_unwind),
            ev.PY_THROW: guarded(on_throw),
        }
        for event, callback in self._callbacks.items():
            mon.register_callback(tool, event, callback)
        local = ev.PY_START | ev.PY_RESUME | ev.PY_RETURN | ev.PY_YIELD
        self._global_events = ev.PY_UNWIND | ev.PY_THROW
        if recorder.lines:
            local |= ev.LINE | ev.JUMP
            self._global_events |= ev.RAISE
        for code in codes:
            mon.set_local_events(tool, code, local)
        mon.set_events(tool, self._global_events)

    def stop(self) -> None:
        if self._tool < 0:
            return
        mon = _MONITORING
        tool, self._tool = self._tool, -1
        if mon.get_tool(tool) != _TOOL_NAME:
            return  # freed (or taken over) by the traced code: nothing of ours left to undo
        mon.set_events(tool, 0)
        for code in self._codes:
            mon.set_local_events(tool, code, 0)
        for event in self._callbacks:
            mon.register_callback(tool, event, None)
        mon.free_tool_id(tool)

    def intact(self) -> list[str]:
        if self._tool < 0:
            return []
        mon = _MONITORING
        problems = []
        if mon.get_tool(self._tool) != _TOOL_NAME:
            problems.append("the sys.monitoring tool id was freed or taken over by the traced code")
            return problems
        for event, callback in self._callbacks.items():
            if mon.register_callback(self._tool, event, callback) is not callback:
                problems.append(f"a sys.monitoring callback (event {event}) was replaced")
        if mon.get_events(self._tool) != self._global_events:
            problems.append("global sys.monitoring events were changed")
        return problems
