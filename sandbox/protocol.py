"""Messages between the judge, the zygote and a task child: msgspec Structs, framed.

Every frame is a 4-byte big-endian length and a MessagePack body, read with a
size cap. Values cross the boundary only as `tracer.Value` trees (typed: a
tuple stays a tuple, True is not 1, an int subclass is marked as such) and are
turned back into builtin objects in the judge by `tracer.to_python`; nothing
from the child is ever compared as an object it made.
"""

from __future__ import annotations

import os
import struct
from typing import Literal

import msgspec

from tracer import ExceptionInfo, Value

Status = Literal[
    "ok", "passed", "failed", "error", "timeout", "memory_exceeded", "output_exceeded", "killed", "infra_error"
]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Resource limits of one task. Times in seconds, sizes in bytes."""

    wall_time: float = 10.0  # judge's clock, then SIGKILL of the whole task
    cpu_time: float = 10.0  # RLIMIT_CPU
    memory: int = 512 << 20  # RLIMIT_AS budget above the child's size at start
    output: int = 1 << 20  # stdout and stderr, each
    file_size: int = 16 << 20  # RLIMIT_FSIZE
    open_files: int = 64  # RLIMIT_NOFILE
    processes: int = 16  # RLIMIT_NPROC for the task's own uid (root only)
    result: int = 64 << 20  # largest result frame accepted


class JobSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What the child runs. Sent by the judge straight to the child (never through the zygote)."""

    mode: Literal["call", "asserts", "stdio", "script"]
    code: str
    nonce: bytes  # echoed in every frame; frames without it are forged
    call: str | None = None  # call mode: expression to evaluate after the code, e.g. "f([1, 2])"
    trace: bool = False  # record a trace (call and script modes)
    stdin: str = ""
    filename: str = "<solution>"
    argv: list[str] = []
    trace_limits: dict[str, int] = {}
    names: list[str] = []  # asserts mode: names the tests take from the solution


class CallRequest(msgspec.Struct, frozen=True, tag="call"):
    """Asserts mode: call `name(*args, **kwargs)` in the child (values encoded)."""

    name: str
    args: list[Value]
    kwargs: dict[str, Value] = {}


class FetchRequest(msgspec.Struct, frozen=True, tag="fetch"):
    """Asserts mode: the value of a non-callable solution name."""

    name: str


class DoneRequest(msgspec.Struct, frozen=True, tag="done"):
    pass


Request = CallRequest | FetchRequest | DoneRequest


class Ready(msgspec.Struct, frozen=True, tag="ready"):
    """The code ran; asserts mode: which requested names exist and which are callable."""

    nonce: bytes
    exception: ExceptionInfo | None = None
    callable: list[str] = []
    values: list[str] = []


class Returned(msgspec.Struct, frozen=True, tag="returned"):
    """The outcome of a call or of the whole run (call/script modes carry the trace)."""

    nonce: bytes
    value: Value | None = None
    exception: ExceptionInfo | None = None
    trace: bytes | None = None  # tracer.Trace as MessagePack
    exit_code: int = 0


Frame = Ready | Returned
SETUP_DONE = "setup_done"  # what FrameReader yields for the empty frame a child writes once isolated

_HEADER = struct.Struct(">I")
_REQUEST_DECODER = msgspec.msgpack.Decoder(Request)
_FRAME_DECODER = msgspec.msgpack.Decoder(Frame)
_ENCODER = msgspec.msgpack.Encoder()


class ChannelError(Exception):
    """A frame that is too big, cut short or malformed."""


def pack(message: msgspec.Struct) -> bytes:
    body = _ENCODER.encode(message)
    return _HEADER.pack(len(body)) + body


def write_frame(fd: int, message: msgspec.Struct) -> None:
    data = memoryview(pack(message))
    while data:
        data = data[os.write(fd, data) :]


def read_exact(fd: int, n: int) -> bytes:
    parts = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise ChannelError("channel closed in the middle of a frame")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def read_request(fd: int, limit: int) -> Request:
    """Blocking read of one request (child side)."""
    header = read_exact(fd, 4)
    (size,) = _HEADER.unpack(header)
    if size > limit:
        raise ChannelError(f"request of {size} bytes is over the {limit}-byte cap")
    return _REQUEST_DECODER.decode(read_exact(fd, size))


class FrameReader:
    """Incremental frame parser for the judge (fed from a non-blocking pipe)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list:
        self.buffer += data
        frames = []
        while len(self.buffer) >= 4:
            (size,) = _HEADER.unpack_from(self.buffer)
            if size > self.limit:
                raise ChannelError(f"result frame of {size} bytes is over the {self.limit}-byte cap")
            if len(self.buffer) < 4 + size:
                break
            body = bytes(self.buffer[4 : 4 + size])
            del self.buffer[: 4 + size]
            if size == 0:
                frames.append(SETUP_DONE)
                continue
            try:
                frames.append(_FRAME_DECODER.decode(body))
            except msgspec.DecodeError as error:
                raise ChannelError(f"malformed result frame: {error}") from None
        return frames
