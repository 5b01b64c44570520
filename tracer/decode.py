"""Encoded values back to Python objects: `to_python(value)`.

Only builtin values have an exact counterpart: objects, functions, modules and
values cut by a cap raise `NotDecodable`, and so does a malformed `Value` (one
that `tracer.encode` never makes, e.g. sent by a hostile sandbox child).
"""

from __future__ import annotations

from collections import deque
from typing import Any, cast

from .schema import Value


class NotDecodable(ValueError):
    """The value has no exact Python counterpart (an object, a cut value...)."""


def to_python(value: Value) -> Any:
    """Decode an encoded builtin value back to an equal Python object.

    Subclasses decode to their builtin base (`Counter` -> dict). Raises
    `NotDecodable` for objects, functions and values cut by a cap.
    """
    try:
        return _decode(value, {})
    except NotDecodable:
        raise
    except (TypeError, ValueError, IndexError, OverflowError) as error:  # not made by our encoder
        raise NotDecodable(f"malformed {value.t} value: {error}") from None


def _decode(value: Value, refs: dict[int, Any]) -> Any:
    t, v = value.t, value.v
    if value.more:
        raise NotDecodable(f"{t} value was cut by a cap ({value.more} left out)")
    if t == "none":
        return None
    if t == "bool":
        return bool(v)
    if t == "int":
        return int(v, 16) if type(v) is str else v
    if t == "float":
        return float(cast(float | str, v))  # a float, or "nan", "inf", "-inf", "-0.0"
    if t == "complex":
        real, imag = _parts(value.items)
        return complex(_decode(real, refs), _decode(imag, refs))
    if t == "str":
        return v
    if t in ("bytes", "bytearray"):
        data = bytes.fromhex(cast(str, v))
        return data if t == "bytes" else bytearray(data)
    if t == "range":
        return range(*(_decode(x, refs) for x in _parts(value.items)))
    if t == "list":
        out: Any = []
        if value.id:
            refs[value.id] = out
        out.extend(_decode(x, refs) for x in _parts(value.items))
        return out if value.type != "deque" else deque(out)
    if t == "dict":
        out = {}
        if value.id:
            refs[value.id] = out
        for k, x in zip(_parts(value.keys), _parts(value.items), strict=True):
            out[_decode(k, refs)] = _decode(x, refs)
        return out
    if t in ("tuple", "set", "frozenset"):
        built = {"tuple": tuple, "set": set, "frozenset": frozenset}[t](_decode(x, refs) for x in _parts(value.items))
        if value.id:
            refs[value.id] = built
        return built
    if t == "ref" and type(v) is int and v in refs:
        return refs[v]
    raise NotDecodable(f"a {t} value ({value.type or v}) has no Python literal")


def _parts(values: list[Value] | None) -> list[Value]:
    if values is None:
        raise NotDecodable("malformed value: its elements are missing")
    return values
