"""Encoded values as Python-literal-like text: `render(value)`, for prompts and the CLI.

The text is made from the encoding alone (no user code runs). Builtin values
read back with `tracer.from_literal`; cut values show what was left out
(`...<+3>`), a subclass is wrapped in its type name (`Counter({'a': 1})`), an
object shows its attributes (`Point(x=1, y=2)`), a shared container is written
out again where it recurs, and a cycle is `[...]` or `{...}` as Python writes it.

One small writer per kind, in `_WRITERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, cast

from .schema import Kind, Value


def render(value: Value) -> str:
    """Python-literal-like text of a value (see the module docstring)."""
    out: list[str] = []
    targets: dict[int, Value] = {}
    _collect_targets(value, targets)
    _write(value, _Output(out, targets, set()))
    return "".join(out)


class _Output(NamedTuple):
    parts: list[str]  # the text so far
    targets: dict[int, Value]  # id -> the Value a ref points to
    path: set[int]  # ids of the containers being written (a ref to one of them is a cycle)


def _collect_targets(value: Value, targets: dict[int, Value]) -> None:
    if value.id:
        targets[value.id] = value
    for child in value.items or ():
        _collect_targets(child, targets)
    for child in value.keys or ():
        _collect_targets(child, targets)
    for child in (value.attrs or {}).values():
        _collect_targets(child, targets)


# Kinds whose writer shows `value.type` itself; any other kind with a type is a subclass: `Type(...)`.
_NAMED_BY_WRITER = frozenset({"object", "exception", "other", "deep"})


def _write(value: Value, out: _Output) -> None:
    if value.id:
        out.path.add(value.id)
    wrap = value.type is not None and value.t not in _NAMED_BY_WRITER
    if wrap:
        out.parts.append(f"{value.type}(")
    _WRITERS[value.t](value, out)
    if wrap:
        out.parts.append(")")
    if value.id:
        out.path.discard(value.id)


def _more(n: int) -> str:
    return f"...<+{n}>"


def _items(value: Value) -> list[Value]:
    return value.items or []


def _none(value: Value, out: _Output) -> None:
    out.parts.append("None")


def _bool(value: Value, out: _Output) -> None:
    out.parts.append("True" if value.v else "False")


def _int(value: Value, out: _Output) -> None:
    v = value.v
    if type(v) is str:  # hex text beyond 64 bits
        n = int(v, 16)
        out.parts.append(v if value.more or n.bit_length() > 14_000 else str(n))  # str() refuses > 4300 digits
    else:
        out.parts.append(str(v))


def _float(value: Value, out: _Output) -> None:
    v = value.v
    out.parts.append(f"float('{v}')" if v in ("nan", "inf", "-inf") else float.__repr__(float(cast(float | str, v))))


def _complex(value: Value, out: _Output) -> None:
    re, im = _items(value)
    # Python's repr of complex does not always read back exactly (-1j, nan/inf/-0.0 parts)
    if type(re.v) is float and type(im.v) is float and (re.v != 0 or im.v > 0):
        out.parts.append(complex.__repr__(complex(re.v, im.v)))
    else:
        out.parts.append(f"complex({render(re)}, {render(im)})")


def _str(value: Value, out: _Output) -> None:
    out.parts.append(str.__repr__(cast(str, value.v)))
    if value.more:
        out.parts.append(_more(value.more) + " chars")


def _bytes(value: Value, out: _Output) -> None:
    text = bytes.__repr__(bytes.fromhex(cast(str, value.v)))
    out.parts.append(text if value.t == "bytes" else f"bytearray({text})")
    if value.more:
        out.parts.append(_more(value.more) + " bytes")


def _range(value: Value, out: _Output) -> None:
    bounds = [render(x) for x in _items(value)]
    if bounds[2] == "1":
        bounds.pop()
    out.parts.append("range(" + ", ".join(bounds) + ")")


_BRACKETS = {"list": ("[", "]"), "tuple": ("(", ")"), "set": ("{", "}"), "frozenset": ("frozenset({", "})")}


def _sequence(value: Value, out: _Output) -> None:
    t, items = value.t, _items(value)
    if t in ("set", "frozenset") and not items and not value.more:
        out.parts.append("set()" if t == "set" else "frozenset()")
        return
    opening, closing = _BRACKETS[t]
    out.parts.append(opening)
    for i, item in enumerate(items):
        if i:
            out.parts.append(", ")
        _write(item, out)
    if value.more:
        out.parts.append((", " if items else "") + _more(value.more))
    elif t == "tuple" and len(items) == 1:
        out.parts.append(",")
    out.parts.append(closing)


def _dict(value: Value, out: _Output) -> None:
    items = _items(value)
    out.parts.append("{")
    for i, (k, item) in enumerate(zip(value.keys or [], items)):
        if i:
            out.parts.append(", ")
        _write(k, out)
        out.parts.append(": ")
        _write(item, out)
    if value.more:
        out.parts.append((", " if items else "") + _more(value.more))
    out.parts.append("}")


def _exception(value: Value, out: _Output) -> None:
    out.parts.append(f"{value.type}(")
    for i, item in enumerate(_items(value)):
        out.parts.append(", " if i else "")
        _write(item, out)
    out.parts.append(")")


def _object(value: Value, out: _Output) -> None:
    attrs = value.attrs or {}
    out.parts.append(f"{value.type}(")
    for i, (k, item) in enumerate(attrs.items()):
        out.parts.append((", " if i else "") + k + "=")
        _write(item, out)
    if value.more:
        out.parts.append((", " if attrs else "") + _more(value.more))
    out.parts.append(")")


def _named(value: Value, out: _Output) -> None:
    out.parts.append(f"<{value.t} {value.v}>")  # <function f>, <class C>, <module m>, <generator g>


def _other(value: Value, out: _Output) -> None:
    out.parts.append(cast(str, value.v) if value.v is not None else f"<{value.type} object>")  # a safe repr


def _ref(value: Value, out: _Output) -> None:
    target = out.targets.get(value.v) if type(value.v) is int else None
    if target is None or value.v in out.path:
        kind = target.t if target is not None else ""
        out.parts.append({"list": "[...]", "dict": "{...}", "set": "{...}"}.get(kind, "<...>"))
    else:
        _write(target, out)


def _deep(value: Value, out: _Output) -> None:
    out.parts.append(f"<{value.type} ...>")


_WRITERS: dict[Kind, Callable[[Value, _Output], None]] = {
    "none": _none,
    "bool": _bool,
    "int": _int,
    "float": _float,
    "complex": _complex,
    "str": _str,
    "bytes": _bytes,
    "bytearray": _bytes,
    "range": _range,
    "list": _sequence,
    "tuple": _sequence,
    "set": _sequence,
    "frozenset": _sequence,
    "dict": _dict,
    "exception": _exception,
    "object": _object,
    "function": _named,
    "class": _named,
    "module": _named,
    "generator": _named,
    "coroutine": _named,
    "other": _other,
    "ref": _ref,
    "deep": _deep,
}
