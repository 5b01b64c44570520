"""Typed, lossless encoding of Python values that never runs user code.

`encode(obj)` turns any object into a `Value` tree (`tracer.schema`). Builtin
values (None, bool, int of any size, float including nan/inf/-0.0, complex,
str, bytes, bytearray, range, list, tuple, set, frozenset, dict) are kept
exactly, and so are the library values people compute with: numpy arrays,
matrices and scalars (dtype, shape, elements), deque, Counter, OrderedDict,
defaultdict (with its factory), Decimal, Fraction, the datetime types,
memoryview (its bytes), Enum members and namedtuples. Instances of user classes
(dataclasses included) become their type name and attributes; functions,
classes, modules, generators and other objects become their kind and name.
Shared and cyclic containers inside one value are encoded once and referenced
(`t="ref"`): lists, dicts, sets, arrays and objects always, tuples and
frozensets when they hold other containers. `exception_info(exc)` is an
exception's type and message, made the same way.

Nothing here calls a user `__repr__`, `__eq__`, `__hash__`, `__getattr__`,
property or iterator: types are taken with `type()`, containers are walked with
the builtin base-type methods, attributes are read only through the builtin
`__dict__`/slot descriptors, library values are recognised by their exact type
(numpy's types are read from `sys.modules`: the tracer never imports numpy) and
read through their own C slots; an ndarray subclass is read through a plain
ndarray view of it. Caps on depth, items and string length (`EncodeLimits`)
cut values with explicit markers (`more` = how many elements or characters
were left out, `t="deep"` = a container cut by depth).

The way back: `tracer.decode` (to Python objects), `tracer.render` (to text).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import fractions
import math
import sys
import types
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple, cast

import msgspec

from .render import render
from .schema import LIBRARY_TYPES, ExceptionInfo, Kind, Value

Container = Literal["list", "tuple", "set", "frozenset", "dict"]
Walk = tuple[Callable[[Any], Iterable[Any]], Callable[[Any], int]]


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
_TYPE_MODULE = type.__dict__["__module__"].__get__
_TYPE_FLAGS = type.__dict__["__flags__"].__get__
_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made at run time (by a class statement), not a C type
_MODULE_DICT = vars(types.ModuleType)["__dict__"].__get__
_GETSET = types.GetSetDescriptorType
_EXC_ARGS = BaseException.__dict__["args"].__get__
_MEMBER = types.MemberDescriptorType
_MUTABLE: frozenset[str] = frozenset({"list", "dict", "set"})  # a cycle always passes through one of these


def _inherits(mro: tuple[type, ...], base: type) -> bool:
    """Is `base` in the MRO? (By identity: `in` would call a metaclass's __eq__.)"""
    return any(cls is base for cls in mro)


def type_name(cls: type) -> str:
    """Name of a class, read without running metaclass code."""
    name = _TYPE_NAME(cls)
    return name if type(name) is str else "?"


def _class_name(cls: type) -> str:
    """The name a Value carries for a class; `module.Name` when Name is one of LIBRARY_TYPES."""
    name = type_name(cls)
    if name in LIBRARY_TYPES:
        module = _TYPE_MODULE(cls)
        return f"{module if type(module) is str else '?'}.{name}"
    return name


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


Layout = tuple[Any, list[tuple[str, Any]]]  # a class's __dict__ descriptor (or None) and its slot descriptors


def _attribute_layout(cls: type) -> Layout:
    """The builtin `__dict__` descriptor (or None) and the slot descriptors of a class."""
    slots = [
        (name, d)
        for base in _TYPE_MRO(cls)
        for name, d in dict.items(dict(_TYPE_DICT(base)))
        if type(d) is _MEMBER and type(name) is str and not (name[:2] == "__" and name[-2:] == "__")
    ]
    return _class_attr(cls, "__dict__"), slots


def _instance_attrs(obj: Any, cls: type, layout: Layout) -> dict[str, Any] | None:
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


class _Numpy(NamedTuple):
    """numpy's own types and the C slots the encoder reads them through."""

    ndarray: type
    generic: type
    dtype_type: type  # numpy.dtype
    matrix: type | None
    view: Callable[..., Any]  # ndarray.view(array, ndarray): a plain ndarray over a subclass's data
    shape: Callable[[Any], tuple[int, ...]]
    size: Callable[[Any], int]
    dtype: Callable[[Any], Any]
    flat: Callable[[Any], Any]
    tolist: Callable[[Any], Any]
    item: Callable[[Any], Any]  # numpy.generic.item: a numpy scalar's Python value
    scalar_dtype: Callable[[Any], Any]
    kind: Callable[[Any], str]  # the members of numpy.dtype
    itemsize: Callable[[Any], int]
    byteorder: Callable[[Any], str]
    dtype_str: Callable[[Any], str]


_numpy: _Numpy | None = None


def _numpy_types() -> _Numpy | None:
    """numpy's types once the traced code has imported numpy (read from sys.modules, never imported here)."""
    global _numpy
    if _numpy is None:
        modules = sys.modules
        module = dict.get(modules, "numpy") if type(modules) is dict else None
        if type(module) is types.ModuleType:
            _numpy = _read_numpy(_MODULE_DICT(module))
    return _numpy


def _read_numpy(names: dict[str, Any]) -> _Numpy | None:
    ndarray, generic, dtype = names.get("ndarray"), names.get("generic"), names.get("dtype")
    if not (isinstance(ndarray, type) and isinstance(generic, type) and isinstance(dtype, type)):
        return None
    if (_TYPE_FLAGS(ndarray) | _TYPE_FLAGS(generic) | _TYPE_FLAGS(dtype)) & _HEAP_TYPE:
        return None  # numpy's C types, not look-alikes planted in sys.modules
    matrix = names.get("matrix")
    if not (isinstance(matrix, type) and _inherits(_TYPE_MRO(matrix), ndarray)):
        matrix = None
    a, g, d = _TYPE_DICT(ndarray), _TYPE_DICT(generic), _TYPE_DICT(dtype)
    try:
        return _Numpy(
            ndarray,
            generic,
            dtype,
            matrix,
            a["view"],
            a["shape"].__get__,
            a["size"].__get__,
            a["dtype"].__get__,
            a["flat"].__get__,
            a["tolist"],
            g["item"],
            g["dtype"].__get__,
            d["kind"].__get__,
            d["itemsize"].__get__,
            d["byteorder"].__get__,
            d["str"].__get__,
        )
    except KeyError:
        return None


_DTYPE_NAMES = {"b": "bool", "i": "int", "u": "uint", "f": "float", "c": "complex", "O": "object"}


def _dtype_name(np: _Numpy, dtype: Any) -> str:
    """`int64`, `float32`, `bool`, `object` ... in native byte order, else numpy's dtype string (`<U3`)."""
    kind = np.kind(dtype)
    prefix = _DTYPE_NAMES.get(kind)
    if prefix is not None and np.byteorder(dtype) in ("=", "|"):
        return prefix if kind in ("b", "O") else f"{prefix}{8 * np.itemsize(dtype)}"
    text = np.dtype_str(dtype)
    return text if type(text) is str else "?"


def _readable(kind: str, itemsize: int) -> bool:
    """Are elements of this dtype Python values (not numpy objects such as long doubles or datetime64)?"""
    return kind in ("b", "i", "u", "U", "S", "O") or (kind == "f" and itemsize <= 8) or (kind == "c" and itemsize <= 16)


class Encoder:
    """Encodes objects under fixed caps; `nodes` counts Values made so far."""

    __slots__ = ("_layouts", "_memo", "_next_id", "limits", "nodes", "saw_defaultdict")

    def __init__(self, limits: EncodeLimits = DEFAULT_ENCODE_LIMITS):
        self.limits = limits
        self._layouts: dict[int, tuple[type, Layout]] = {}  # by id: hashing a class may run its metaclass
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
        if type(cls) is not type:  # a class with its own metaclass: look nothing up by hash (its __hash__ may run)
            if cls is fractions.Fraction:
                return _enc_fraction(self, obj, depth)
            return self._subclass_or_object(obj, cls, depth)
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
        library = _LIBRARY.get(cls)
        if library is not None:
            return library(self, obj, depth)
        if isinstance(cls, type) and issubclass(cls, type):
            return Value("class", type_name(obj))
        return self._subclass_or_object(obj, cls, depth)

    def _subclass_or_object(self, obj: Any, cls: type, depth: int) -> Value:
        mro = _TYPE_MRO(cls)
        np = _numpy_types()
        if np is not None:
            if _inherits(mro, np.ndarray):
                return self._ndarray(obj, cls, np, depth)
            if _inherits(mro, np.generic) and not _TYPE_FLAGS(cls) & _HEAP_TYPE:
                return self._numpy_scalar(obj, cls, np, depth)
            if _inherits(mro, np.dtype_type) and _readable(np.kind(obj), np.itemsize(obj)):
                self.nodes += 1
                return Value("call", "np.dtype", items=[Value("str", _dtype_name(np, obj))])
        if _inherits(mro, _ENUM):
            member = self._enum(obj, cls, depth)
            if member is not None:
                return member
        name = _class_name(cls)
        for base in mro:
            if type(base) is not type:
                continue  # not a builtin (and hashing it could run its metaclass's __hash__)
            if base in _CONTAINERS:
                if base is dict and _class_attr(cls, "default_factory") is not None:
                    self.saw_defaultdict = True
                out = self._container(obj, _CONTAINERS[base], name, depth)
                if base is tuple and out.t == "tuple" and out.keys is None:
                    self._field_names(out, obj, cls)
                return out
            if base is deque:
                return self._container(obj, "list", name, depth, _DEQUE_WALK)
            if base in _BASE_VALUE:
                value = _ATOMS[base](self, _BASE_VALUE[base](obj))
                return Value(value.t, value.v, type=name, items=value.items, more=value.more)
        key = id(obj)
        seen = self._memo.get(key)
        if seen is not None:
            return self._ref(seen)
        if depth >= self.limits.max_depth:
            return Value("deep", type=name)
        if _inherits(mro, BaseException):
            args: list[Value] = []
            self._memo[key] = out = Value("exception", type=name, items=args)
            args.extend(self._encode(a, depth + 1) for a in _EXC_ARGS(obj))
            return out
        attrs = _instance_attrs(obj, cls, self._layout(cls))
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

    def _layout(self, cls: type) -> Layout:
        known = self._layouts.get(id(cls))
        if known is not None and known[0] is cls:
            return known[1]
        layout = _attribute_layout(cls)
        self._layouts[id(cls)] = (cls, layout)  # (the class is kept, so its id stays its own)
        return layout

    def _ref(self, target: Value) -> Value:
        if not target.id:
            self._next_id += 1
            target.id = self._next_id
        return Value("ref", target.id)

    def _int(self, n: int) -> Value:
        self.nodes += 1
        return SMALL_INTS.get(n) or _big_int(self, n)

    def _container(self, obj: Any, kind: Container, name: str | None, depth: int, walk: Walk | None = None) -> Value:
        key = id(obj)
        seen = self._memo.get(key)  # a mutable container met before, or a tuple that holds containers
        if seen is not None:
            return self._ref(seen)
        if depth >= self.limits.max_depth:
            return Value("deep", type=name or kind)
        items: list[Value] = []
        out = Value(kind, type=name, items=items)
        mutable = kind in _MUTABLE
        if mutable:
            self._memo[key] = out
        start = self.nodes
        cap = self.limits.max_items
        enc = self._encode
        if kind == "dict":
            pairs_of, length = walk or _DICT_WALK
            size = length(obj)
            keys: list[Value] = []
            out.keys = keys
            for i, (k, v) in enumerate(pairs_of(obj)):
                if i >= cap:
                    out.more = size - i
                    break
                keys.append(enc(k, depth + 1))
                items.append(enc(v, depth + 1))
            return out
        iterate, length = walk or _BASE_ITER[kind]  # exact C types only: no user __iter__
        size = length(obj)
        for i, element in enumerate(iterate(obj)):
            if i >= cap:
                out.more = size - i
                break
            items.append(enc(element, depth + 1))
        if kind in ("set", "frozenset"):
            items.sort(key=_sort_key)
        if not mutable and self.nodes - start > len(items):  # it holds containers: share it from now on
            self._memo[key] = out  # (only once complete: a cycle through it still meets a mutable first)
        return out

    def _field_names(self, out: Value, obj: Any, cls: type) -> None:
        """A namedtuple's field names as the keys of its tuple."""
        fields = _class_attr(cls, "_fields")
        if type(fields) is tuple and len(fields) == tuple.__len__(obj) and all(type(f) is str for f in fields):
            out.keys = [Value("str", f) for f in fields[: len(out.items or ())]]
            self.nodes += len(out.keys)

    def _enum(self, obj: Any, cls: type, depth: int) -> Value | None:
        attrs = _instance_attrs(obj, cls, self._layout(cls))
        if attrs is None or "_value_" not in attrs:
            return None
        name = attrs.get("_name_")
        value = self._encode(attrs["_value_"], depth + 1)
        return Value("enum", name if type(name) is str else None, type=_class_name(cls), items=[value])

    def _ndarray(self, obj: Any, cls: type, np: _Numpy, depth: int) -> Value:
        key = id(obj)
        seen = self._memo.get(key)
        if seen is not None:
            return self._ref(seen)
        name = None if cls is np.ndarray else "matrix" if cls is np.matrix else _class_name(cls)
        if depth >= self.limits.max_depth:
            return Value("deep", type=name or "ndarray")
        array = obj if name is None else np.view(obj, np.ndarray)  # no subclass hook runs on a plain view
        dtype = np.dtype(array)
        shape = Value("tuple", items=[self._int(n) for n in np.shape(array)])
        items: list[Value] = []
        self._memo[key] = out = Value("ndarray", _dtype_name(np, dtype), type=name, items=items, attrs={"shape": shape})
        if _readable(np.kind(dtype), np.itemsize(dtype)):
            head = np.flat(array)[: self.limits.max_items]  # a copy of the first elements, in C order
            items.extend(self._encode(element, depth + 1) for element in np.tolist(head))
        out.more = np.size(array) - len(items)
        return out

    def _numpy_scalar(self, obj: Any, cls: type, np: _Numpy, depth: int) -> Value:
        dtype = np.scalar_dtype(obj)
        kind = np.kind(dtype)
        if kind == "O" or not _readable(kind, np.itemsize(dtype)):
            return Value("other", type=type_name(cls))
        return Value("call", "np." + type_name(cls), items=[self._encode(np.item(obj), depth + 1)])


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
_DEQUE_WALK: Walk = (deque.__iter__, deque.__len__)
_DICT_WALK: Walk = (dict.items, dict.__len__)
_PLAIN_KEYS = frozenset({str, int, float, bytes, bool, type(None)})  # compared without user __eq__


def _odict_items(od: Any) -> Iterable[Any]:
    """An OrderedDict's pairs in its own order (which `move_to_end` changes), when its keys are plain atoms.

    OrderedDict's iteration looks keys up, which may call a key's `__eq__`: with other keys, the
    builtin dict order is used instead (the same unless `move_to_end` was called)."""
    if all(type(k) in _PLAIN_KEYS for k in dict.keys(od)):
        return OrderedDict.items(od)
    return dict.items(od)


_ODICT_WALK: Walk = (_odict_items, dict.__len__)
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
_ENUM = enum.Enum


def _call(e: Encoder, constructor: str, args: list[Any], kwargs: dict[str, Any], depth: int) -> Value:
    """A library value as the call that builds it (`Value.t == "call"`)."""
    items = [e._encode(a, depth + 1) for a in args]
    attrs = {k: e._encode(v, depth + 1) for k, v in kwargs.items()} or None
    return Value("call", constructor, items=items, attrs=attrs)


def _enc_deque(e: Encoder, obj: deque[Any], depth: int) -> Value:
    out = e._container(obj, "list", "deque", depth, _DEQUE_WALK)
    maxlen = obj.maxlen
    if maxlen is not None and out.t == "list" and out.attrs is None:
        out.attrs = {"maxlen": e._int(maxlen)}
    return out


def _enc_defaultdict(e: Encoder, obj: defaultdict[Any, Any], depth: int) -> Value:
    e.saw_defaultdict = True
    out = e._container(obj, "dict", "defaultdict", depth)
    if out.t == "dict" and out.attrs is None:
        out.attrs = {"default_factory": e._encode(obj.default_factory, depth + 1)}
    return out


def _enc_memoryview(e: Encoder, view: memoryview, depth: int) -> Value:
    cap = e.limits.max_str
    try:
        size = view.nbytes
        if size <= cap:
            data = view.tobytes()
        else:
            with view.cast("B") as flat, flat[:cap] as head:  # C-contiguous views of one-letter formats
                data = head.tobytes()
    except ValueError:
        return Value("other", type="memoryview")  # released
    except TypeError:
        data = b""  # a layout that cannot be cut without copying it all: its bytes are left out
    return Value("bytes", data.hex(), type="memoryview", more=size - len(data))


def _enc_decimal(e: Encoder, d: decimal.Decimal, depth: int) -> Value:
    e.nodes += 1
    return Value("call", "Decimal", items=[_enc_str(e, decimal.Decimal.__str__(d))])


_NUMERATOR = fractions.Fraction.__dict__["_numerator"].__get__
_DENOMINATOR = fractions.Fraction.__dict__["_denominator"].__get__


def _enc_fraction(e: Encoder, f: fractions.Fraction, depth: int) -> Value:
    return _call(e, "Fraction", [_NUMERATOR(f), _DENOMINATOR(f)], {}, depth)


def _time_fields(x: datetime.datetime | datetime.time, head: list[int]) -> tuple[list[int], dict[str, Any]]:
    """Positional fields as Python's repr writes them (seconds and microseconds when set), and keywords."""
    args = [*head, x.hour, x.minute]
    if x.second or x.microsecond:
        args.append(x.second)
    if x.microsecond:
        args.append(x.microsecond)
    kwargs: dict[str, Any] = {}
    if x.tzinfo is not None:
        kwargs["tzinfo"] = x.tzinfo
    if x.fold:
        kwargs["fold"] = 1
    return args, kwargs


def _enc_datetime(e: Encoder, x: datetime.datetime, depth: int) -> Value:
    return _call(e, "datetime.datetime", *_time_fields(x, [x.year, x.month, x.day]), depth)


def _enc_time(e: Encoder, x: datetime.time, depth: int) -> Value:
    return _call(e, "datetime.time", *_time_fields(x, []), depth)


def _enc_timedelta(e: Encoder, x: datetime.timedelta, depth: int) -> Value:
    fields = {"days": x.days, "seconds": x.seconds, "microseconds": x.microseconds}
    kwargs = {k: n for k, n in fields.items() if n}
    return _call(e, "datetime.timedelta", [] if kwargs else [0], kwargs, depth)


_LIBRARY: dict[type, Callable[[Encoder, Any, int], Value]] = {
    deque: _enc_deque,
    Counter: lambda e, x, depth: e._container(x, "dict", "Counter", depth),
    OrderedDict: lambda e, x, depth: e._container(x, "dict", "OrderedDict", depth, _ODICT_WALK),
    defaultdict: _enc_defaultdict,
    memoryview: _enc_memoryview,
    decimal.Decimal: _enc_decimal,
    fractions.Fraction: _enc_fraction,
    datetime.date: lambda e, x, depth: _call(e, "datetime.date", [x.year, x.month, x.day], {}, depth),
    datetime.datetime: _enc_datetime,
    datetime.time: _enc_time,
    datetime.timedelta: _enc_timedelta,
    datetime.timezone: lambda e, x, depth: _call(e, "datetime.timezone", list(x.__getinitargs__()), {}, depth),
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
