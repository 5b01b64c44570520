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

import threading
from collections.abc import Callable
from itertools import islice
from math import copysign
from types import CodeType, FrameType
from typing import Any

from .codeinfo import START_LINE, CodeInfo, analyse
from .encode import FROZEN_TYPES, INT64, SMALL_INTS, Encoder, exception_info
from .env import PYTHON
from .schema import Event, ExceptionInfo, Frame, Step, Stop, Trace, Value

_DELETED = Value("other", "<deleted>")  # marker inside raw changes, told by identity; becomes Step.deleted
_MISSING = object()
# Atoms whose builtin == is exact and safe (no user code: the types are exact builtins).
_EQ_ATOMS = frozenset({int, str, bytes, bool, type(None), range})
_EVENTS: tuple[Event, ...] = ("line", "call", "return", "exception")
LINE, CALL, RETURN, EXCEPTION = range(4)


Fingerprint = tuple[int, tuple[int, ...]]  # length and element ids of a list or dict


def _held(obj: Any, cls: type, cap: int) -> list[Any]:
    """The elements (dict: keys and values) that an encoding of `obj` shows."""
    if cls is list:
        return list.__getitem__(obj, slice(cap))
    return [x for pair in islice(dict.items(obj), cap) for x in pair]


def _fingerprint(obj: Any, cls: type, cap: int) -> Fingerprint:
    """Length and element identities of a list or dict (builtin methods only: no user code)."""
    return (list.__len__ if cls is list else dict.__len__)(obj), tuple(map(id, _held(obj, cls, cap)))


def _same_atom(old: Any, new: Any) -> bool:
    """Equal values of one exact frozen type (floats: nan equals nan, -0.0 differs from 0.0)."""
    t = type(new)
    if type(old) is not t:
        return False
    if t in _EQ_ATOMS:
        equal: bool = old == new
        return equal
    if t is float:
        return (old == new and copysign(1.0, old) == copysign(1.0, new)) or (old != old and new != new)
    if t is complex:
        return _same_atom(old.real, new.real) and _same_atom(old.imag, new.imag)
    return False  # functions, classes, modules: identity only


class FrameState:
    __slots__ = (
        "code",
        "defined",
        "depth",
        "encs",
        "exception",
        "fid",
        "finished",
        "info",
        "is_module",
        "last",
        "lines",
        "parent",
        "pending",
        "prev_line",
        "prints",
        "returned",
        "snap",
        "thread",
    )

    def __init__(self, fid: int, code: CodeType, info: CodeInfo, depth: int, parent: int, thread: int):
        self.fid = fid
        self.code = code
        self.info = info
        self.lines = info.lines
        self.depth = depth
        self.parent = parent
        self.thread = thread
        self.snap: dict[str, Any] = {}  # name -> the object it held at the last check
        self.encs: dict[str, Value] = {}  # name -> encoding, for objects that can change in place
        self.prints: dict[str, tuple[Fingerprint, list[Any]]] = {}  # name -> fingerprint of a flat list/dict of atoms
        self.pending = -1  # index of the step that changes are attributed to
        self.prev_line = START_LINE
        self.last = -1  # index of this frame's latest step
        self.defined: dict[str, int] = {}
        self.returned: Value | None = None
        self.exception: ExceptionInfo | None = None
        self.finished = False
        self.is_module = info.is_module


class Recorder:
    """Records steps in flat lists (event, frame, line) plus sparse dicts of
    changes and payloads by step index: no per-step objects while the code runs.
    Immutable atoms are kept as objects and encoded once, in `finish`."""

    def __init__(self, encoder: Encoder, max_steps: int, max_values: int, on_stop: Callable[[], None]):
        self.encoder = encoder
        self.max_steps = max_steps
        self.max_values = max_values
        self.on_stop = on_stop
        self.events: list[int] = []
        self.fids: list[int] = []
        self.lines: list[int] = []
        self.changes: dict[int, dict[str, Any]] = {}
        self.payloads: dict[int, Any] = {}
        self.states: dict[FrameType, FrameState] = {}
        self.frames: list[FrameState] = []
        self.infos: dict[CodeType, CodeInfo] = {}
        self.threads: dict[int, int] = {threading.get_ident(): 0}
        self.stopped: Stop | None = None
        self.any_deleted = False
        self.dropped = 0  # events skipped because the stack was at the recursion limit (Trace.dropped)

    @property
    def step_count(self) -> int:
        return len(self.events)

    # ------------------------------------------------------------ events

    def line(self, frame: FrameType, line: int) -> None:
        st = self.states.get(frame)
        if st is None:
            st = self._new_frame(frame)
        self._settle(st, frame)
        st.pending = self._append(st, LINE, line)
        st.prev_line = line
        if len(self.events) >= self.max_steps or self.encoder.nodes >= self.max_values:
            self._check_caps()

    def call(self, frame: FrameType) -> None:
        st = self.states.get(frame)
        if st is None:
            st = self._new_frame(frame)
        index = self._append(st, CALL, frame.f_lineno or st.code.co_firstlineno)
        st.pending = index
        st.prev_line = START_LINE
        self._attach(st, self._diff_all(st, frame))
        self._check_caps()

    def returned(self, frame: FrameType, value: Any) -> None:
        st = self._exit(frame)
        if st is not None:
            st.returned = self.payloads[len(self.events) - 1] = self.encoder.encode(value)
            self._finish_frame(frame, st)

    def yielded(self, frame: FrameType, value: Any) -> None:
        if self._exit(frame) is not None:
            self.payloads[len(self.events) - 1] = self.encoder.encode(value)

    def unwound(self, frame: FrameType, exc: BaseException | None) -> None:
        st = self._exit(frame)
        if st is not None:
            if exc is not None:
                st.exception = self.exception_info(exc)
            self.payloads[len(self.events) - 1] = st.exception
            self._finish_frame(frame, st)

    def raised(self, frame: FrameType, exc: BaseException) -> None:
        st = self.states.get(frame)
        if st is None:
            st = self._new_frame(frame)
        self._settle(st, frame)
        st.exception = self.payloads[self._append(st, EXCEPTION, frame.f_lineno)] = self.exception_info(exc)
        self._check_caps()

    # ------------------------------------------------------------ internals

    def _append(self, st: FrameState, event: int, line: int) -> int:
        index = len(self.events)
        self.events.append(event)
        self.fids.append(st.fid)
        self.lines.append(line)
        st.last = index
        return index

    def _exit(self, frame: FrameType) -> FrameState | None:
        st = self.states.get(frame)
        if st is None:
            return None
        self._settle(st, frame)
        self._append(st, RETURN, frame.f_lineno)
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
        """Attach what the frame's previous line changed to the frame's pending step.

        Every local is re-checked when other traced code ran since the frame's
        last step or the line may change a value in place; otherwise only the
        names the line can bind are read (see `codeinfo`)."""
        info = st.lines.get(st.prev_line)
        full = (
            st.last != len(self.events) - 1
            or info is None
            or info.mutates
            or (info.subscript and self.encoder.saw_defaultdict)
        )
        if not full and info is not None and info.inplace:
            snap = st.snap
            for name in info.inplace:  # `x += ...` changes x in place unless x holds an immutable value
                if type(snap.get(name)) not in FROZEN_TYPES:
                    full = True
                    break
        if full:
            self._attach(st, self._diff_all(st, frame))
        elif info is not None and info.stores:
            self._attach(st, self._diff_names(st, frame, info.stores))

    def _attach(self, st: FrameState, changes: dict[str, Any]) -> None:
        if not changes:
            return
        index = st.pending
        existing = self.changes.get(index)
        if existing is None:
            self.changes[index] = changes
        else:
            existing.update(changes)
        line = self.lines[index]
        defined = st.defined
        for name in changes:
            defined[name] = line

    def _diff_all(self, st: FrameState, frame: FrameType) -> dict[str, Any]:
        snap = st.snap
        changes: dict[str, Any] = {}
        seen = 0
        is_module = st.is_module
        check = self._check
        for name, obj in frame.f_locals.items():
            if name not in snap and (name[0] == "." or (is_module and name[:2] == "__" and name[-2:] == "__")):
                continue
            seen += 1
            check(st, name, obj, changes)
        globals_written = st.info.globals_written
        for name in globals_written:
            seen += 1
            check(st, name, frame.f_globals.get(name, _MISSING), changes)
        if len(snap) > seen:
            local_names = frame.f_locals
            for name in [n for n in snap if n not in local_names and n not in globals_written]:
                check(st, name, _MISSING, changes)
        return changes

    def _diff_names(self, st: FrameState, frame: FrameType, names: tuple[tuple[str, bool], ...]) -> dict[str, Any]:
        local_names = frame.f_locals
        changes: dict[str, Any] = {}
        for name, is_global in names:
            self._check(st, name, (frame.f_globals if is_global else local_names).get(name, _MISSING), changes)
        return changes

    def _check(self, st: FrameState, name: str, obj: Any, changes: dict[str, Any]) -> None:
        """Compare one name with the snapshot; record into `changes` what differs."""
        snap = st.snap
        old = snap.get(name, _MISSING)
        cls = type(obj)
        if old is obj:
            if cls in FROZEN_TYPES or obj is _MISSING:
                return
            printed = st.prints.get(name)
            if printed is not None and printed[0] == _fingerprint(obj, cls, self.encoder.limits.max_items):
                return  # the same atoms in the same places: unchanged, without re-encoding
            value = self.encoder.encode(obj)
            if value != st.encs.get(name):
                st.encs[name] = changes[name] = value
            self._remember_print(st, name, obj, cls)
            return
        if obj is _MISSING:
            del snap[name]
            st.encs.pop(name, None)
            changes[name] = _DELETED
            self.any_deleted = True
            return
        snap[name] = obj
        if cls in FROZEN_TYPES:
            if st.encs:
                st.encs.pop(name, None)
            if old is _MISSING or not _same_atom(old, obj):
                self.encoder.nodes += 1
                changes[name] = obj  # encoded in finish(): it cannot change
            return
        value = self.encoder.encode(obj)
        if value != st.encs.get(name):
            st.encs[name] = changes[name] = value
        self._remember_print(st, name, obj, cls)

    def _remember_print(self, st: FrameState, name: str, obj: Any, cls: type) -> None:
        cap = self.encoder.limits.max_items
        if cls is list or cls is dict:
            held = _held(obj, cls, cap)
            if all(type(x) in FROZEN_TYPES for x in held):
                st.prints[name] = (_fingerprint(obj, cls, cap), held)  # `held` keeps the ids valid
                return
        st.prints.pop(name, None)

    def _check_caps(self) -> None:
        if self.stopped is not None:
            return
        if len(self.events) >= self.max_steps:
            self.stop("max_steps")
        elif self.encoder.nodes >= self.max_values:
            self.stop("max_values")

    def stop(self, reason: str, detail: str = "") -> None:
        if self.stopped is None:
            self.stopped = Stop(reason, len(self.events), self.encoder.nodes, detail)  # type: ignore[arg-type]
            self.on_stop()

    def exception_info(self, exc: BaseException) -> ExceptionInfo:
        return exception_info(exc, self.encoder)

    # ------------------------------------------------------------ result

    def finish(self, **trace_fields: Any) -> Trace:
        """Build the Trace: encode the atoms kept as objects, count hits, make the Structs."""
        encode = self.encoder.encode
        hits: dict[int, int] = {}
        where = [(st.code.co_qualname, st.code.co_filename, st.depth) for st in self.frames]
        changes_at, payloads, any_deleted = self.changes, self.payloads, self.any_deleted
        steps = []
        max_str = self.encoder.limits.max_str
        small_ints = SMALL_INTS
        for index, (event, fid, line) in enumerate(zip(self.events, self.fids, self.lines)):
            key = fid << 24 | line
            if event == LINE:
                hit = hits[key] = hits.get(key, 0) + 1
            else:
                hit = hits.get(key, 0)
            function, filename, depth = where[fid]
            step = Step(_EVENTS[event], function, filename, line, fid, depth, hit)
            changes = changes_at.get(index)
            if changes:
                for name, value in changes.items():  # atoms were kept as the objects themselves
                    cls = type(value)
                    if cls is int and -INT64 <= value < INT64:  # inline: most changes are small atoms
                        changes[name] = small_ints.get(value) or Value("int", value)
                    elif cls is str and len(value) <= max_str:
                        changes[name] = Value("str", value)
                    elif cls is not Value:
                        changes[name] = encode(value)
                if any_deleted and any(v is _DELETED for v in changes.values()):
                    step.deleted = [n for n, v in changes.items() if v is _DELETED]
                    changes = {n: v for n, v in changes.items() if v is not _DELETED}
                step.changes = changes
            if event > CALL:
                payload = payloads.get(index)
                if type(payload) is ExceptionInfo:
                    step.exception = payload
                elif payload is not None:
                    step.value = payload
            steps.append(step)
        frame_list = []
        for st in self.frames:
            code = st.code
            final = {n: st.encs.get(n) or encode(obj) for n, obj in st.snap.items()}
            frame_list.append(
                Frame(
                    st.fid,
                    code.co_qualname,
                    code.co_filename,
                    code.co_firstlineno,
                    st.depth,
                    st.parent,
                    st.thread,
                    final,
                    dict(st.defined),
                    st.returned,
                    st.exception if st.finished and st.returned is None else None,
                    st.finished,
                )
            )
        return Trace(
            steps=steps,
            frames=frame_list,
            stopped=self.stopped,
            python=PYTHON,
            dropped=self.dropped,
            **trace_fields,
        )
