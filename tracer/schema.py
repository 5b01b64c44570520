"""The trace schema: msgspec Structs, the one format on the wire and on disk.

A `Trace` is what `tracer.trace` returns. It round-trips through JSON and
MessagePack without loss (`to_json`/`from_json`, `to_msgpack`/`from_msgpack`).
A `Value` is one encoded Python value (made by `tracer.encode`); its kind `t`
is one of `KINDS`, so data with any other kind fails to decode.

Step semantics: a `line` step is one execution of one source line; its
`changes` are the variables that line changed (read when the frame's next event
arrives, so a line that calls functions shows its effect after they return).
A `call` step starts or resumes a frame (arguments in `changes`); a `return`
step ends or suspends one, with `value` on a normal return or yield and
`exception` set when the frame exits by an exception; an `exception` step is an
exception raised in, or propagating through, a frame.

`Trace.replay()` turns those changes into each step's variables before and
after it (`StepState`). Read values from it, not from `Step.changes`: what a
step stores there is the recorder's business (whole values today).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, get_args

import msgspec

Event = Literal["line", "call", "return", "exception"]
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


class Step(msgspec.Struct, omit_defaults=True, gc=False):
    event: Event
    function: str  # qualified name of the code object
    file: str
    line: int
    frame: int  # index into Trace.frames
    depth: int  # traced frames above this one (0 = top level of the run)
    hit: int  # the k-th time this line ran in this frame (line events so far)
    changes: dict[str, Value] = {}  # what the step changed (read values through Trace.replay)
    deleted: list[str] = []
    value: Value | None = None  # return and yield steps
    exception: ExceptionInfo | None = None  # exception steps; return steps that exit by exception


class Frame(msgspec.Struct, omit_defaults=True, gc=False):
    """One activation of a traced code object (a generator keeps one Frame across resumptions)."""

    id: int
    function: str
    file: str
    line: int  # first line of the code object
    depth: int
    parent: int = -1  # nearest traced caller's frame id
    thread: int = 0  # 0 = the thread that called trace(), then 1, 2 ... in order of first event
    locals: dict[str, Value] = {}  # final value of each local (as of the frame's last event)
    defined_at: dict[str, int] = {}  # line where each local was last assigned (the call's line for arguments)
    value: Value | None = None  # returned value
    exception: ExceptionInfo | None = None  # when the frame exited by an exception
    finished: bool = False  # False: still suspended or running when the trace ended


class Stop(msgspec.Struct, frozen=True):
    """Why recording ended before the program did."""

    reason: Literal["max_steps", "max_values", "tracer_error", "tampered"]
    steps: int  # steps recorded when it stopped
    values: int  # encoded value nodes at that point
    detail: str = ""


class StepState(msgspec.Struct, frozen=True):
    """One step with its frame's variables around it (see `Trace.replay`); the dicts are read-only."""

    index: int  # index into Trace.steps
    step: Step
    before: dict[str, Value]  # the step's frame's variables just before the step
    after: dict[str, Value]  # just after it: before + the step's changes - its deletions
    changed: dict[str, Value]  # full new values of the names the step changed (= after[name])


class Trace(msgspec.Struct, omit_defaults=True):
    steps: list[Step]
    frames: list[Frame]
    backend: str  # "monitoring", "settrace", or "none" (the code ran without recording)
    python: str  # "3.12.1"
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
        `after` of a frame's last step equals `Frame.locals`.
        """
        none: dict[str, Value] = {}
        current: dict[int, dict[str, Value]] = {}
        for index, step in enumerate(self.steps):
            before = current.get(step.frame, none)
            if not step.changes and not step.deleted:
                yield StepState(index, step, before, before, none)
                continue
            # Step.changes holds whole values; if it comes to hold edits of values changed
            # in place, they are applied to `before` here, and consumers see no difference.
            changed = step.changes
            after = {**before, **changed}
            for name in step.deleted:
                after.pop(name, None)
            current[step.frame] = after
            yield StepState(index, step, before, after, changed)


_JSON_ENCODER = msgspec.json.Encoder()
_MSGPACK_ENCODER = msgspec.msgpack.Encoder()
_JSON_DECODER = msgspec.json.Decoder(Trace)
_MSGPACK_DECODER = msgspec.msgpack.Decoder(Trace)
