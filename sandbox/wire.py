"""Every message between the pool, a shard's driver, its zygote and a child, and their one framing.

Six directions, each a union of tagged msgspec Structs with its own `Decoder`:

- pool -> driver, `ToDriver` (a stream socket): `Jobs` (a batch, each job
  with the pool's id for it);
- driver -> pool, `FromDriver` (the same socket): `ShardReady` (at start and
  after each restart of its zygote), `Results` (a batch, under the jobs' ids);
- judge (the shard's driver) -> zygote, `ToZygote` (a SOCK_SEQPACKET socket): `Spawn` (carrying the
  child's five pipe ends, in `CHILD_FDS` order), `Kill`;
- zygote -> judge, `FromZygote` (the same socket): `Hello`, `Spawned`,
  `SpawnFailed`, `Exited`;
- judge -> child, `ToChild` (a pipe, the child's `CONTROL_FD`): the `JobSpec`,
  then in asserts mode `CallRequest`, `AttrRequest`, `DoneRequest`;
- child -> judge, `FromChild` (a pipe, the child's `RESULT_FD`): `SetupDone`,
  written once by the forked child when its isolation is in place and before
  any code runs, then `Ready` and `Returned`, which carry the job's nonce.

The judge accepts a child's message only in the protocol state that expects it
(one `Ready` first in asserts mode, then one `Returned` per request; one
`Returned` for a program): anything else is tampering (`sandbox.execution`).
In asserts mode an object with no builtin value stays in the child: the judge
gets a handle (`Answer.handle`) and refers to it in later requests, inside
arguments as a `handle_value` (a `Value` of type `HANDLE`).

Every message is framed the same way, on the socket too: a 4-byte big-endian
length, then its MessagePack body; a reader refuses a message over its cap.
Values cross only as `tracer.Value` trees (typed: a tuple stays a tuple, True is
not 1, an int subclass is marked as such) and are turned back into builtin
objects in the judge by `tracer.to_python`; nothing from the child is ever
compared as an object it made.
"""

from __future__ import annotations

import os
import select
import socket
import struct
from collections.abc import Iterator
from typing import Any, Generic, Literal, TypeVar

import msgspec

from tracer import ExceptionInfo, Value

from .isolation import Layers
from .job import Job, Limits, Mode, Result

STDIN_FD, STDOUT_FD, STDERR_FD = 0, 1, 2  # the child's, each a pipe to the judge
CONTROL_FD = 3  # in the child: where it reads ToChild messages
RESULT_FD = 4  # in the child: where it writes FromChild messages
CHILD_FDS = (CONTROL_FD, RESULT_FD, STDIN_FD, STDOUT_FD, STDERR_FD)  # the pipe ends sent with Spawn, in order
SETUP_FAILED = 121  # exit status of a child whose isolation could not be set up (before any code ran)
PACKET_LIMIT = 1 << 16  # largest message on the zygote's socket
CONTROL_LIMIT = 64 << 20  # largest message to a child


# ---------------------------------------------------------------- pool <-> driver

SHARD_LIMIT = (1 << 32) - 1  # largest message between the pool and a driver (both ours: the framing's own cap)


class Jobs(msgspec.Struct, frozen=True, tag="jobs"):
    """Run these jobs; each one's Result comes back under its id (`ids[i]` is the id of `jobs[i]`)."""

    ids: list[int]
    jobs: list[Job]


class ShardReady(msgspec.Struct, frozen=True, tag="shard_ready"):
    """The driver's zygote is (again) up: its isolation layers, its pid (host view), its slots' directory."""

    layers: Layers
    zygote: int
    base: str


class Results(msgspec.Struct, frozen=True, tag="results"):
    """Finished jobs: `results[i]` is that of job `ids[i]`."""

    ids: list[int]
    results: list[Result]


ToDriver = Jobs
FromDriver = ShardReady | Results


# ---------------------------------------------------------------- judge <-> zygote


class Spawn(msgspec.Struct, frozen=True, tag="spawn"):
    """Fork a child for job `id` in worker slot `slot` (its five pipe ends come with the message)."""

    id: int
    slot: int
    limits: Limits


class Kill(msgspec.Struct, frozen=True, tag="kill"):
    """SIGKILL to job `id`'s process group; for a `timeout`, first measure how its processes were scheduled."""

    id: int
    timeout: bool = False


class Hello(msgspec.Struct, frozen=True, tag="hello"):
    """The zygote is ready: the isolation layers it applies, its pid."""

    layers: Layers
    pid: int


class Spawned(msgspec.Struct, frozen=True, tag="spawned"):
    id: int
    pid: int  # in the zygote's PID namespace


class SpawnFailed(msgspec.Struct, frozen=True, tag="spawn_failed"):
    id: int
    reason: str


class Exited(msgspec.Struct, frozen=True, tag="exited"):
    """Job `id` ended and was reaped, with whatever it left behind."""

    id: int
    status: int  # os.wait status
    cpu_time: float
    peak_memory: int  # bytes: its memory cgroup's peak where it has one, else the child's peak RSS
    leftovers: int  # processes the job left behind, killed
    run_time: float = 0.0  # killed for a timeout: seconds its processes ran (kernel schedstat) ...
    wait_time: float = 0.0  # ... and waited, runnable, for a CPU
    oom_killed: bool = False  # the kernel killed one of its processes for its memory cgroup's limit


ToZygote = Spawn | Kill
FromZygote = Hello | Spawned | SpawnFailed | Exited


# ---------------------------------------------------------------- judge <-> child


class JobSpec(msgspec.Struct, frozen=True, kw_only=True, tag="job"):
    """What the child runs. Sent by the judge straight to the child (never through the zygote)."""

    mode: Mode
    code: str
    nonce: bytes  # echoed in every Ready and Returned; messages without it are forged
    call: str | None = None  # call mode: expression to evaluate after the code, e.g. "f([1, 2])"
    trace: bool = False  # record a trace (asserts mode: of the code and the tests' first call)
    trace_record: Literal["lines", "final"] = "lines"  # what the trace records (tracer.trace's `record`)
    stdin: str = ""
    filename: str = "<solution>"
    argv: list[str] = []
    trace_limits: dict[str, int] = {}
    names: list[str] = []  # asserts mode: the names the tests take from the solution


HANDLE = "execalign.handle"  # type name of a `Value` that stands for one of the child's objects


def handle_value(handle: int) -> Value:
    """The `Value` that stands for the child's object `handle` inside a request's arguments."""
    return Value("object", handle, type=HANDLE)


class CallRequest(msgspec.Struct, frozen=True, tag="call"):
    """Asserts mode: call the child's object `target` (a handle) with `args` and `kwargs` (values encoded)."""

    target: int
    args: list[Value]
    kwargs: dict[str, Value] = {}


class AttrRequest(msgspec.Struct, frozen=True, tag="attr"):
    """Asserts mode: attribute `name` of the child's object `target` (a handle)."""

    target: int
    name: str


class DoneRequest(msgspec.Struct, frozen=True, tag="done"):
    """Asserts mode: the tests are over; the child exits."""


class SetupDone(msgspec.Struct, frozen=True, tag="setup_done"):
    """Written once by the forked child: its isolation is in place, the code starts now."""


class Answer(msgspec.Struct, frozen=True):
    """Asserts mode: a value from the child, and its handle when it has no builtin value (0: none)."""

    value: Value
    handle: int = 0


class Ready(msgspec.Struct, frozen=True, tag="ready"):
    """Asserts mode: the code ran; the requested names it defines (those it does not are absent)."""

    nonce: bytes
    exception: ExceptionInfo | None = None
    names: dict[str, Answer] = {}
    tampered: list[str] = []  # what the child found replaced on its reporting path


class Returned(msgspec.Struct, frozen=True, tag="returned"):
    """The outcome of a call, an attribute request or the whole run (with the trace, when one was asked:
    of the run, or in asserts mode of the code and the tests' first call)."""

    nonce: bytes
    value: Value | None = None
    exception: ExceptionInfo | None = None
    trace: bytes | None = None  # tracer.Trace as MessagePack
    exit_code: int = 0
    handle: int = 0  # asserts mode: the value's handle when it has no builtin value
    tampered: list[str] = []  # what the child found replaced on its reporting path


ToChild = JobSpec | CallRequest | AttrRequest | DoneRequest
FromChild = SetupDone | Ready | Returned
Message = ToDriver | FromDriver | ToZygote | FromZygote | ToChild | FromChild


# ---------------------------------------------------------------- framing

_HEADER = struct.Struct(">I")
_ENCODER = msgspec.msgpack.Encoder()
_MSGPACK: dict[Any, msgspec.msgpack.Decoder[Any]] = {}  # one per direction, shared by its readers
M = TypeVar("M")


class ChannelError(Exception):
    """A message that is too big, cut short or malformed."""


def pack(message: Message) -> bytes:
    """One framed message: its length, then its MessagePack body."""
    body = _ENCODER.encode(message)
    return _HEADER.pack(len(body)) + body


def write(fd: int, message: Message) -> None:
    """Write one framed message to a blocking pipe."""
    data = memoryview(pack(message))
    while data:
        data = data[os.write(fd, data) :]


def send(sock: socket.socket, message: Message) -> None:
    """Send one framed message as one datagram of a (possibly non-blocking) SOCK_SEQPACKET socket.

    Waits for room rather than drop it: several processes send on the judge's socket."""
    data = pack(message)
    while True:
        try:
            sock.send(data)
            return
        except BlockingIOError:
            select.select([], [sock], [], 1.0)


def _read_exact(fd: int, n: int) -> bytes:
    parts = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise ChannelError("channel closed in the middle of a message")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


class Decoder(Generic[M]):
    """Reads one direction's messages (`kind`, a union of Structs), each at most `limit` bytes."""

    def __init__(self, kind: Any, limit: int):
        self.limit = limit
        if kind not in _MSGPACK:
            _MSGPACK[kind] = msgspec.msgpack.Decoder(kind)
        self._decoder: msgspec.msgpack.Decoder[M] = _MSGPACK[kind]
        self._buffer = bytearray()

    def _size(self, header: bytes | bytearray) -> int:
        (size,) = _HEADER.unpack_from(header)
        if size > self.limit:
            raise ChannelError(f"message of {size} bytes is over the {self.limit}-byte cap")
        return int(size)

    def _decode(self, body: bytes) -> M:
        try:
            return self._decoder.decode(body)
        except msgspec.DecodeError as error:
            raise ChannelError(f"malformed message: {error}") from None
        except RecursionError:  # nested deeper than the decoder goes: no encoder of ours made it
            raise ChannelError("malformed message: nested too deep") from None

    def unpack(self, packet: bytes) -> M:
        """One whole framed message (a datagram of the zygote's socket)."""
        if len(packet) < _HEADER.size or self._size(packet) != len(packet) - _HEADER.size:
            raise ChannelError(f"a packet of {len(packet)} bytes is not one whole message")
        return self._decode(packet[_HEADER.size :])

    def read(self, fd: int) -> M:
        """Blocking read of one message from a pipe."""
        size = self._size(_read_exact(fd, _HEADER.size))
        return self._decode(_read_exact(fd, size))

    def feed(self, data: bytes) -> Iterator[M]:
        """The messages completed by `data` (read from a non-blocking pipe), one by one; keeps the rest.

        A bad message raises `ChannelError` only once every message before it was handed out."""
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            size = self._size(self._buffer)
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            yield self._decode(body)


def receive(sock: socket.socket, decoder: Decoder[M]) -> tuple[M, bytes, list[int]] | None:
    """One datagram of a SOCK_SEQPACKET socket: its message, its bytes, the descriptors it carried
    (None once the socket is closed; BlockingIOError when nothing is there yet)."""
    data, fds, _, _ = socket.recv_fds(sock, PACKET_LIMIT + 4, len(CHILD_FDS))
    return (decoder.unpack(data), data, fds) if data else None
