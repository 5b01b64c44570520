"""The trace schema: msgspec Structs, the one format on the wire and on disk.

A `Trace` is what `tracer.trace` returns. It round-trips through JSON and
MessagePack without loss (`to_json`/`from_json`, `to_msgpack`/`from_msgpack`).
A `Value` is one encoded Python value (made by `tracer.encode`); its kind `t`
is one of `KINDS`, so data with any other kind fails to decode.

Step semantics: a `line` step is one execution of one source line; what it
changed is read when the frame's next event arrives, so a line that calls
functions shows its effect after they return. A `call` step starts or resumes
a frame (the arguments; on a resumption, what changed while it was suspended
and what the resuming expression bound, e.g. `x` in `x = yield`); a `return`
step ends or suspends one, with `value` on a normal return or yield and
`exception` set when the frame exits by an exception; an `exception` step is an
exception raised in, or propagating through, a frame. In a trace recorded with
`record="final"` there are only call and return steps, and a return step holds
everything its frame changed since its call step.

What a step changed is stored in proportion to the change: `changes` holds the
whole value of each name bound to a new value, `edits` an `Edit` of each name
whose value (a list, dict, object ...) changed inside, relative to its value
before the step, and `deleted` the names unbound. `Trace.replay()` applies them
and gives each step's variables before and after it as whole values
(`StepState`): read values from there, not from the raw fields.

JSON and MessagePack: a Trace, Frame, Value, Stop or ExceptionInfo is an object
(a map) keyed by its field names, fields at their defaults left out. Steps and
edits, of which a trace has many, use one- or two-letter keys (as Value does):
a Step is {"f": frame, "l": line, "ev": event (absent: "line"), "c": changes,
"e": edits, "d": deleted, "v": value, "x": exception}; an Edit is {"p": put,
"e": edit, "s": splice, "a": attrs, "ea": edit_attrs, "d": drop, "m": more},
whose item indices are JSON strings; a Splice is an array [start, stop, items,
keys]. For example, a bubble-sort swap of `a[3]` and `a[4]` on line 7 of
frame 1 is {"f":1,"l":7,"e":{"a":{"p":{"3":{"t":"int","v":2},"4":{"t":"int","v":9}}}}}.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, get_args

import msgspec

Event = Literal["line", "call", "return", "exception"]
Scope = Literal["global", "nonlocal"]  # of a name a frame shows that is not its own variable (Frame.scope)
Record = Literal["lines", "final"]  # what a trace records (Trace.record, tracer.trace's `record`)
StopReason = Literal["max_steps", "max_values", "tracer_error", "tampered", "recursion_limit"]  # see Stop
Kind = Literal[
    "none",
    "bool",
    "int",
    "float",
    "complex",
    "str",
    "bytes",
    "bytearray",
    "range",
    "list",
    "tuple",
    "set",
    "frozenset",
    "dict",
    "object",
    "exception",
    "function",
    "class",
    "module",
    "generator",
    "coroutine",
    "other",
    "ref",
    "deep",
    "ndarray",
    "call",
    "enum",
]
KINDS: tuple[Kind, ...] = get_args(Kind)
# The wire keys of Step's and Edit's fields (see the module docstring).
STEP_KEYS = {
    "frame": "f",
    "line": "l",
    "event": "ev",
    "changes": "c",
    "edits": "e",
    "deleted": "d",
    "value": "v",
    "exception": "x",
}
EDIT_KEYS = {"put": "p", "edit": "e", "splice": "s", "attrs": "a", "edit_attrs": "ea", "drop": "d", "more": "m"}
Payload = bool | int | float | str | None
# Type names that decode to the library type itself (see Value); other type names decode to the base kind.
LIBRARY_TYPES = frozenset({"deque", "Counter", "OrderedDict", "defaultdict", "memoryview", "matrix"})


class Value(msgspec.Struct, omit_defaults=True, repr_omit_defaults=True, gc=False):
    """One encoded value (`render` shows each kind's text; `to_python` decodes it).

    t      kind (`KINDS`): none bool int float complex str bytes bytearray range
           list tuple set frozenset dict object exception function class module
           generator coroutine other ref deep ndarray call enum
    v      payload of atoms (int as int, or hex text beyond 64 bits; float as
           float, or "nan"/"inf"/"-inf"/"-0.0"; bytes as hex); name of
           functions, classes, modules, generators; target id of a ref;
           dtype of an ndarray; constructor of a call; member name of an enum
    type   type name when it is not the plain builtin of the kind: a subclass,
           a user class, the kind cut by depth, or one of `LIBRARY_TYPES`
    items  elements (list, tuple, set, frozenset, dict values, complex parts,
           range start/stop/step, exception args, ndarray elements in C order,
           a call's positional arguments, an enum member's value)
    keys   dict keys, or a namedtuple's field names, parallel to items
    attrs  attributes of an object; a call's keyword arguments; an ndarray's
           shape; deque `maxlen`, defaultdict `default_factory`
    more   elements, characters or attributes left out by a cap
    id     set on a container that a `ref` elsewhere in the value points to

    The kinds added for library values, each made only for the exact type:

    ndarray  a numpy array: v the dtype (`int64`, `float32`, `bool`, `object`,
             or numpy's dtype string such as `<U3`), attrs {"shape": tuple of
             ints}, items the first elements in C order, more the rest; type
             "matrix" for `numpy.matrix`, else a subclass's name. Arrays of other
             dtypes (datetime64, structured ...) keep dtype and shape only.
    call     a value written as the call that builds it: v the constructor
             (`Decimal`, `Fraction`, `datetime.date`, `datetime.datetime`,
             `datetime.time`, `datetime.timedelta`, `datetime.timezone`, a
             numpy scalar type such as `np.int64`, or `np.dtype`), items and
             attrs its positional and keyword arguments.
    enum     an Enum member: type its class, v its name (None for a Flag value
             without one), items [its value].

    Library containers keep their builtin kind and name their type: `deque`
    (list, attrs maxlen), `Counter`, `OrderedDict`, `defaultdict` (dict, attrs
    default_factory), `memoryview` (bytes, by content), namedtuples (tuple, keys
    = field names). A user class whose name is one of `LIBRARY_TYPES` is named
    `module.Name` instead, so those names always mean the library type.
    """

    t: Kind
    v: Payload = None
    type: str | None = None
    items: list[Value] | None = None
    keys: list[Value] | None = None
    attrs: dict[str, Value] | None = None
    more: int = 0
    id: int = 0


class ExceptionInfo(msgspec.Struct, frozen=True, gc=False):
    """An exception's qualified type name and message (made without user `__str__`)."""

    type: str
    message: str


class Splice(msgspec.Struct, array_like=True, gc=False):
    """`items[start:stop]` of a container replaced by `items` (and, for a dict,
    `keys[start:stop]` by `keys`): an insertion, a removal, an append.
    On the wire: [start, stop, items, keys or null]."""

    start: int
    stop: int
    items: list[Value]
    keys: list[Value] | None = None


class Edit(msgspec.Struct, omit_defaults=True, gc=False, rename=EDIT_KEYS):
    """How a container's encoding changed, relative to its previous one (see `Edit.apply`).

    put         items replaced whole, by index (for a dict, the values at those positions)
    edit        items changed inside, by index: an Edit of each
    splice      then a run of items replaced, inserted or removed
    attrs       attributes set whole (one that is new goes after the others)
    edit_attrs  attributes changed inside: an Edit of each
    drop        attributes removed
    more        the container's new `more` (elements left out by the cap), when it changed
    """

    put: dict[int, Value] = {}
    edit: dict[int, Edit] = {}
    splice: Splice | None = None
    attrs: dict[str, Value] = {}
    edit_attrs: dict[str, Edit] = {}
    drop: list[str] = []
    more: int | None = None

    def apply(self, value: Value) -> Value:
        """The new value: `value` with this edit applied, in the order of the fields.

        Nothing is modified in place: the containers on the edited paths are
        copied, the unchanged parts are shared with `value`. Raises ValueError
        when the edit does not fit the value (a malformed trace)."""
        new = msgspec.structs.replace(value)
        if self.put or self.edit or self.splice is not None:
            if value.items is None:
                raise ValueError(f"an edit of items applied to a {value.t} value without items")
            items = list(value.items)
            for index, item in self.put.items():
                _check_index(index, items)
                items[index] = item
            for index, edit in self.edit.items():
                _check_index(index, items)
                items[index] = edit.apply(items[index])
            splice = self.splice
            if splice is not None:
                if not 0 <= splice.start <= splice.stop <= len(items):
                    raise ValueError(f"splice [{splice.start}:{splice.stop}] out of range of {len(items)} items")
                items[splice.start : splice.stop] = splice.items
                if (value.keys is None) != (splice.keys is None):
                    raise ValueError("a splice of a dict needs keys, and only a dict's does")
                if value.keys is not None and splice.keys is not None:
                    keys = list(value.keys)
                    keys[splice.start : splice.stop] = splice.keys
                    if len(keys) != len(items):
                        raise ValueError("a splice left a dict with keys and values of different lengths")
                    new.keys = keys
            new.items = items
        if self.attrs or self.edit_attrs or self.drop:
            if value.attrs is None:
                raise ValueError(f"an edit of attributes applied to a {value.t} value without attributes")
            attrs = dict(value.attrs)
            attrs.update(self.attrs)
            for name, edit in self.edit_attrs.items():
                if name not in attrs:
                    raise ValueError(f"an edit of attribute {name!r}, which the value does not have")
                attrs[name] = edit.apply(attrs[name])
            for name in self.drop:
                attrs.pop(name, None)
            new.attrs = attrs
        if self.more is not None:
            new.more = self.more
        return new


def _check_index(index: int, items: list[Value]) -> None:
    if not 0 <= index < len(items):
        raise ValueError(f"an edit of item {index} of a value with {len(items)} items")


class Step(msgspec.Struct, omit_defaults=True, gc=False, rename=STEP_KEYS):
    """One event of one frame (see the module docstring); its function, file and depth are its Frame's."""

    frame: int  # index into Trace.frames
    line: int
    event: Event = "line"
    changes: dict[str, Value] = {}  # names bound to a new value: the whole value (read through Trace.replay)
    edits: dict[str, Edit] = {}  # names whose value changed inside: how, relative to its value before the step
    deleted: list[str] = []  # names unbound
    value: Value | None = None  # return and yield steps
    exception: ExceptionInfo | None = None  # exception steps; return steps that exit by exception


class Frame(msgspec.Struct, omit_defaults=True, gc=False):
    """One activation of a traced code object (a generator keeps one Frame across resumptions)."""

    id: int
    function: str  # qualified name of the code object
    file: str
    line: int  # first line of the code object
    depth: int  # traced frames above this one (0 = top level of the run)
    parent: int = -1  # nearest traced caller's frame id
    thread: int = 0  # 0 = the thread that called trace(), then 1, 2 ... in order of first event
    locals: dict[str, Value] = {}  # final value of each variable shown (as of the frame's last event)
    defined_at: dict[str, int] = {}  # line where each was last assigned (the call's line for arguments)
    # Names shown (in `locals` and the steps' changes) that are not the frame's own variables:
    # "global" (declared `global` and written here) or "nonlocal" (a variable of an enclosing
    # function, declared `nonlocal` or read by a closure). Such a name is not an argument: it
    # first shows on the step that changes it.
    scope: dict[str, Scope] = {}
    value: Value | None = None  # returned value
    exception: ExceptionInfo | None = None  # when the frame exited by an exception
    finished: bool = False  # False: still suspended or running when the trace ended


class Stop(msgspec.Struct, frozen=True):
    """Why recording ended before the program did.

    max_steps, max_values  a cap of `TraceLimits` was reached
    tracer_error           a bug of the tracer (the program ran on untraced)
    tampered               the traced code disabled or replaced the tracer (see Trace.tampered)
    recursion_limit        Python removed the sys.settrace function when the code reached the
                           recursion limit (settrace backend): later events were not recorded
    """

    reason: StopReason
    steps: int  # steps recorded when it stopped
    values: int  # encoded value nodes at that point
    detail: str = ""


class StepState(msgspec.Struct, frozen=True):
    """One step with its frame's variables around it (see `Trace.replay`); the dicts are read-only."""

    index: int  # index into Trace.steps
    step: Step
    frame: Frame  # the step's frame (Trace.frames[step.frame]): its function, file, depth ...
    hit: int  # the k-th time this line ran in this frame (line events so far)
    before: dict[str, Value]  # the step's frame's variables just before the step
    after: dict[str, Value]  # just after it: before + the step's changes and edits - its deletions
    changed: dict[str, Value]  # full new values of the names the step changed (= after[name])


class Trace(msgspec.Struct, omit_defaults=True):
    steps: list[Step]
    frames: list[Frame]
    backend: str  # "monitoring", "settrace", or "none" (the code ran without recording)
    python: str  # "3.12.1"
    record: Record = "lines"  # what was recorded: every line, or calls and returns only (see tracer.trace)
    returned: Value | None = None  # value of the call expression, when one was given
    call_step: int = -1  # index of the first step made by the call expression
    exception: ExceptionInfo | None = None  # the run's uncaught exception (SystemExit: see tracer.run)
    exit_code: int = 0  # as the process would exit: SystemExit's code, 1 on an uncaught exception
    stdout: str = ""
    stderr: str = ""
    stdout_more: int = 0  # bytes left out of stdout by the output cap (TraceLimits.max_output)
    stderr_more: int = 0
    # (step, n) for each step that wrote to stdout: stdout[:n] was written by the end of that step
    # (step len(steps): after recording stopped)
    stdout_at: list[tuple[int, int]] = []
    stopped: Stop | None = None
    dropped: int = 0  # events left out because the traced code was at the recursion limit
    tampered: list[str] = []  # signs that the traced code interfered with the tracer

    def to_json(self) -> bytes:
        return _JSON_ENCODER.encode(self)

    def to_msgpack(self) -> bytes:
        return _MSGPACK_ENCODER.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> Trace:
        return _JSON_DECODER.decode(data)

    @classmethod
    def from_msgpack(cls, data: bytes) -> Trace:
        return _MSGPACK_DECODER.decode(data)

    def replay(self) -> Iterator[StepState]:
        """Each step in order with its frame's variables just before and just after it.

        States are kept per frame, over the frame's own steps in order: a
        caller's line step comes before its callee's steps, but its changes
        belong to the caller's frame and show in the caller's next step. A
        frame's first step starts from no variables (a call step brings the
        arguments); a generator keeps its variables across resumptions; the
        `after` of a frame's last step equals `Frame.locals`. Values are whole:
        a step's `edits` are applied to the values before it (`Edit.apply`),
        so a list changed in place shows its whole new value in `after` and
        `changed`. Raises ValueError on a malformed trace (an edit of a name
        its frame does not hold, a step of a frame that does not exist).

            for s in t.replay():
                print(s.frame.function, s.step.line, s.hit, {k: render(v) for k, v in s.changed.items()})
        """
        none: dict[str, Value] = {}
        current: dict[int, dict[str, Value]] = {}
        hits: dict[tuple[int, int], int] = {}
        frames = self.frames
        for index, step in enumerate(self.steps):
            fid = step.frame
            if not 0 <= fid < len(frames):
                raise ValueError(f"step {index} is of frame {fid}, and the trace has {len(frames)} frames")
            key = (fid, step.line)
            hit = hits[key] = hits.get(key, 0) + 1 if step.event == "line" else hits.get(key, 0)
            before = current.get(fid, none)
            if not step.changes and not step.edits and not step.deleted:
                yield StepState(index, step, frames[fid], hit, before, before, none)
                continue
            changed = step.changes
            if step.edits:
                changed = dict(changed)
                for name, edit in step.edits.items():
                    if name not in before:
                        raise ValueError(f"step {index} edits {name!r}, which its frame does not hold")
                    changed[name] = edit.apply(before[name])
            after = {**before, **changed}
            for name in step.deleted:
                after.pop(name, None)
            current[fid] = after
            yield StepState(index, step, frames[fid], hit, before, after, changed)


_JSON_ENCODER = msgspec.json.Encoder()
_MSGPACK_ENCODER = msgspec.msgpack.Encoder()
_JSON_DECODER = msgspec.json.Decoder(Trace)
_MSGPACK_DECODER = msgspec.msgpack.Decoder(Trace)
