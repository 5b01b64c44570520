"""The backend-independent recorder: turns frame events into steps.

Backends (`tracer.backends`) call `call`, `line`, `returned`, `yielded`,
`unwound` and `raised` with the user frame. The recorder keeps, per live frame,
a snapshot of each local (the object and its encoding). At every event it works
out what the frame's previous line changed and attaches that to the previous
step; only names that line can bind are read unless the line may mutate values
in place or other traced code ran since (see `codeinfo`). Immutable values are
compared by identity, others by re-encoding.

Raw steps are small lists while recording; `finish` builds the `Trace`.
"""

from __future__ import annotations

import sys
import threading
from types import CodeType, FrameType
from typing import Any, Callable, Optional

from .codeinfo import START_LINE, CodeInfo, analyse
from .schema import ExceptionInfo, Frame, Step, Stop, Trace
from .values import FROZEN_TYPES, Encoder, Value, render, type_name

_DELETED = Value("deleted")  # marker inside raw changes; becomes Step.deleted
_MISSING = object()
_BUILTIN_EXC_ARGS = BaseException.__dict__["args"].__get__
_TYPE_MODULE = type.__dict__["__module__"].__get__

# raw step layout: [event, frame_state, line, changes or None, payload]
_EVENT, _STATE, _LINE, _CHANGES, _PAYLOAD = range(5)


class FrameState:
    __slots__ = ("fid", "code", "info", "depth", "parent", "thread", "snap", "pending", "prev_line",
                 "last", "defined", "returned", "exception", "finished", "is_module")

    def __init__(self, fid: int, code: CodeType, info: CodeInfo, depth: int, parent: int, thread: int):
        self.fid = fid
        self.code = code
        self.info = info
        self.depth = depth
        self.parent = parent
        self.thread = thread
        self.snap: dict[str, tuple[Any, Value]] = {}
        self.pending: Optional[list] = None
        self.prev_line = START_LINE
        self.last = -1
        self.defined: dict[str, int] = {}
        self.returned: Optional[Value] = None
        self.exception: Optional[ExceptionInfo] = None
        self.finished = False
        self.is_module = info.is_module


class Recorder:
    def __init__(self, encoder: Encoder, max_steps: int, max_values: int, on_stop: Callable[[], None]):
        self.encoder = encoder
        self.max_steps = max_steps
        self.max_values = max_values
        self.on_stop = on_stop
        self.raw: list[list] = []
        self.states: dict[FrameType, FrameState] = {}
        self.frames: list[FrameState] = []
        self.infos: dict[CodeType, CodeInfo] = {}
        self.threads: dict[int, int] = {threading.get_ident(): 0}
        self.count = 0
        self.stopped: Optional[Stop] = None
        self.dropped = 0  # events skipped because the stack was at the recursion limit

    # ------------------------------------------------------------ events

    def call(self, frame: FrameType) -> None:
        st = self.states.get(frame)
        if st is None:
            st = self._new_frame(frame)
        self.count += 1
        st.last = self.count
        step = ["call", st, frame.f_lineno or st.code.co_firstlineno, None, None]
        self.raw.append(step)
        st.pending = step
        st.prev_line = START_LINE
        self._attach(st, self._diff_all(st, frame))
        self._check_caps()

    def line(self, frame: FrameType, line: int) -> None:
        st = self.states.get(frame)
        if st is None:
            st = self._new_frame(frame)
        self._settle(st, frame)
        step = ["line", st, line, None, None]
        self.raw.append(step)
        st.pending = step
        st.prev_line = line
        if len(self.raw) >= self.max_steps or self.encoder.nodes >= self.max_values:
            self._check_caps()

    def returned(self, frame: FrameType, value: Any) -> None:
        st = self._exit(frame, "return", None)
        if st is not None:
            st.returned = self.raw[-1][_PAYLOAD] = self.encoder.encode(value)
            self._finish_frame(frame, st)

    def yielded(self, frame: FrameType, value: Any) -> None:
        st = self._exit(frame, "return", None)
        if st is not None:
            self.raw[-1][_PAYLOAD] = self.encoder.encode(value)

    def unwound(self, frame: FrameType, exc: Optional[BaseException]) -> None:
        st = self.states.get(frame)
        info = self.exception_info(exc) if exc is not None else (st.exception if st else None)
        st = self._exit(frame, "return", info)
        if st is not None:
            st.exception = info
            self._finish_frame(frame, st)

    def raised(self, frame: FrameType, exc: BaseException) -> None:
        st = self.states.get(frame)
        if st is None:
            st = self._new_frame(frame)
        self._settle(st, frame)
        info = self.exception_info(exc)
        st.exception = info
        self.raw.append(["exception", st, frame.f_lineno, None, info])
        self._check_caps()

    # ------------------------------------------------------------ internals

    def _exit(self, frame: FrameType, event: str, exc: Optional[ExceptionInfo]) -> Optional[FrameState]:
        st = self.states.get(frame)
        if st is None:
            return None
        self._settle(st, frame)
        self.raw.append([event, st, frame.f_lineno, None, exc])
        self._check_caps()
        return st

    def _finish_frame(self, frame: FrameType, st: FrameState) -> None:
        st.finished = True
        del self.states[frame]

    def _new_frame(self, frame: FrameType) -> FrameState:
        code = frame.f_code
        info = self.infos.get(code)
        if info is None:
            info = self.infos[code] = analyse(code)
        depth, parent = 0, -1
        back = frame.f_back
        while back is not None:
            ps = self.states.get(back)
            if ps is not None:
                depth, parent = ps.depth + 1, ps.fid
                break
            back = back.f_back
        ident = threading.get_ident()
        thread = self.threads.get(ident)
        if thread is None:
            thread = self.threads[ident] = len(self.threads)
        st = FrameState(len(self.frames), code, info, depth, parent, thread)
        self.frames.append(st)
        self.states[frame] = st
        return st

    def _settle(self, st: FrameState, frame: FrameType) -> None:
        """Attach what the frame's previous line changed to the frame's pending step."""
        self.count += 1
        other_ran = st.last != self.count - 1
        st.last = self.count
        info = st.info.lines.get(st.prev_line)
        if other_ran or info is None or info.mutates or (info.subscript and self.encoder.saw_defaultdict):
            changes = self._diff_all(st, frame)
        elif info.inplace and any(type(st.snap.get(n, (None,))[0]) not in FROZEN_TYPES for n in info.inplace):
            changes = self._diff_all(st, frame)
        elif info.stores:
            changes = self._diff_names(st, frame, info.stores)
        else:
            return
        if changes:
            self._attach(st, changes)

    def _attach(self, st: FrameState, changes: Optional[dict]) -> None:
        if not changes:
            return
        step = st.pending
        if step[_CHANGES] is None:
            step[_CHANGES] = changes
        else:
            step[_CHANGES].update(changes)
        line = step[_LINE]
        defined = st.defined
        for name in changes:
            defined[name] = line

    def _diff_all(self, st: FrameState, frame: FrameType) -> Optional[dict]:
        snap = st.snap
        encode = self.encoder.encode
        changes = None
        seen = 0
        is_module = st.is_module
        for name, obj in frame.f_locals.items():
            old = snap.get(name)
            if old is None:
                if name[0] == "." or (is_module and name[:2] == "__" and name[-2:] == "__"):
                    continue
            elif old[0] is obj and type(obj) in FROZEN_TYPES:
                seen += 1
                continue
            seen += 1
            value = encode(obj)
            snap[name] = (obj, value)
            if old is None or old[1] != value:
                if changes is None:
                    changes = {}
                changes[name] = value
        for name in st.info.globals_written:
            seen += 1
            changes = self._check_name(snap, name, frame.f_globals.get(name, _MISSING), changes)
        if len(snap) > seen:
            local_names = frame.f_locals
            for name in [n for n in snap if n not in local_names and n not in st.info.globals_written]:
                del snap[name]
                if changes is None:
                    changes = {}
                changes[name] = _DELETED
        return changes

    def _diff_names(self, st: FrameState, frame: FrameType, names: tuple) -> Optional[dict]:
        snap = st.snap
        local_names = frame.f_locals
        changes = None
        for name, is_global in names:
            obj = (frame.f_globals if is_global else local_names).get(name, _MISSING)
            changes = self._check_name(snap, name, obj, changes)
        return changes

    def _check_name(self, snap: dict, name: str, obj: Any, changes: Optional[dict]) -> Optional[dict]:
        old = snap.get(name)
        if obj is _MISSING:
            if old is not None:
                del snap[name]
                changes = changes if changes is not None else {}
                changes[name] = _DELETED
            return changes
        if old is not None and old[0] is obj and type(obj) in FROZEN_TYPES:
            return changes
        value = self.encoder.encode(obj)
        snap[name] = (obj, value)
        if old is None or old[1] != value:
            changes = changes if changes is not None else {}
            changes[name] = value
        return changes

    def _check_caps(self) -> None:
        if self.stopped is not None:
            return
        if len(self.raw) >= self.max_steps:
            self.stop("max_steps")
        elif self.encoder.nodes >= self.max_values:
            self.stop("max_values")

    def stop(self, reason: str, detail: str = "") -> None:
        if self.stopped is None:
            self.stopped = Stop(reason, len(self.raw), self.encoder.nodes, detail)  # type: ignore[arg-type]
            self.on_stop()

    def exception_info(self, exc: BaseException) -> ExceptionInfo:
        """Type and message of an exception without running user `__str__`."""
        cls = type(exc)
        name = type_name(cls)
        try:
            args = _BUILTIN_EXC_ARGS(exc)
        except Exception:
            return ExceptionInfo(name, "")
        if _TYPE_MODULE(cls) == "builtins" and all(
                type(a) in (str, int, float, bool, type(None)) for a in args):
            return ExceptionInfo(name, cls.__str__(exc))
        if len(args) == 1 and type(args[0]) is str:
            return ExceptionInfo(name, args[0])
        return ExceptionInfo(name, ", ".join(render(self.encoder.encode(a)) for a in args))

    # ------------------------------------------------------------ result

    def finish(self, **trace_fields: Any) -> Trace:
        """Build the Trace (the snapshot of frames still alive gives their locals)."""
        hits: dict[tuple[int, int], int] = {}
        steps = []
        for event, st, line, changes, payload in self.raw:
            key = (st.fid, line)
            hit = hits.get(key, 0)
            if event == "line":
                hit += 1
                hits[key] = hit
            code = st.code
            step = Step(event, code.co_qualname if hasattr(code, "co_qualname") else code.co_name,
                        code.co_filename, line, st.fid, st.depth, hit)
            if changes:
                deleted = [n for n, v in changes.items() if v is _DELETED]
                step.changes = {n: v for n, v in changes.items() if v is not _DELETED} if deleted else changes
                step.deleted = deleted
            if event == "exception":
                step.exception = payload
            elif payload is not None:
                if type(payload) is ExceptionInfo:
                    step.exception = payload
                else:
                    step.value = payload
            steps.append(step)
        frames = []
        for st in self.frames:
            code = st.code
            frames.append(Frame(
                st.fid, code.co_qualname if hasattr(code, "co_qualname") else code.co_name,
                code.co_filename, code.co_firstlineno, st.depth, st.parent, st.thread,
                {n: v for n, (_, v) in st.snap.items()}, dict(st.defined), st.returned,
                st.exception if st.finished and st.returned is None else None, st.finished))
        return Trace(steps=steps, frames=frames, stopped=self.stopped,
                     python="%d.%d.%d" % sys.version_info[:3], **trace_fields)
