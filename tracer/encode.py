"""Typed, lossless encoding of Python values that never runs user code.

`encode(obj)` turns any object into a `Value` tree (`tracer.schema`). Builtin
values (None, bool, int of any size, float including nan/inf/-0.0, complex,
str, bytes, bytearray, range, list, tuple, set, frozenset, dict) are kept
exactly; instances of user classes become their type name and attributes;
functions, classes, modules, generators and other objects become their kind and
name. Shared and cyclic containers inside one value are encoded once and
referenced (`t="ref"`). `exception_info(exc)` is an exception's type and
message, made the same way.

Nothing here calls a user `__repr__`, `__eq__`, `__hash__`, `__getattr__`,
property or iterator: types are taken with `type()`, containers are walked with
the builtin base-type methods, attributes are read only through the builtin
`__dict__`/slot descriptors. Caps on depth, items and string length
(`EncodeLimits`) cut values with explicit markers (`more` = how many elements
or characters were left out, `t="deep"` = a container cut by depth).

The way back: `tracer.decode` (to Python objects), `tracer.render` (to text).
"""

from __future__ import annotations

import math
import sys
import types
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Literal, cast

import msgspec

from .render import render
from .schema import ExceptionInfo, Kind, Value

Container = Literal["list", "tuple", "set", "frozenset", "dict"]
Walk = tuple[Callable[[Any], Iterator[Any]], Callable[[Any], int]]


class EncodeLimits(msgspec.Struct, frozen=True):
    """Caps applied while encoding one value."""

    max_depth: int = 12
    max_items: int = 1000
    max_str: int = 10_000


DEFAULT_ENCODE_LIMITS = EncodeLimits()

# Types whose value cannot change while the object lives: identity means equal.
FROZEN_TYPES = frozenset(
    {
        int,
        float,
        complex,
        bool,
        type(None),
        str,
        bytes,
        range,
        types.FunctionType,
        types.BuiltinFunctionType,
        type,
        types.ModuleType,
    }
)

INT64 = 1 << 63  # ints in [-INT64, INT64) are kept as ints, larger ones as hex text
_NONE = Value("none")
_TRUE = Value("bool", True)
_FALSE = Value("bool", False)
SMALL_INTS = {i: Value("int", i) for i in range(-5, 257)}  # shared by all encodings: never modified

_TYPE_DICT = type.__dict__["__dict__"].__get__  # cls -> mappingproxy, no metaclass code
_TYPE_NAME = type.__dict__["__name__"].__get__
_TYPE_MRO = type.__dict__["__mro__"].__get__
_GETSET = types.GetSetDescriptorType
_EXC_ARGS = BaseException.__dict__["args"].__get__
_MEMBER = types.MemberDescriptorType
# Exact stdlib value types whose repr runs no user code (their values hold only numbers).
_SAFE_REPR = {
    "decimal": ("Decimal",),
    "fractions": ("Fraction",),
    "datetime": ("date", "datetime", "time", "timedelta", "timezone"),
}
_TYPE_MODULE = type.__dict__["__module__"].__get__


def _safe_repr(cls: type) -> bool:
    """Is `cls` exactly one of the _SAFE_REPR types (looked up once its module is imported)?"""
    module_name = _TYPE_MODULE(cls)
    names = _SAFE_REPR.get(module_name) if type(module_name) is str else None
    if not names:
        return False
    module = sys.modules.get(module_name)
    return module is not None and any(getattr(module, n, None) is cls for n in names)


def type_name(cls: type) -> str:
    """Name of a class, read without running metaclass code."""
    name = _TYPE_NAME(cls)
    return name if type(name) is str else "?"


def _big_int(e: Encoder, n: int) -> Value:
    if -INT64 <= n < INT64:
        return Value("int", n)
    text = hex(n)  # hex has no digit limit and is linear time
    cap = e.limits.max_str
    return Value("int", text) if len(text) <= cap else Value("int", text[:cap], more=len(text) - cap)


def _float_payload(x: float) -> float | str:
    if x != x:
        return "nan"
    if x in (math.inf, -math.inf):
        return "inf" if x > 0 else "-inf"
    if x == 0.0 and math.copysign(1.0, x) < 0:
        return "-0.0"
    return x


def _class_attr(cls: type, name: str) -> Any:
    """Look `name` up along the MRO's own dicts (no descriptors run)."""
    for base in _TYPE_MRO(cls):
        d = _TYPE_DICT(base)
        if name in d:
            return d[name]
    return None


def _attribute_layout(cls: type) -> tuple[Any, list[tuple[str, Any]]]:
    """The builtin `__dict__` descriptor (or None) and the slot descriptors of a class."""
    slots = [
        (name, d)
        for base in _TYPE_MRO(cls)
        for name, d in dict.items(dict(_TYPE_DICT(base)))
        if type(d) is _MEMBER and type(name) is str and not (name[:2] == "__" and name[-2:] == "__")
    ]
    return _class_attr(cls, "__dict__"), slots


def _instance_attrs(obj: Any, cls: type, layout: tuple[Any, list[tuple[str, Any]]]) -> dict[str, Any] | None:
    """The attributes of an instance, or None when they cannot be read safely."""
    descr, slots = layout
    if descr is None and not slots:
        return None
    out: dict[str, Any] = {}
    if descr is not None:
        if type(descr) is not _GETSET:
            return None  # a user-defined __dict__: do not touch it
        d = descr.__get__(obj, cls)
        if type(d) is not dict:
            return None
        for k, v in dict.items(d):
            if type(k) is str:
                out[k] = v
    for name, slot in slots:
        if name not in out:
            try:
                out[name] = slot.__get__(obj, cls)
            except AttributeError:
                pass
    return out


def _sort_key(value: Value) -> tuple[int, Any, bytes]:
    """A total, deterministic order for set elements."""
    v = value.v
    if value.t in ("int", "bool", "float") and type(v) is not str:
        return (0, v, b"")
    if value.t == "str":
        return (1, 0, str.encode(cast(str, v), "utf-8", "surrogatepass"))
    return (2, 0, msgspec.json.encode(value))


class Encoder:
    """Encodes objects under fixed caps; `nodes` counts Values made so far."""

    __slots__ = ("_layouts", "_memo", "_next_id", "limits", "nodes", "saw_defaultdict")

    def __init__(self, limits: EncodeLimits = DEFAULT_ENCODE_LIMITS):
        self.limits = limits
        self._layouts: dict[type, tuple[Any, list[tuple[str, Any]]]] = {}
        self.nodes = 0
        self.saw_defaultdict = False
        self._memo: dict[int, Value] = {}
        self._next_id = 0

    def encode(self, obj: Any) -> Value:
        cls = type(obj)
        if cls is int:
            self.nodes += 1
            return SMALL_INTS.get(obj) or _big_int(self, obj)
        if cls is str and len(obj) <= self.limits.max_str:
            self.nodes += 1
            return Value("str", obj)
        self._memo = {}
        self._next_id = 0
        try:
            return self._encode(obj, 0)
        finally:
            self._memo = {}

    def _encode(self, obj: Any, depth: int) -> Value:
        self.nodes += 1
        cls = type(obj)
        atom = _ATOMS.get(cls)
        if atom is not None:
            return atom(self, obj)
        kind = _CONTAINERS.get(cls)
        if kind is not None:
            return self._container(obj, kind, None, depth)
        if cls is range:
            return Value(
                "range",
                items=[
                    self._encode(obj.start, depth + 1),
                    self._encode(obj.stop, depth + 1),
                    self._encode(obj.step, depth + 1),
                ],
            )
        if cls in _NAMED_KINDS:
            return Value(_NAMED_KINDS[cls], _name_of(obj))
        if cls in _VIEWS:
            return self._container(obj, "list", _VIEWS[cls], depth, _VIEW_WALK)
        if _safe_repr(cls):
            return Value("other", repr(obj), type=type_name(cls))
        if isinstance(cls, type) and issubclass(cls, type):
            return Value("class", type_name(obj))
        return self._subclass_or_object(obj, cls, depth)

    def _subclass_or_object(self, obj: Any, cls: type, depth: int) -> Value:
        name = type_name(cls)
        for base in _TYPE_MRO(cls):
            if base in _CONTAINERS:
                if base is dict and _class_attr(cls, "default_factory") is not None:
                    self.saw_defaultdict = True
                return self._container(obj, _CONTAINERS[base], name, depth)
            if base in _BASE_VALUE:
                value = _ATOMS[base](self, _BASE_VALUE[base](obj))
                return Value(value.t, value.v, type=name, items=value.items, more=value.more)
        key = id(obj)
        seen = self._memo.get(key)
        if seen is not None:
            return self._ref(seen)
        if depth >= self.limits.max_depth:
            return Value("deep", type=name)
        if BaseException in _TYPE_MRO(cls):
            args: list[Value] = []
            self._memo[key] = out = Value("exception", type=name, items=args)
            args.extend(self._encode(a, depth + 1) for a in _EXC_ARGS(obj))
            return out
        layout = self._layouts.get(cls)
        if layout is None:
            layout = self._layouts[cls] = _attribute_layout(cls)
        attrs = _instance_attrs(obj, cls, layout)
        if attrs is None:
            return Value("other", type=name)
        encoded: dict[str, Value] = {}
        self._memo[key] = out = Value("object", type=name, attrs=encoded)
        for i, (k, v) in enumerate(attrs.items()):
            if i >= self.limits.max_items:
                out.more = len(attrs) - i
                break
            encoded[k] = self._encode(v, depth + 1)
        return out

    def _ref(self, target: Value) -> Value:
        if not target.id:
            self._next_id += 1
            target.id = self._next_id
        return Value("ref", target.id)

    def _container(self, obj: Any, kind: Container, name: str | None, depth: int, walk: Walk | None = None) -> Value:
        mutable = kind in ("list", "dict", "set")  # a cycle always passes through one of these
        if mutable:
            key = id(obj)
            seen = self._memo.get(key)
            if seen is not None:
                return self._ref(seen)
        if depth >= self.limits.max_depth:
            return Value("deep", type=name or kind)
        items: list[Value] = []
        out = Value(kind, type=name, items=items)
        if mutable:
            self._memo[key] = out
        cap = self.limits.max_items
        enc = self._encode
        if kind == "dict":
            pairs = dict.items(obj)
            keys: list[Value] = []
            out.keys = keys
            for i, (k, v) in enumerate(pairs):
                if i >= cap:
                    out.more = len(pairs) - i
                    break
                keys.append(enc(k, depth + 1))
                items.append(enc(v, depth + 1))
            return out
        iterate, length = walk or _BASE_ITER[kind]  # exact C types only: no user __iter__
        size = length(obj)
        it = iterate(obj)
        for i, element in enumerate(it):
            if i >= cap:
                out.more = size - i
                break
            items.append(enc(element, depth + 1))
        if kind in ("set", "frozenset"):
            items.sort(key=_sort_key)
        return out


def _enc_float(_: Encoder, x: float) -> Value:
    return Value("float", _float_payload(x))


def _enc_complex(e: Encoder, z: complex) -> Value:
    e.nodes += 2
    return Value("complex", items=[Value("float", _float_payload(z.real)), Value("float", _float_payload(z.imag))])


def _enc_str(e: Encoder, s: str) -> Value:
    cap = e.limits.max_str
    if len(s) <= cap:
        return Value("str", s)
    return Value("str", s[:cap], more=len(s) - cap)


def _enc_bytes(e: Encoder, b: bytes, kind: Literal["bytes", "bytearray"] = "bytes") -> Value:
    cap = e.limits.max_str
    more = max(0, len(b) - cap)
    return Value(kind, bytes.hex(b[:cap]), more=more)


_ATOMS: dict[type, Callable[[Encoder, Any], Value]] = {
    type(None): lambda e, x: _NONE,
    bool: lambda e, x: _TRUE if x else _FALSE,
    int: lambda e, x: SMALL_INTS.get(x) or _big_int(e, x),
    float: _enc_float,
    complex: _enc_complex,
    str: _enc_str,
    bytes: _enc_bytes,
    bytearray: lambda e, x: _enc_bytes(e, bytes(x), "bytearray"),
}
# Builtin value of a subclass instance, taken through the base type's own slot.
_BASE_VALUE: dict[type, Callable[[Any], Any]] = {
    bool: bool.__bool__,
    int: int.__int__,
    float: float.__float__,
    complex: complex.__complex__,
    str: str.__str__,
    bytes: lambda b: bytes.__getitem__(b, slice(None)),
    bytearray: bytearray.copy,
}
_CONTAINERS: dict[type, Container] = {list: "list", tuple: "tuple", set: "set", frozenset: "frozenset", dict: "dict"}
_VIEWS: dict[type, str] = {
    deque: "deque",
    type({}.keys()): "dict_keys",
    type({}.values()): "dict_values",
    type({}.items()): "dict_items",
}
_BASE_ITER: dict[str, Walk] = {
    "list": (list.__iter__, list.__len__),
    "tuple": (tuple.__iter__, tuple.__len__),
    "set": (set.__iter__, set.__len__),
    "frozenset": (frozenset.__iter__, frozenset.__len__),
}
_VIEW_WALK: Walk = (iter, len)
_NAMED_KINDS: dict[type, Kind] = {
    types.FunctionType: "function",
    types.LambdaType: "function",
    types.MethodType: "function",
    types.BuiltinFunctionType: "function",
    types.BuiltinMethodType: "function",
    types.ModuleType: "module",
    types.GeneratorType: "generator",
    types.CoroutineType: "coroutine",
    types.AsyncGeneratorType: "generator",
}


def _name_of(obj: Any) -> str:
    cls = type(obj)
    if cls is types.ModuleType:
        d = obj.__dict__  # exact module type: the builtin dict attribute
        name = d.get("__name__") if type(d) is dict else None
    elif cls is types.MethodType:
        name = obj.__func__.__qualname__ if type(obj.__func__) is types.FunctionType else None
    else:
        name = obj.__qualname__
    return name if type(name) is str else "?"


def encode(obj: Any, limits: EncodeLimits = DEFAULT_ENCODE_LIMITS) -> Value:
    """Encode one object (see the module docstring)."""
    return Encoder(limits).encode(obj)


def exception_info(exc: BaseException, encoder: Encoder | None = None) -> ExceptionInfo:
    """Type and message of an exception without running user `__str__`.

    Builtin exceptions whose arguments are builtin atoms use the builtin
    `__str__` (so KeyError('k') says 'k' as Python does); otherwise the
    arguments are rendered from their encoding (by `encoder`, if given).
    """
    cls = type(exc)
    name = type_name(cls)
    try:
        args = _EXC_ARGS(exc)
    except Exception:
        return ExceptionInfo(name, "")
    if _TYPE_MODULE(cls) == "builtins" and all(type(a) in (str, int, float, bool, type(None)) for a in args):
        return ExceptionInfo(name, cls.__str__(exc))
    if len(args) == 1 and type(args[0]) is str:
        return ExceptionInfo(name, args[0])
    encoder = encoder or Encoder()
    return ExceptionInfo(name, ", ".join(render(encoder.encode(a)) for a in args))
