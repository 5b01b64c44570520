"""The trace schema: msgspec Structs, the one format on the wire and on disk.

A `Trace` is what `tracer.trace` returns. It round-trips through JSON and
MessagePack without loss (`to_json`/`from_json`, `to_msgpack`/`from_msgpack`).

Step semantics: a `line` step is one execution of one source line; its
`changes` are the variables that line changed (read when the frame's next event
arrives, so a line that calls functions shows its effect after they return).
A `call` step starts or resumes a frame (arguments in `changes`); a `return`
step ends or suspends one, with `value` on a normal return or yield and
`exception` set when the frame exits by an exception; an `exception` step is an
exception raised in, or propagating through, a frame.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from .values import Value

Event = Literal["line", "call", "return", "exception"]


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
    changes: dict[str, Value] = {}
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


class Trace(msgspec.Struct, omit_defaults=True):
    steps: list[Step]
    frames: list[Frame]
    backend: str
    python: str  # "3.12.1"
    returned: Value | None = None  # value of the call expression, when one was given
    call_step: int = -1  # index of the first step made by the call expression
    exception: ExceptionInfo | None = None  # the run's uncaught exception
    exit_code: int = 0  # as the process would exit: SystemExit's code, 1 on an uncaught exception
    stdout: str = ""
    stderr: str = ""
    stdout_more: int = 0  # characters left out of stdout by the output cap
    stderr_more: int = 0
    stopped: Stop | None = None
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

    def frame_steps(self, frame: int) -> list[Step]:
        return [s for s in self.steps if s.frame == frame]


_JSON_ENCODER = msgspec.json.Encoder()
_MSGPACK_ENCODER = msgspec.msgpack.Encoder()
_JSON_DECODER = msgspec.json.Decoder(Trace)
_MSGPACK_DECODER = msgspec.msgpack.Decoder(Trace)
