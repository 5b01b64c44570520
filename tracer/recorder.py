"""The backend-independent recorder: turns frame events into steps.

Backends (`tracer.backends`) call `call`, `line`, `returned`, `yielded`,
`unwound` and `raised` with the user frame. At every event of a frame the
recorder works out what the frame's previous line changed and attaches it to
the frame's pending step (its latest one).

The hot path, with every rule of it, is `line` -> `_settle` -> `_diff_names` or
`_diff_all` -> `_check` (-> `_edit_flat`):
- `_settle` decides what to read: only the names the previous line can bind
  (`codeinfo`), unless other traced code ran since the frame's last step or the
  line may change a value in place (a call, a store into a container, an
  in-place operator on a mutable value, a subscript while a defaultdict is
  around, iteration over anything but a builtin container held by a name);
  then every variable of the frame.
- `_check` compares one name with what was seen last. It keeps no reference to
  the program's objects, so tracing does not change when they die (a
  generator's `finally`, `__del__`, `weakref.finalize`): exact atoms (int,
  float, str ...) are kept as themselves, anything else as its encoding, plus
  a weak reference to a function, class or module, and the atoms of a list or
  dict of atoms, so that an unchanged one is recognised, and a changed one
  edited, without re-encoding it. (On 3.11 and 3.12 the interpreter itself
  keeps a snapshot of a frame's locals, refreshed at each of its events, so an
  object a line unbinds lives until the frame's next event.)
- A change is stored in proportion to its size: a new binding whole, a
  container that changed as an `Edit` of its previous encoding (`tracer.edits`).

With `lines=False` (`record="final"`) no line events come: a return step holds
everything its frame changed since its call step (or resumption), and
exceptions are not steps (a frame that exits by one still says so).

Raw steps are flat lists while recording; `finish` builds the `Trace`.
Line events (and, under sys.monitoring, calls and returns) may instead go through
the compiled accelerator (`tracer.accel`), which follows these rules and hands
every value to encode back to `_check`.
"""

from __future__ import annotations

import gc
import threading
import types
import weakref
from collections import deque
from collections.abc import Callable
from itertools import compress, islice
from math import copysign
from operator import is_, is_not
from types import CodeType, FrameType
from typing import Any

import msgspec

from .accel import build_steps, line_hook
from .codeinfo import START_LINE, CodeInfo, analyse
from .edits import diff
from .encode import INT64, SMALL_INTS, Encoder, exception_info
from .env import PYTHON
from .schema import Edit, Event, ExceptionInfo, Frame, Splice, Step, Stop, StopReason, Trace, Value

_DELETED = Value("other", "<deleted>")  # marker inside raw changes, told by identity; becomes Step.deleted
_MISSING = object()
# Exact types whose values can neither change nor hold other objects: kept as the objects themselves.
ATOMS = frozenset({int, float, complex, bool, type(None), str, bytes, range})
# Atoms whose builtin == is exact and safe (no user code: the types are exact builtins).
_EQ_ATOMS = frozenset({int, str, bytes, bool, type(None), range})
# Unchanging objects recognised by a weak reference (kept strongly, a function would keep its closure alive).
_WEAK = frozenset({types.FunctionType, type, types.ModuleType})
# Builtin containers and their iterators: iterating over them runs no code.
_SAMPLES: tuple[Any, ...] = ([], (), "", "\xe9", b"", bytearray(), {}, {}.values(), {}.items(), set(), frozenset())
_REVERSIBLE: tuple[Any, ...] = ([], range(0), {}, {}.values(), {}.items(), deque())
SAFE_ITERABLES = frozenset(
    {list, tuple, str, bytes, bytearray, dict, set, frozenset, range, deque, type({}.keys()), type({}.values())}
    | {type({}.items()), type(iter(deque()))}
    | {type(iter(x)) for x in (*_SAMPLES, range(0), range(1 << 70))}
    | {type(reversed(x)) for x in _REVERSIBLE}
)
EVENTS: tuple[Event, ...] = ("line", "call", "return", "exception")  # by the numbers below
LINE, CALL, RETURN, EXCEPTION = range(4)

# A list or dict of atoms as last seen: its length, the atoms its encoding shows (the very objects:
# compared by identity), and its type.
Flat = tuple[int, list[Any], type]


def _held(obj: Any, cls: type, cap: int) -> list[Any]:
    """The elements (dict: keys and values) that an encoding of `obj` shows (builtin methods: no user code)."""
    if cls is list:
        return list.__getitem__(obj, slice(cap))
    return [x for pair in islice(dict.items(obj), cap) for x in pair]


def _same_atom(old: Any, new: Any) -> bool:
    """Equal values of one exact atom type (floats: nan equals nan, -0.0 differs from 0.0)."""
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
    return False


class FrameState:
    __slots__ = (
        "code",
        "defined",
        "depth",
        "exception",
        "fid",
        "finished",
        "flats",
        "info",
        "is_module",
        "last",
        "lines",
        "parent",
        "pending",
        "prev_line",
        "raised_at",
        "refs",
        "returned",
        "seen",
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
        self.seen: dict[str, Any] = {}  # name -> the atom it held at the last check, or the encoding of its value
        self.flats: dict[str, Flat] = {}  # name -> its list or dict of atoms as last seen
        self.refs: dict[str, weakref.ref[Any]] = {}  # name -> the function, class or module it held
        self.pending = -1  # index of the step that changes are attributed to
        self.prev_line = START_LINE
        self.last = -1  # index of this frame's latest step
        self.raised_at = -1  # instruction offset of the frame's latest exception event
        self.defined: dict[str, int] = {}  # every name shown, with the line of its latest change
        self.returned: Value | None = None
        self.exception: ExceptionInfo | None = None
        self.finished = False
        self.is_module = info.is_module


class Recorder:
    """Records steps in flat lists (event, frame, line) plus sparse dicts of
    changes and payloads by step index: no per-step objects while the code runs.
    Atoms are kept as objects and encoded once, in `finish`."""

    def __init__(
        self, encoder: Encoder, max_steps: int, max_values: int, on_stop: Callable[[], None], lines: bool = True
    ):
        self.encoder = encoder
        self.max_steps = max_steps
        self.max_values = max_values
        self.on_stop = on_stop
        self.lines = lines  # False: record="final" (no line events)
        self.events: list[int] = []
        self.fids: list[int] = []
        self.line_numbers: list[int] = []
        self.changes: dict[int, dict[str, Any]] = {}
        self.payloads: dict[int, Any] = {}
        self.states: dict[FrameType, FrameState] = {}
        self.frames: list[FrameState] = []
        self.infos: dict[CodeType, CodeInfo] = {}
        self.threads: dict[int, int] = {threading.get_ident(): 0}
        self.stopped: Stop | None = None
        self.any_deleted = False
        self.dropped = 0  # events skipped because the stack was at the recursion limit (Trace.dropped)
        self.whole = False  # store every change whole (after a lost event)
        # The compiled line events, `_settle` and `_diff_all` (tracer.accel), or None: pure Python.
        self.hot = line_hook(self)

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
        """A frame starts, or resumes (a generator or coroutine: what finishes the
        suspending expression, e.g. `x` of `x = yield`, is read at the next event)."""
        st = self.states.get(frame)
        resumed = st is not None
        if st is None:
            st = self._new_frame(frame)
        line = frame.f_lineno or st.code.co_firstlineno
        st.pending = self._append(st, CALL, line)
        st.prev_line = line if resumed else START_LINE
        st.raised_at = -1
        changes = self._diff_all(st, frame) if self.hot is None else self.hot.diff_all(st, frame)
        if not resumed:
            for name in st.info.scope:  # outer variables are seen, not shown: they are not arguments
                changes.pop(name, None)
        self._attach(st, changes)
        if len(self.events) >= self.max_steps or self.encoder.nodes >= self.max_values:
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
        st.raised_at = frame.f_lasti
        if not self.lines:
            st.exception = self.exception_info(exc)
            return
        self._settle(st, frame)
        st.exception = self.payloads[self._append(st, EXCEPTION, frame.f_lineno)] = self.exception_info(exc)
        self._check_caps()

    def unwinding(self, frame: FrameType) -> bool:
        """Is the frame leaving by the exception raised at the instruction it is at, with
        nothing run since (a throw() or close() into a suspended generator)? For a
        backend that cannot tell that from a yield (sys.settrace)."""
        st = self.states.get(frame)
        if st is None or st.raised_at != frame.f_lasti:
            return False
        return not self.lines or self.events[st.last] == EXCEPTION

    def failed(self, error: Exception) -> None:
        """An event's recording failed: at the recursion limit (the event is dropped), or by a bug of
        ours (recording stops). Either way the traced program must not see it."""
        if isinstance(error, RecursionError):  # (drop()'s body: at the limit, one call less)
            self.dropped += 1
            self.whole = True
        else:
            self.stop("tracer_error", f"{type(error).__name__}: {error}")

    def drop(self) -> None:
        """An event was lost at the recursion limit (Trace.dropped). What it changed may be
        lost with it, so from now on changes are stored whole: an edit could be relative to
        a value that replay never got."""
        self.dropped += 1
        self.whole = True

    # ------------------------------------------------------------ internals

    def _append(self, st: FrameState, event: int, line: int) -> int:
        index = len(self.events)
        self.events.append(event)
        self.fids.append(st.fid)
        self.line_numbers.append(line)
        st.last = index
        return index

    def _exit(self, frame: FrameType) -> FrameState | None:
        st = self.states.get(frame)
        if st is None:
            return None
        if self.lines:
            self._settle(st, frame)
            self._append(st, RETURN, frame.f_lineno)
        else:
            st.pending = self._append(st, RETURN, frame.f_lineno)
            self._attach(st, self._diff_all(st, frame) if self.hot is None else self.hot.diff_all(st, frame))
        if len(self.events) >= self.max_steps or self.encoder.nodes >= self.max_values:
            self._check_caps()
        return st

    def _finish_frame(self, frame: FrameType, st: FrameState) -> None:
        st.finished = True
        self.states.pop(frame, None)  # (gone already if recording stopped at this event)

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

        The rule of what to read (see the module docstring), all of it here:
        every variable when other traced code ran since the frame's last step
        or the line may change a value in place; else only the names the line
        can bind."""
        if self.hot is not None:
            self.hot.settle(st, frame)
            return
        info = st.lines.get(st.prev_line)
        full = (
            info is None
            or st.last != len(self.events) - 1
            or info.mutates
            or (info.subscript and self.encoder.saw_defaultdict)
        )
        local_names = None
        if not full and info is not None:
            if info.inplace:  # `x += ...` changes x in place unless x holds an atom
                seen = st.seen
                for name in info.inplace:
                    if type(seen.get(name)) not in ATOMS:
                        full = True
                        break
            if info.iterates and not full:  # iterating runs code unless over a builtin container
                local_names = frame.f_locals
                for name, is_global in info.iterates:
                    value = (frame.f_globals if is_global else local_names).get(name, _MISSING)
                    if type(value) not in SAFE_ITERABLES:
                        full = True
                        break
        if full:
            self._attach(st, self._diff_all(st, frame))
        elif info is not None and info.stores:
            if local_names is None:
                local_names = frame.f_locals
            self._attach(st, self._diff_names(st, frame, local_names, info.stores))

    def _attach(self, st: FrameState, changes: dict[str, Any]) -> None:
        if not changes:
            return
        index = st.pending
        existing = self.changes.get(index)
        if existing is None:
            self.changes[index] = changes
        line = self.line_numbers[index]
        defined = st.defined
        for name, value in changes.items():
            if type(value) is Edit and (
                name not in defined or (existing is not None and name in existing) or self.whole
            ):
                # Replay holds no value to edit (a name not shown yet, or events were lost), or this step
                # changed it already: store the whole value.
                value = changes[name] = st.seen[name]
            if existing is not None:
                existing[name] = value
            defined[name] = line

    def _diff_all(self, st: FrameState, frame: FrameType) -> dict[str, Any]:
        seen = st.seen
        changes: dict[str, Any] = {}
        count = 0
        is_module = st.is_module
        check = self._check
        for name, obj in frame.f_locals.items():
            if name not in seen and (name[0] == "." or (is_module and name[:2] == "__" and name[-2:] == "__")):
                continue
            count += 1
            check(st, name, obj, changes)
        globals_written = st.info.globals_written
        for name in globals_written:
            count += 1
            check(st, name, frame.f_globals.get(name, _MISSING), changes)
        if len(seen) > count:
            local_names = frame.f_locals
            for name in [n for n in seen if n not in local_names and n not in globals_written]:
                check(st, name, _MISSING, changes)
        return changes

    def _diff_names(
        self, st: FrameState, frame: FrameType, local_names: Any, names: tuple[tuple[str, bool], ...]
    ) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        for name, is_global in names:
            self._check(st, name, (frame.f_globals if is_global else local_names).get(name, _MISSING), changes)
        return changes

    def _check(self, st: FrameState, name: str, obj: Any, changes: dict[str, Any]) -> None:
        """Compare one name with what was seen last; record into `changes` what differs."""
        seen = st.seen
        old = seen.get(name, _MISSING)
        if old is obj:
            return  # the same atom (or still unbound)
        cls = type(obj)
        if cls in ATOMS:
            seen[name] = obj
            if type(old) is Value:
                self._forget(st, name)
            elif old is not _MISSING and _same_atom(old, obj):
                return
            self.encoder.nodes += 1
            changes[name] = obj  # encoded in finish(): it cannot change
            return
        if obj is _MISSING:
            del seen[name]
            if type(old) is Value:
                self._forget(st, name)
            changes[name] = _DELETED
            self.any_deleted = True
            return
        if type(old) is Value:
            ref = st.refs.get(name)
            if ref is not None and ref() is obj:
                return
            flat = st.flats.get(name)
            if flat is not None and flat[2] is cls and self._edit_flat(st, name, obj, old, flat, changes):
                return
        value = self.encoder.encode(obj)
        self._remember(st, name, obj, cls)
        if type(old) is not Value:
            seen[name] = changes[name] = value
        elif value != old:
            seen[name] = value
            edit = diff(old, value)
            changes[name] = value if edit is None else edit

    def _edit_flat(self, st: FrameState, name: str, obj: Any, old: Value, flat: Flat, changes: dict[str, Any]) -> bool:
        """A list or dict of atoms seen before: done if it is unchanged, or changed only by
        replaced atoms, appends or removals at the end (an edit made without re-encoding it);
        False when it must be encoded."""
        length, held, cls = flat
        cap = self.encoder.limits.max_items
        size = len(obj)
        now = _held(obj, cls, cap)
        if size == length and all(map(is_, now, held)):
            return True
        if size > cap or length > cap or old.items is None:
            return False
        encode = self.encoder.encode
        pairs = 2 if cls is dict else 1
        if size == length:
            put: dict[int, Value] = {}
            for i in compress(range(len(now)), map(is_not, now, held)):
                x = now[i]
                if type(x) not in ATOMS or (pairs == 2 and i % 2 == 0):
                    return False  # not an atom, or a dict key replaced
                if not _same_atom(held[i], x):
                    put[i // pairs] = encode(x)
            if put:
                items = list(old.items)
                for i, value in put.items():
                    items[i] = value
                st.seen[name] = msgspec.structs.replace(old, items=items)
                changes[name] = Edit(put=put)
        else:
            common = min(size, length) * pairs
            if not all(map(is_, now[:common], held[:common])) or not ATOMS.issuperset(map(type, now[common:])):
                return False
            tail = [encode(x) for x in now[common:]]
            keys, values = (tail[0::2], tail[1::2]) if pairs == 2 else (None, tail)
            start = common // pairs
            splice = Splice(start, length, values, keys)
            new = msgspec.structs.replace(old, items=old.items[:start] + values)
            if keys is not None and old.keys is not None:
                new.keys = old.keys[:start] + keys
            st.seen[name] = new
            changes[name] = Edit(splice=splice)
        st.flats[name] = (size, now, cls)
        return True

    def _remember(self, st: FrameState, name: str, obj: Any, cls: type) -> None:
        """What lets the next check of `name` recognise its value without re-encoding it."""
        if cls is list or cls is dict:
            held = _held(obj, cls, self.encoder.limits.max_items)
            if ATOMS.issuperset(map(type, held)):
                st.flats[name] = (len(obj), held, cls)
                st.refs.pop(name, None)
                return
        elif cls in _WEAK:
            st.refs[name] = weakref.ref(obj)
            st.flats.pop(name, None)
            return
        self._forget(st, name)

    @staticmethod
    def _forget(st: FrameState, name: str) -> None:
        if st.flats:
            st.flats.pop(name, None)
        if st.refs:
            st.refs.pop(name, None)

    def _check_caps(self) -> None:
        if self.stopped is not None:
            return
        if len(self.events) >= self.max_steps:
            self.stop("max_steps")
        elif self.encoder.nodes >= self.max_values:
            self.stop("max_values")

    def stop(self, reason: StopReason, detail: str = "") -> None:
        if self.stopped is None:
            self.stopped = Stop(reason, len(self.events), self.encoder.nodes, detail)
            self.on_stop()
            self.states.clear()  # no more events: keep no frame (and its locals) alive

    def exception_info(self, exc: BaseException) -> ExceptionInfo:
        return exception_info(exc, self.encoder)

    # ------------------------------------------------------------ result

    def finish(self, **trace_fields: Any) -> Trace:
        """Build the Trace: encode the atoms kept as objects, make the Structs.

        The cyclic garbage collector waits meanwhile: the program has ended, and the
        many containers made here would otherwise set off its passes over the heap."""
        self.states.clear()
        self.hot = None  # (it refers back to the recorder)
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._build(trace_fields)
        finally:
            if collecting:
                gc.enable()

    def _build(self, trace_fields: dict[str, Any]) -> Trace:
        steps = build_steps(self)
        if steps is None:
            steps = self._steps()
        frames = [self._frame(st) for st in self.frames]
        return Trace(
            steps=steps,
            frames=frames,
            stopped=self.stopped,
            python=PYTHON,
            dropped=self.dropped,
            record="lines" if self.lines else "final",
            **trace_fields,
        )

    def _steps(self) -> list[Step]:
        """The Steps of the raw records (pure Python; `tracer.accel.build_steps` does the same compiled)."""
        payloads, changes_at = self.payloads, self.changes
        encode = self.encoder.encode
        max_str = self.encoder.limits.max_str
        small_ints = SMALL_INTS
        steps = []
        for index, (event, fid, line) in enumerate(zip(self.events, self.fids, self.line_numbers)):
            raw = changes_at.get(index)
            if not raw:
                step = Step(fid, line) if event == LINE else Step(fid, line, EVENTS[event])
            else:  # the raw changes become Step.changes, edits and deletions set apart
                edits: dict[str, Edit] = {}
                for name, value in raw.items():
                    cls = type(value)
                    if cls is int and -INT64 <= value < INT64:  # inline: most changes are small atoms
                        raw[name] = small_ints.get(value) or Value("int", value)
                    elif cls is str and len(value) <= max_str:
                        raw[name] = Value("str", value)
                    elif cls is Edit:
                        edits[name] = value
                    elif cls is not Value:
                        raw[name] = encode(value)
                deleted = [n for n, v in raw.items() if v is _DELETED] if self.any_deleted else []
                if edits or deleted:
                    raw = {n: v for n, v in raw.items() if type(v) is Value and v is not _DELETED}
                step = Step(fid, line, EVENTS[event], raw, edits, deleted)
            if event > CALL:
                payload = payloads.get(index)
                if type(payload) is ExceptionInfo:
                    step.exception = payload
                elif payload is not None:
                    step.value = payload
            steps.append(step)
        return steps

    def _frame(self, st: FrameState) -> Frame:
        encode = self.encoder.encode
        seen = st.seen
        final = {}
        for name in st.defined:
            value = seen.get(name, _MISSING)
            if value is not _MISSING:
                final[name] = value if type(value) is Value else encode(value)
        scope = st.info.scope
        code = st.code
        return Frame(
            id=st.fid,
            function=code.co_qualname,
            file=code.co_filename,
            line=code.co_firstlineno,
            depth=st.depth,
            parent=st.parent,
            thread=st.thread,
            locals=final,
            defined_at=dict(st.defined),
            scope={name: scope[name] for name in st.defined if name in scope},
            value=st.returned,
            exception=st.exception if st.finished and st.returned is None else None,
            finished=st.finished,
        )
