"""Encoded values as the text a person reads: `render(value)`, for prompts and the CLI.

The text is made from the encoding alone (no user code runs), without
recursion, in time and space linear in the size of the encoding whatever the
object graph:

- builtin values are Python literals that `tracer.from_literal` reads back
  exactly: `[1, 'a', (2.5, None)]`, `{1, 2}`, `float('nan')`, `b'\\x00'`;
- library values are the calls that build them, and read back too:
  `array([[1, 2], [3, 4]], dtype=int64)`, `matrix([[1, 2]], dtype=int64)`,
  `array([], shape=(0, 3), dtype=float64)`, `np.int64(3)`, `np.float32(1.1)`,
  `Decimal('1.5')`, `Fraction(1, 3)`, `datetime.date(2020, 1, 2)`,
  `datetime.timedelta(days=1)`, `deque([1, 2], maxlen=3)`,
  `Counter({'a': 2})`, `OrderedDict({'a': 1})`, `defaultdict(int, {'a': 1})`,
  `memoryview(b'ab')`;
- other values read as Python writes them but are not literals: a subclass in
  its type name (`MyList([1, 2])`), an object or dataclass with its attributes
  and a namedtuple with its fields (`Point(x=1, y=2)`), an Enum member
  (`Color.RED`), `ValueError('e')`, `<function f>`, `<class C>`, `<module m>`,
  `<generator g>`, `<Lock object>`;
- cut values show what was left out: `[1, 2, ...<+998>]`, `'abc'...<+7> chars`,
  `<list ...>` (a container cut by depth);
- a container met more than once in the value (shared, or inside itself) is
  written once, labelled `#1=`, and is `#1` where it recurs:
  `[#1=[0, 0], #1, #1]`, `#1=Node(next=#1)`. `from_literal` refuses labels.

`literal_text(value)` is the exact variant for `tracer.to_literal`: Python
source, with shared values written out again and numpy's names as `import
numpy as np` gives them (`np.array([1, 2], dtype=np.int64)`); a cycle, or
text longer than its cap, is an error.

One small writer per kind, in `_WRITERS`; each returns its text as parts
(strings, and the Values inside it, which the loop in `_text` writes in turn).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import cast

from .schema import Kind, Value

Part = str | Value


def render(value: Value) -> str:
    """Text of a value as a person reads it (see the module docstring)."""
    return _text(value, repeat=False, max_chars=None)


def literal_text(value: Value, max_chars: int) -> str:
    """Python source of a value: shared values written out again; a cycle or text over `max_chars` is a ValueError."""
    return _text(value, repeat=True, max_chars=max_chars)


def _text(root: Value, repeat: bool, max_chars: int | None) -> str:
    targets = ref_targets(root)
    labels: dict[int, int] = {}  # target id -> label number, in the order written
    inside: set[int] = set()  # repeat: ids of the values being written (meeting one again is a cycle)
    out: list[str] = []
    size = 0
    stack: list[Part | int] = [root]  # an int: the end of the value with that id (repeat)
    while stack:
        item = stack.pop()
        if type(item) is str:
            out.append(item)
            if max_chars is not None:
                size += len(item)
                if size > max_chars:
                    raise ValueError(f"the value's text is longer than {max_chars} characters")
            continue
        if type(item) is int:
            inside.discard(item)
            continue
        value = cast(Value, item)
        if value.t == "ref":
            target = targets.get(value.v) if type(value.v) is int else None
            if target is None:
                if repeat:
                    raise ValueError("a reference to a value that is not there")
                out.append("#?")
                continue
            value = target
        if value.id:
            if repeat:
                if value.id in inside:
                    raise ValueError("a value that contains itself has no literal")
                inside.add(value.id)
                stack.append(value.id)
            else:
                label = labels.get(value.id)
                if label is not None:
                    out.append(f"#{label}")
                    continue
                labels[value.id] = label = len(labels) + 1
                out.append(f"#{label}=")
        try:
            parts = _ndarray(value, "np.") if repeat and value.t == "ndarray" else _WRITERS[value.t](value)
            if value.type is not None and value.t in _WRAPPED and not (value.t == "tuple" and value.keys):
                parts = _wrapped(value, parts)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError, OverflowError, struct.error) as error:
            if repeat:
                raise ValueError(f"{value.t} value: {error}") from None
            parts = [f"<malformed {value.t}>"]  # not made by our encoder (a hostile child's)
        stack.extend(reversed(parts))
    return "".join(out)


def ref_targets(root: Value) -> dict[int, Value]:
    """id -> the Value inside `root` that a `ref` with that id points to (found without recursion)."""
    targets: dict[int, Value] = {}
    stack = [root]
    while stack:
        value = stack.pop()
        if value.id:
            targets.setdefault(value.id, value)
        stack.extend(value.items or ())
        stack.extend(value.keys or ())
        stack.extend((value.attrs or {}).values())
    return targets


# Builtin kinds: with a `type`, they are written inside it, `Counter({...})`; the other kinds name themselves.
_WRAPPED = frozenset({
    "none", "bool", "int", "float", "complex", "str", "bytes", "bytearray", "range",
    "list", "tuple", "set", "frozenset", "dict",
})  # fmt: skip


def _wrapped(value: Value, parts: list[Part]) -> list[Part]:
    attrs = value.attrs or {}
    head: list[Part] = [f"{value.type}("]
    tail: list[Part] = [")"]
    factory = attrs.get("default_factory") if value.type == "defaultdict" else None
    if factory is not None:  # a builtin class by its name: defaultdict(int, {...})
        head += [factory.v if factory.t == "class" and type(factory.v) is str else factory, ", "]
    maxlen = attrs.get("maxlen") if value.type == "deque" else None
    if maxlen is not None:
        tail = [", maxlen=", maxlen, ")"]
    return head + parts + tail


def _more(n: int) -> str:
    return f"...<+{n}>"


def _joined(items: list[Value], more: int = 0) -> list[Part]:
    """`a, b, c` (and the cut marker)."""
    parts: list[Part] = []
    for i, item in enumerate(items):
        if i:
            parts.append(", ")
        parts.append(item)
    if more:
        parts.append((", " if items else "") + _more(more))
    return parts


def float_text(value: Value) -> str:
    """A float atom as Python source: `1.5`, `-0.0`, `float('nan')`."""
    v = value.v
    return f"float('{v}')" if v in ("nan", "inf", "-inf") else float.__repr__(float(cast(float | str, v)))


def _short_float(value: Value, fmt: str) -> str:
    """A float32 ("f") or float16 ("e") as the shortest decimal that reads back to it: 1.1, not 1.100000023841858."""
    x = value.v
    if type(x) is not float:
        return float_text(value)
    packed = struct.pack(fmt, x)
    for digits in range(1, 18):
        text = float.__repr__(float(f"{x:.{digits}g}"))
        if struct.pack(fmt, float(text)) == packed:
            return text
    return float.__repr__(x)


def _none(value: Value) -> list[Part]:
    return ["None"]


def _bool(value: Value) -> list[Part]:
    return ["True" if value.v else "False"]


def _int(value: Value) -> list[Part]:
    v = value.v
    if type(v) is str:  # hex text beyond 64 bits
        n = int(v, 16)
        return [v if value.more or n.bit_length() > 14_000 else str(n)]  # str() refuses > 4300 digits
    return [str(int(cast(int, v)))]


def _float(value: Value) -> list[Part]:
    return [float_text(value)]


def _parts(value: Value) -> tuple[Value, Value]:
    """A complex number's real and imaginary parts."""
    re, im = value.items or []
    return re, im


def _complex_text(re: Value, im: Value, fmt: str | None = None) -> str:
    if fmt is not None:
        return f"complex({_short_float(re, fmt)}, {_short_float(im, fmt)})"
    # Python's repr of complex does not always read back exactly (-1j, nan/inf/-0.0 parts)
    if type(re.v) is float and type(im.v) is float and (re.v != 0 or im.v > 0):
        return complex.__repr__(complex(re.v, im.v))
    return f"complex({float_text(re)}, {float_text(im)})"


def _complex(value: Value) -> list[Part]:
    return [_complex_text(*_parts(value))]


def _str(value: Value) -> list[Part]:
    text = str.__repr__(cast(str, value.v))
    return [text + _more(value.more) + " chars" if value.more else text]


def _bytes(value: Value) -> list[Part]:
    text = bytes.__repr__(bytes.fromhex(cast(str, value.v)))
    if value.t == "bytearray":
        text = f"bytearray({text})"
    return [text + _more(value.more) + " bytes" if value.more else text]


def _range(value: Value) -> list[Part]:
    bounds = [_int(x)[0] for x in value.items or ()]
    if bounds[2] == "1":
        bounds.pop()
    return ["range(" + ", ".join(cast(list[str], bounds)) + ")"]


_BRACKETS = {"list": ("[", "]"), "tuple": ("(", ")"), "set": ("{", "}"), "frozenset": ("frozenset({", "})")}


def _sequence(value: Value) -> list[Part]:
    t, items = value.t, value.items or []
    if t == "tuple" and value.keys and value.type:  # a namedtuple: Point(x=1, y=2)
        parts: list[Part] = [f"{value.type}("]
        for i, (k, item) in enumerate(zip(value.keys, items)):
            parts += [(", " if i else "") + f"{k.v}=", item]
        if value.more:
            parts.append((", " if items else "") + _more(value.more))
        return [*parts, ")"]
    if t in ("set", "frozenset") and not items and not value.more:
        return ["set()" if t == "set" else "frozenset()"]
    opening, closing = _BRACKETS[t]
    single = t == "tuple" and len(items) == 1 and not value.more
    return [opening, *_joined(items, value.more), "," + closing if single else closing]


def _dict(value: Value) -> list[Part]:
    items = value.items or []
    parts: list[Part] = ["{"]
    for i, (k, item) in enumerate(zip(value.keys or [], items, strict=True)):
        parts += [", " if i else "", k, ": ", item]
    if value.more:
        parts.append((", " if items else "") + _more(value.more))
    return [*parts, "}"]


def _exception(value: Value) -> list[Part]:
    return [f"{value.type}(", *_joined(value.items or []), ")"]


def _object(value: Value) -> list[Part]:
    attrs = value.attrs or {}
    parts: list[Part] = [f"{value.type}("]
    for i, (k, item) in enumerate(attrs.items()):
        parts += [(", " if i else "") + k + "=", item]
    if value.more:
        parts.append((", " if attrs else "") + _more(value.more))
    return [*parts, ")"]


def _named(value: Value) -> list[Part]:
    return [f"<{value.t} {value.v}>"]  # <function f>, <class C>, <module m>, <generator g>


def _other(value: Value) -> list[Part]:
    return [value.v if type(value.v) is str else f"<{value.type} object>"]


def _deep(value: Value) -> list[Part]:
    return [f"<{value.type} ...>"]


def _enum(value: Value) -> list[Part]:
    if type(value.v) is str:  # Color.RED; a Flag value of several members: Perm.R|Perm.W
        return ["|".join(f"{value.type}.{name}" for name in value.v.split("|"))]
    return [f"{value.type}(", *_joined(value.items or []), ")"]


_SHORT_FLOATS = {"np.float32": "f", "np.float16": "e", "float32": "f", "float16": "e", "complex64": "f"}


def _call(value: Value) -> list[Part]:
    name, items, attrs = cast(str, value.v), value.items or [], value.attrs or {}
    if name == "datetime.timezone" and not attrs and len(items) == 1 and _is_zero_timedelta(items[0]):
        return ["datetime.timezone.utc"]
    fmt = _SHORT_FLOATS.get(name)
    if fmt is not None and len(items) == 1 and items[0].t == "float":
        return [f"{name}({_short_float(items[0], fmt)})"]
    if name == "np.complex64" and len(items) == 1 and items[0].t == "complex":
        return [f"{name}({_complex_text(*_parts(items[0]), fmt='f')})"]
    parts: list[Part] = [f"{name}(", *_joined(items)]
    for i, (k, item) in enumerate(attrs.items()):
        parts += [(", " if i or items else "") + f"{k}=", item]
    return [*parts, ")"]


def _is_zero_timedelta(value: Value) -> bool:
    items = value.items or []
    return value.t == "call" and value.v == "datetime.timedelta" and len(items) == 1 and items[0].v == 0


def _ndarray(value: Value, numpy: str = "") -> list[Part]:
    """`array([[1, 2]], dtype=int64)` as numpy writes it; `np.array(..., dtype=np.int64)` as code (numpy="np.")."""
    dtype, items = cast(str, value.v), value.items or []
    shape = [cast(int, n.v) for n in (value.attrs or {})["shape"].items or ()]
    if any(type(n) is not int for n in shape):
        raise ValueError("a malformed shape")
    elements = _array_elements(items, dtype)
    complete = not value.more and len(items) == math.prod(shape)
    if not complete:  # the first elements in C order, flat, and the shape
        body: list[Part] = ["[" if items or not value.more else "[" + _more(value.more)]
        for i, element in enumerate(elements):
            body += [", " if i else "", *element]
        body.append((", " + _more(value.more) if items and value.more else "") + "]")
    elif not shape:
        body = elements[0]
    elif not items:
        body = ["[]"]
    else:
        body = _nested(elements, shape)
    shown = "" if complete and (len(shape) == 1 or items) else f", shape={_shape_text(shape)}"
    if numpy and shown:
        raise ValueError(f"an array of shape {_shape_text(shape)} and no elements has no literal")
    named = numpy + dtype if dtype.isidentifier() and dtype not in ("bool", "object") else dtype
    tail = f"{shown}, dtype={named if dtype.isidentifier() else repr(dtype)})"
    if value.type is None or value.type == "matrix":
        return [f"{numpy}{value.type or 'array'}(", *body, tail]
    return [f"{value.type}(array(", *body, tail, ")"]  # a subclass: MyArray(array([...], dtype=int64))


def _array_elements(items: list[Value], dtype: str) -> list[list[Part]]:
    """Each element's text; float32 and float16 in their shortest form."""
    fmt = _SHORT_FLOATS.get(dtype)
    if dtype == "complex64":
        return [[_complex_text(*_parts(x), fmt="f")] if x.t == "complex" else [x] for x in items]
    if fmt is not None:
        return [[_short_float(x, fmt)] if x.t == "float" else [x] for x in items]
    if dtype == "object":  # as numpy writes it: a list element is list([...]), so that lists are dimensions
        return [["list(", x, ")"] if x.t == "list" and x.type is None else [x] for x in items]
    return [[x] for x in items]


def _nested(elements: list[list[Part]], shape: list[int]) -> list[Part]:
    """Flat elements in C order as nested lists: [[1, 2], [3, 4]]."""
    sizes = [math.prod(shape[k:]) for k in range(1, len(shape))]  # elements per block of each inner dimension
    parts: list[Part] = ["[" * len(shape)]
    for i, element in enumerate(elements):
        if i:
            closed = sum(1 for size in sizes if i % size == 0)
            parts.append("]" * closed + ", " + "[" * closed)
        parts += element
    parts.append("]" * len(shape))
    return parts


def _shape_text(shape: list[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _reference(value: Value) -> list[Part]:
    return ["#?"]  # only reached for a ref inside a writer's own text; refs are resolved in `_text`


_WRITERS: dict[Kind, Callable[[Value], list[Part]]] = {
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
    "ref": _reference,
    "deep": _deep,
    "ndarray": _ndarray,
    "call": _call,
    "enum": _enum,
}
