"""What runs inside a job's child, after isolation is in place.

The child reads its `JobSpec` from the control pipe, runs the code, and writes
messages (`sandbox.wire`) to the result pipe: `Returned` for call, script and
stdio modes; for asserts mode `Ready` (the values of the names the tests take
from the solution), then one `Returned` per call or attribute request until
`DoneRequest` (with a trace asked, the first call's carries it). An object with
no builtin value (a function, a class, an instance) stays here, in a table the
judge refers to by handle. The child ends
with `os._exit`, so atexit hooks, excepthook rewrites and daemon threads of the
code cannot change anything after the message is written. Values are encoded
with the tracer's typed encoder, which runs no user code.

Against code that would forge its own result (what this does and does not
guarantee is in the README): the channel's reader and writer (`os.read`,
`os.write`, a msgpack encoder of its own, the job's nonce) are bound before the
code runs, so replacing module attributes changes nothing; the nonce is taken
out of the spec and the channel objects are frozen out of `gc.get_objects()`;
before each message the child checks that the functions on its reporting path
are the ones the zygote imported, and says so in the message if one was replaced.
"""

from __future__ import annotations

import gc
import os
import sys
import types
from collections.abc import Callable
from functools import partial
from typing import Any

import msgspec

import tracer
import tracer.encode
import tracer.run
import tracer.schema
from tracer import EncodeLimits, NotDecodable, TraceLimits, Value, encode, exception_info, to_python

from . import wire
from .wire import HANDLE, Answer, AttrRequest, CallRequest, DoneRequest, JobSpec, Ready, Returned, ToChild

# Builtin values: the judge gets them back as themselves; anything else also gets a handle.
_PLAIN = (type(None), bool, int, float, complex, str, bytes, bytearray, range, list, tuple, set, frozenset, dict)
_TAMPERED = "the code replaced {} on the child's reporting path"


Watched = tuple[str, Any, str, Any, Any]  # label, namespace, name, the zygote's object, its code or contents


def _reporting_path() -> list[Watched]:
    """What a message goes through: (label, namespace, name, object, what else to compare) for each
    thing the child checks is still the zygote's (a function's code, a table's contents). The
    encoder whole; of the rest, what a message is made with (every check costs copy-on-write faults)."""
    encoder = sys.modules["tracer.encode"]  # (`tracer.encode` is also the name of a function)
    found: list[tuple[str, Any, str, Any]] = [("os", vars(os), "read", os.read), ("os", vars(os), "write", os.write)]
    found.append(("msgspec.structs", vars(msgspec.structs), "replace", msgspec.structs.replace))
    found.append(("tracer.run", vars(tracer.run), "trace", tracer.run.trace))
    for owner, namespace in (("tracer.encode", vars(encoder)), (__name__, vars(sys.modules[__name__]))):
        for attribute, value in namespace.items():
            if owner == __name__ and attribute not in ("_Objects", "_Session", "_writer", "_reader"):
                continue
            if isinstance(value, (types.FunctionType, type)) and value.__module__ == owner:
                found.append((owner, namespace, attribute, value))
            elif type(value) is dict and owner == "tracer.encode" and len(value) < 64:
                found.append((owner, namespace, attribute, value))  # a table of the encoder (`_ATOMS`)
    for cls in (encoder.Encoder, tracer.schema.Trace, _Objects, _Session):
        members = vars(cls)
        label = f"{cls.__module__}.{cls.__name__}"
        found += [
            (label, members, k, v) for k, v in members.items() if isinstance(v, (types.FunctionType, classmethod))
        ]
    return [
        (
            f"{owner}.{k}",
            ns,
            k,
            v,
            v.__code__ if isinstance(v, types.FunctionType) else dict(v) if type(v) is dict else None,
        )
        for owner, ns, k, v in found
    ]


def _replaced() -> list[str]:
    """What on the reporting path was replaced (or its code or contents) since the zygote started."""
    return [
        label
        for label, namespace, name, value, kept in _WATCHED
        if namespace.get(name) is not value
        or (kept is not None and (kept is not value.__code__ if type(kept) is types.CodeType else kept != value))
    ]


Send = Callable[[Ready | Returned], None]


_DECODER = msgspec.msgpack.Decoder(wire.ToChild)  # made once, in the zygote (a typed decoder takes time to make)
_ENCODER = msgspec.msgpack.Encoder()


def _reader(fd: int) -> Callable[[], ToChild]:
    read, decoder, limit = os.read, _DECODER, wire.CONTROL_LIMIT

    def exactly(n: int) -> bytes:
        parts = []
        while n:
            chunk = read(fd, min(n, 1 << 20))
            if not chunk:
                raise wire.ChannelError("channel closed in the middle of a message")
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def next_message() -> ToChild:
        size = int.from_bytes(exactly(4), "big")
        if size > limit:
            raise wire.ChannelError(f"message of {size} bytes is over the {limit}-byte cap")
        message: ToChild = decoder.decode(exactly(size))
        return message

    return next_message


def _writer(fd: int, nonce: bytes) -> Send:
    write, encode_message, replace, replaced = (
        os.write,
        msgspec.msgpack.Encoder().encode,
        msgspec.structs.replace,
        _replaced,
    )

    def send(message: Ready | Returned) -> None:
        changed = replaced()
        tampered = [_TAMPERED.format(", ".join(changed))] if changed else []  # the judge marks the job as tampered
        body = encode_message(replace(message, nonce=nonce, tampered=tampered))
        data = memoryview(len(body).to_bytes(4, "big") + body)
        while data:
            data = data[write(fd, data) :]

    return send


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def run(control_fd: int, result_fd: int) -> None:
    """Serve one job; never returns."""
    try:  # whatever happens, this process ends here: it never returns into the zygote's code
        read = _reader(control_fd)
        spec = read()
        if not isinstance(spec, JobSpec):
            raise wire.ChannelError(f"expected the job's spec first, got {type(spec).__name__}")
        send = _writer(result_fd, spec.nonce)
        spec = msgspec.structs.replace(spec, nonce=b"")
        gc.freeze()  # the channel's closures, out of gc.get_objects()
        if spec.mode == "asserts":
            _serve_asserts(spec, read, send)
        else:
            send(_run_program(spec))
    finally:
        _flush()
        os._exit(0)


def _run_program(spec: JobSpec) -> Returned:
    """Run the code, then the call, by the tracer's runner (its rules: `tracer.run`), traced if asked."""
    sys.argv = [spec.filename, *spec.argv]
    module_name = "__main__" if spec.mode != "call" else "solution"  # a call does not run the main guard
    limits: dict[str, Any] = dict(spec.trace_limits)
    t = tracer.trace(
        spec.code,
        spec.call,
        backend="auto" if spec.trace else "none",
        record=spec.trace_record,
        filename=spec.filename,
        capture_output=False,
        namespace={"__name__": module_name},
        **limits,
    )
    return Returned(b"", t.returned, t.exception, t.to_msgpack() if spec.trace else None, t.exit_code)


class _Objects:
    """The solution's objects the judge holds handles to (handle n is `table[n]`; 0 is none)."""

    def __init__(self, limits: EncodeLimits):
        self.limits = limits
        self.table: list[Any] = [None]

    def handle(self, obj: Any) -> int:
        """A handle to `obj` when it has no builtin value (0 when it has one: the judge gets the value)."""
        if isinstance(obj, _PLAIN):
            return 0
        self.table.append(obj)
        return len(self.table) - 1

    def answer(self, obj: Any) -> tuple[Value, int]:
        """`obj` encoded, and its handle."""
        return encode(obj, self.limits), self.handle(obj)

    def argument(self, value: Value) -> Any:
        """A value from the judge, with its handles (`wire.handle_value`) turned back into the objects."""
        try:
            return to_python(value)
        except NotDecodable:
            pass
        if value.t == "object" and value.type == HANDLE and type(value.v) is int and 0 < value.v < len(self.table):
            return self.table[value.v]
        items = [self.argument(x) for x in value.items or []]
        if value.t == "list":
            return items
        if value.t == "tuple":
            return tuple(items)
        if value.t in ("set", "frozenset"):
            return set(items) if value.t == "set" else frozenset(items)
        if value.t == "dict":
            return dict(zip([self.argument(k) for k in value.keys or []], items))
        raise NotDecodable(f"a {value.t} value ({value.type or value.v}) cannot be passed to the solution")


HOOK = "__execalign_first_call__"  # asserts mode with a trace: the call expression that serves the first call


def _serve_asserts(spec: JobSpec, read: Callable[[], ToChild], send: Send) -> None:
    """The code runs, then the judge's requests are answered in order (see `_Session`).

    With `spec.trace`, the code and the tests' first call are one traced run, as in call mode:
    the code runs under the tracer, then the call expression `HOOK()` answers the judge's
    requests up to its first call and makes that call inside the run; the `Returned` of that
    call carries the trace. Later calls are not traced."""
    session = _Session(spec, read, send)
    namespace = session.namespace
    if not spec.trace:
        ran = tracer.trace(spec.code, backend="none", filename=spec.filename, capture_output=False, namespace=namespace)
    else:
        namespace[HOOK] = session.first_call
        limits: dict[str, Any] = dict(spec.trace_limits)
        ran = tracer.trace(
            spec.code,
            f"{HOOK}()",
            filename=spec.filename,
            capture_output=False,
            namespace=namespace,
            record=spec.trace_record,
            **limits,
        )
        if namespace.get(HOOK) is session.first_call:
            del namespace[HOOK]
        if session.broken is not None:
            raise session.broken
        if session.first is not None:  # the traced call's answer: its value or exception, and the trace
            value = None if ran.exception is not None else ran.returned
            send(Returned(b"", value, ran.exception, ran.to_msgpack(), ran.exit_code, session.first_handle))
        if session.done:
            return
    if not session.ready_sent:
        if ran.exception is not None:  # the code failed (or removed the hook): the tests never run
            send(Ready(b"", exception=ran.exception))
            return
        session.ready()  # the code replaced the hook: the tests run untraced
    while (request := session.next_call()) is not None:
        send(session.answer(request))


class _Session:
    """Asserts mode in the child: the judge's call and attribute requests about the code's objects."""

    def __init__(self, spec: JobSpec, read: Callable[[], ToChild], send: Send):
        self.spec, self.read, self.send = spec, read, send
        self.namespace: dict[str, Any] = {"__name__": "solution"}
        self.objects = _Objects(TraceLimits(**dict(spec.trace_limits)).returned_limits())
        self.ready_sent = False
        self.done = False  # the judge sent DoneRequest
        self.first: CallRequest | None = None  # the call made inside the traced run
        self.first_handle = 0
        self.broken: wire.ChannelError | None = None

    def ready(self) -> None:
        found = [n for n in self.spec.names if n in self.namespace]
        names = {n: Answer(*self.objects.answer(self.namespace[n])) for n in found}
        _flush()
        self.send(Ready(b"", names=names))
        self.ready_sent = True

    def next_call(self) -> CallRequest | None:
        """Answer attribute requests until the next call request; None once the judge is done."""
        while True:
            request = self.read()
            if isinstance(request, DoneRequest):
                self.done = True
                return None
            if not isinstance(request, (CallRequest, AttrRequest)) or not 0 < request.target < len(self.objects.table):
                raise wire.ChannelError(f"unexpected {type(request).__name__} during the tests")
            if isinstance(request, CallRequest):
                return request
            self.send(self._answer(partial(getattr, self.objects.table[request.target], request.name)))

    def _call(self, request: CallRequest) -> Any:
        args = [self.objects.argument(a) for a in request.args]
        kwargs = {k: self.objects.argument(v) for k, v in request.kwargs.items()}
        return self.objects.table[request.target](*args, **kwargs)

    def answer(self, request: CallRequest) -> Returned:
        return self._answer(lambda: self._call(request))

    def _answer(self, compute: Callable[[], Any]) -> Returned:
        try:
            value, handle = self.objects.answer(compute())
            answer = Returned(b"", value, handle=handle)
        except BaseException as error:  # SystemExit too: the code does not get to end the session
            answer = Returned(b"", exception=exception_info(error))
        _flush()
        return answer

    def first_call(self) -> Any:
        """The traced run's call expression: Ready, the requests up to the first call, then that call,
        whose value or exception is the run's (the tracer records it as call mode's)."""
        try:
            self.ready()
            request = self.next_call()
        except wire.ChannelError as error:
            self.broken = error
            return None
        if request is None:
            return None
        self.first = request
        try:
            result = self._call(request)
            self.first_handle = self.objects.handle(result)
            return result
        finally:
            _flush()


_WATCHED = _reporting_path()  # taken in the zygote, before any job
