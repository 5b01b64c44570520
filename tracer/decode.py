"""Encoded values back to Python objects: `to_python(value)`.

Builtin values decode to equal builtin objects; library values to the library
type itself (numpy arrays, matrices and scalars, deque, Counter, OrderedDict,
defaultdict with a builtin factory, Decimal, Fraction, the datetime types,
memoryview); other subclasses to their builtin base (`MyList` -> list, a
namedtuple -> tuple). Shared and cyclic references come back as shared
objects. Nothing recurses: any depth decodes, in time linear in the encoding.

By default (`objects="refuse"`) objects, Enum members, exceptions, functions,
classes, modules and generators raise `NotDecodable`; `objects="namespace"`
decodes them to `Namespace` objects instead. Values cut by a cap raise in both
modes, and so does a malformed `Value` (one that `tracer.encode` never makes,
e.g. sent by a hostile sandbox child).
"""

from __future__ import annotations

import types
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable
from typing import Any, Literal, cast

from .library import FACTORIES, build_array, build_call
from .render import ref_targets
from .schema import Value

Objects = Literal["refuse", "namespace"]


class NotDecodable(ValueError):
    """The value has no exact Python counterpart (an object, a cut value...)."""


class Namespace(types.SimpleNamespace):
    """A user object decoded leniently: `__type__` names its class.

    An object has its attributes (`Point(x=1)` -> `Namespace(__type__='Point', x=1)`),
    an Enum member `name` and `value`, an exception `args`, a function, class,
    module or generator its `name` (its `__type__` is then the kind: 'function' ...),
    an object known only by its type nothing else. Equal when their attributes
    are; hashed by identity, so that one may sit in a set or be a dict key.
    """

    def __hash__(self) -> int:  # type: ignore[override]  # SimpleNamespace is unhashable
        return id(self)


def to_python(value: Value, *, objects: Objects = "refuse") -> Any:
    """Decode an encoded value back to an equal Python object (see the module docstring).

    Raises `NotDecodable` for values cut by a cap, malformed values and, unless
    `objects="namespace"`, for objects and the other kinds without a literal.
    """
    if objects not in ("refuse", "namespace"):
        raise ValueError(f"objects must be 'refuse' or 'namespace', not {objects!r}")
    try:
        return _Decoder(value, objects == "namespace").run()
    except NotDecodable:
        raise
    except (TypeError, ValueError, IndexError, KeyError, AttributeError, OverflowError) as error:
        raise NotDecodable(f"malformed {value.t} value: {error}") from None


Finish = Callable[[list[Any]], Any]


class _Decoder:
    """Decodes a Value tree with an explicit stack: each value's parts first, then the value."""

    def __init__(self, root: Value, lenient: bool):
        self.root = root
        self.lenient = lenient
        self.targets = ref_targets(root)
        self.done: dict[int, Any] = {}  # id -> its object (containers as soon as they exist)
        self.building: set[int] = set()  # ids of immutable values whose parts are being decoded

    def run(self) -> Any:
        results: list[Any] = []
        stack: list[tuple[Value, Finish | None, int]] = [(self.root, None, 0)]
        while stack:
            value, finish, count = stack.pop()
            if finish is not None:  # its `count` parts are the last results
                parts = results[len(results) - count :]
                del results[len(results) - count :]
                obj = finish(parts)
                if value.id:
                    self.done[value.id] = obj
                    self.building.discard(value.id)
                results.append(obj)
                continue
            if value.t == "ref":
                target = self.targets.get(value.v) if type(value.v) is int else None
                if target is None:
                    raise NotDecodable(f"malformed ref value: no value has id {value.v!r}")
                value = target  # the first place it is met decodes it: a set may sort a ref before its target
            if value.id:
                if value.id in self.done:
                    results.append(self.done[value.id])
                    continue
                if value.id in self.building:
                    raise NotDecodable("a tuple or array that contains itself")
            if value.more:
                raise NotDecodable(f"{value.t} value was cut by a cap ({value.more} left out)")
            leaf = _LEAVES.get(value.t)
            if leaf is not None:
                results.append(leaf(self, value))
                continue
            plan = _PLANS.get(value.t)
            if plan is None:
                raise NotDecodable(f"a {value.t} value ({value.type or value.v}) has no Python literal")
            parts, finish = plan(self, value)
            if value.id and value.id not in self.done:
                self.building.add(value.id)
            stack.append((value, finish, len(parts)))
            stack.extend((part, None, 0) for part in reversed(parts))
        return results[0]

    def shell(self, value: Value, obj: Any) -> Any:
        """Register a container before its parts are decoded (a part may refer back to it)."""
        if value.id:
            self.done[value.id] = obj
        return obj

    def refuse(self, value: Value) -> None:
        if not self.lenient:
            raise NotDecodable(f"a {value.t} value ({value.type or value.v}) has no Python literal")


def _parts(values: list[Value] | None) -> list[Value]:
    if values is None:
        raise NotDecodable("malformed value: its elements are missing")
    return values


def _float(value: Value) -> float:
    if value.t != "float":
        raise TypeError(f"a {value.t} where a float belongs")
    return float(cast(float | str, value.v))  # a float, or "nan", "inf", "-inf", "-0.0"


def _int(value: Value) -> int:
    v = value.v
    if value.t != "int" or value.more:
        raise TypeError(f"a {value.t} where an int belongs")
    return int(v, 16) if type(v) is str else int(cast(int, v))


def _bytes(d: _Decoder, value: Value) -> Any:
    data = bytes.fromhex(cast(str, value.v))
    if value.t == "bytearray":
        return bytearray(data)
    return memoryview(data) if value.type == "memoryview" else data


def _named(d: _Decoder, value: Value) -> Any:
    d.refuse(value)
    if value.t == "other":
        return Namespace(__type__=value.type)
    return Namespace(__type__=value.t, name=value.v)


def _str(d: _Decoder, value: Value) -> Any:
    if type(value.v) is not str:
        raise TypeError("a str without its text")
    return value.v


_LEAVES: dict[str, Callable[[_Decoder, Value], Any]] = {
    "none": lambda d, value: None,
    "bool": lambda d, value: bool(value.v),
    "int": lambda d, value: _int(value),
    "float": lambda d, value: _float(value),
    "complex": lambda d, value: complex(*map(_float, _pair(value.items))),
    "str": _str,
    "bytes": _bytes,
    "bytearray": _bytes,
    "range": lambda d, value: range(*map(_int, _parts(value.items))),
    "function": _named,
    "class": _named,
    "module": _named,
    "generator": _named,
    "coroutine": _named,
    "other": _named,
}


def _pair(values: list[Value] | None) -> list[Value]:
    parts = _parts(values)
    if len(parts) != 2:
        raise TypeError("a complex number has two parts")
    return parts


Plan = tuple[list[Value], Finish]


def _list(d: _Decoder, value: Value) -> Plan:
    if value.type == "deque":
        maxlen = (value.attrs or {}).get("maxlen")
        out: Any = d.shell(value, deque(maxlen=_int(maxlen) if maxlen is not None else None))
    else:
        out = d.shell(value, [])

    def finish(parts: list[Any]) -> Any:
        out.extend(parts)
        return out

    return _parts(value.items), finish


def _set(d: _Decoder, value: Value) -> Plan:
    out = d.shell(value, set())

    def finish(parts: list[Any]) -> Any:
        out.update(parts)
        return out

    return _parts(value.items), finish


def _dict(d: _Decoder, value: Value) -> Plan:
    keys, items = _parts(value.keys), _parts(value.items)
    if len(keys) != len(items):
        raise TypeError("dict keys and values differ in number")
    out = d.shell(value, _new_dict(d, value))

    def finish(parts: list[Any]) -> Any:
        for i in range(0, len(parts), 2):
            out[parts[i]] = parts[i + 1]
        return out

    return [part for pair in zip(keys, items) for part in pair], finish


def _new_dict(d: _Decoder, value: Value) -> Any:
    if value.type == "Counter":
        return Counter()
    if value.type == "OrderedDict":
        return OrderedDict()
    if value.type != "defaultdict":
        return {}
    factory = (value.attrs or {}).get("default_factory")
    if factory is None or factory.t == "none":
        return defaultdict(None)
    known = FACTORIES.get(cast(str, factory.v)) if factory.t == "class" else None
    if known is None:
        d.refuse(factory)  # a factory of its own: kept by name only, and only when decoding leniently
    return defaultdict(known)


def _object(d: _Decoder, value: Value) -> Plan:
    d.refuse(value)
    out = d.shell(value, Namespace(__type__=value.type))
    names = list((value.attrs or {}).keys())

    def finish(parts: list[Any]) -> Any:
        for name, part in zip(names, parts):
            setattr(out, name, part)
        return out

    return list((value.attrs or {}).values()), finish


def _exception(d: _Decoder, value: Value) -> Plan:
    d.refuse(value)
    out = d.shell(value, Namespace(__type__=value.type))

    def finish(parts: list[Any]) -> Any:
        out.args = tuple(parts)
        return out

    return _parts(value.items), finish


def _enum(d: _Decoder, value: Value) -> Plan:
    d.refuse(value)
    return _parts(value.items)[:1], lambda parts: Namespace(__type__=value.type, name=value.v, value=parts[0])


def _call(d: _Decoder, value: Value) -> Plan:
    items, attrs = value.items or [], value.attrs or {}
    names = list(attrs)
    positional = len(items)

    def finish(parts: list[Any]) -> Any:
        return build_call(cast(str, value.v), parts[:positional], dict(zip(names, parts[positional:])))

    return [*items, *attrs.values()], finish


def _ndarray(d: _Decoder, value: Value) -> Plan:
    shape = [_int(n) for n in _parts((value.attrs or {})["shape"].items)]
    matrix = value.type == "matrix"
    return _parts(value.items), lambda parts: build_array(parts, shape, cast(str, value.v), matrix)


_PLANS: dict[str, Callable[[_Decoder, Value], Plan]] = {
    "list": _list,
    "tuple": lambda d, value: (_parts(value.items), tuple),
    "set": _set,
    "frozenset": lambda d, value: (_parts(value.items), frozenset),
    "dict": _dict,
    "object": _object,
    "exception": _exception,
    "enum": _enum,
    "call": _call,
    "ndarray": _ndarray,
}
