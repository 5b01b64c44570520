"""Typed, lossless encoding of Python values that never runs user code.

`encode(obj)` turns any object into a `Value` tree. Builtin values (None, bool,
int of any size, float including nan/inf/-0.0, complex, str, bytes, bytearray,
range, list, tuple, set, frozenset, dict) are kept exactly; instances of user
classes become their type name and attributes; functions, classes, modules,
generators and other objects become their kind and name. Shared and cyclic
containers inside one value are encoded once and referenced (`t="ref"`).

Nothing here calls a user `__repr__`, `__eq__`, `__hash__`, `__getattr__`,
property or iterator: types are taken with `type()`, containers are walked with
the builtin base-type methods, attributes are read only through the builtin
`__dict__`/slot descriptors. Caps on depth, items and string length cut values
with explicit markers (`more` = how many elements or characters were left out,
`t="deep"` = a container cut by depth).

`render(value)` writes Python-literal-like text for prompts and the CLI, and
`to_python(value)` decodes a builtin value back to an equal Python object.
"""

from __future__ import annotations

import math
import sys
import types
from collections import deque
from typing import Any, NamedTuple

import msgspec

Payload = bool | int | float | str | None


class Value(msgspec.Struct, omit_defaults=True, repr_omit_defaults=True, gc=False):
    """One encoded value.

    t      kind: none bool int float complex str bytes bytearray range list tuple
           set frozenset dict object exception function class module generator
           coroutine other ref deep
    v      payload of atoms (int as int, or hex text beyond 64 bits; float as
           float, or "nan"/"inf"/"-inf"/"-0.0"; bytes as hex); name of
           functions, classes, modules, generators; target id of a ref
    type   type name when it is not the plain builtin of the kind
           (a subclass such as `Counter`, a user class, the kind cut by depth)
    items  elements (list, tuple, set, frozenset, dict values, complex parts,
           range start/stop/step, exception args)
    keys   dict keys, parallel to items
    attrs  attributes of an object
    more   elements, characters or attributes left out by a cap
    id     set on a container that a `ref` elsewhere in the value points to
    """

    t: str
    v: Payload = None
    type: str | None = None
    items: list[Value] | None = None
    keys: list[Value] | None = None
    attrs: dict[str, Value] | None = None
    more: int = 0
    id: int = 0


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

_INT64 = 1 << 63
_NONE = Value("none")
_TRUE = Value("bool", True)
_FALSE = Value("bool", False)
_SMALL_INTS = {i: Value("int", i) for i in range(-5, 257)}

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
    module = sys.modules.get(module_name) if names else None
    return module is not None and any(getattr(module, n, None) is cls for n in names)


def type_name(cls: type) -> str:
    """Name of a class, read without running metaclass code."""
    name = _TYPE_NAME(cls)
    return name if type(name) is str else "?"


def _big_int(e: Encoder, n: int) -> Value:
    if -_INT64 <= n < _INT64:
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


def _instance_attrs(obj: Any, cls: type, layout: tuple) -> dict[str, Any] | None:
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


def _sort_key(value: Value) -> tuple:
    """A total, deterministic order for set elements."""
    v = value.v
    if value.t in ("int", "bool", "float") and type(v) is not str:
        return (0, v, b"")
    if value.t == "str":
        return (1, 0, str.encode(v, "utf-8", "surrogatepass"))
    return (2, 0, msgspec.json.encode(value))


class Encoder:
    """Encodes objects under fixed caps; `nodes` counts Values made so far."""

    __slots__ = ("_layouts", "_memo", "_next_id", "limits", "nodes", "saw_defaultdict")

    def __init__(self, limits: EncodeLimits = DEFAULT_ENCODE_LIMITS):
        self.limits = limits
        self._layouts: dict[type, tuple] = {}
        self.nodes = 0
        self.saw_defaultdict = False
        self._memo: dict[int, Value] = {}
        self._next_id = 0

    def encode(self, obj: Any) -> Value:
        cls = type(obj)
        if cls is int:
            self.nodes += 1
            return _SMALL_INTS.get(obj) or _big_int(self, obj)
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
            return self._container(obj, "list", _VIEWS[cls], depth, (iter, len))
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
            out = Value("exception", type=name, items=[])
            self._memo[key] = out
            out.items = [self._encode(a, depth + 1) for a in _EXC_ARGS(obj)]
            return out
        layout = self._layouts.get(cls)
        if layout is None:
            layout = self._layouts[cls] = _attribute_layout(cls)
        attrs = _instance_attrs(obj, cls, layout)
        if attrs is None:
            return Value("other", type=name)
        out = Value("object", type=name, attrs={})
        self._memo[key] = out
        for i, (k, v) in enumerate(attrs.items()):
            if i >= self.limits.max_items:
                out.more = len(attrs) - i
                break
            out.attrs[k] = self._encode(v, depth + 1)
        return out

    def _ref(self, target: Value) -> Value:
        if not target.id:
            self._next_id += 1
            target.id = self._next_id
        return Value("ref", target.id)

    def _container(self, obj: Any, kind: str, name: str | None, depth: int, walk: tuple = ()) -> Value:
        mutable = kind in ("list", "dict", "set")  # a cycle always passes through one of these
        if mutable:
            key = id(obj)
            seen = self._memo.get(key)
            if seen is not None:
                return self._ref(seen)
        if depth >= self.limits.max_depth:
            return Value("deep", type=name or kind)
        out = Value(kind, type=name, items=[])
        if mutable:
            self._memo[key] = out
        cap = self.limits.max_items
        enc = self._encode
        if kind == "dict":
            pairs = dict.items(obj)
            out.keys = []
            for i, (k, v) in enumerate(pairs):
                if i >= cap:
                    out.more = len(pairs) - i
                    break
                out.keys.append(enc(k, depth + 1))
                out.items.append(enc(v, depth + 1))
            return out
        iterate, length = walk or _BASE_ITER[kind]  # exact C types only: no user __iter__
        size = length(obj)
        it = iterate(obj)
        items = out.items
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


def _enc_bytes(e: Encoder, b: bytes, kind: str = "bytes") -> Value:
    cap = e.limits.max_str
    more = max(0, len(b) - cap)
    return Value(kind, bytes.hex(b[:cap]), more=more)


_ATOMS = {
    type(None): lambda e, x: _NONE,
    bool: lambda e, x: _TRUE if x else _FALSE,
    int: lambda e, x: _SMALL_INTS.get(x) or _big_int(e, x),
    float: _enc_float,
    complex: _enc_complex,
    str: _enc_str,
    bytes: _enc_bytes,
    bytearray: lambda e, x: _enc_bytes(e, bytes(x), "bytearray"),
}
# Builtin value of a subclass instance, taken through the base type's own slot.
_BASE_VALUE = {
    bool: bool.__bool__,
    int: int.__int__,
    float: float.__float__,
    complex: complex.__complex__,
    str: str.__str__,
    bytes: lambda b: bytes.__getitem__(b, slice(None)),
    bytearray: bytearray.copy,
}
_CONTAINERS = {list: "list", tuple: "tuple", set: "set", frozenset: "frozenset", dict: "dict"}
_VIEWS = {
    deque: "deque",
    type({}.keys()): "dict_keys",
    type({}.values()): "dict_values",
    type({}.items()): "dict_items",
}
_BASE_ITER = {
    "list": (list.__iter__, list.__len__),
    "tuple": (tuple.__iter__, tuple.__len__),
    "set": (set.__iter__, set.__len__),
    "frozenset": (frozenset.__iter__, frozenset.__len__),
}
_NAMED_KINDS = {
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


# ---------------------------------------------------------------- decoding


class NotDecodable(ValueError):
    """The value has no exact Python counterpart (an object, a cut value...)."""


def to_python(value: Value) -> Any:
    """Decode an encoded builtin value back to an equal Python object.

    Subclasses decode to their builtin base (`Counter` -> dict). Raises
    `NotDecodable` for objects, functions and values cut by a cap.
    """
    return _decode(value, {})


def _decode(value: Value, refs: dict[int, Any]) -> Any:
    t = value.t
    if value.more:
        raise NotDecodable(f"{t} value was cut by a cap ({value.more} left out)")
    if t == "none":
        return None
    if t == "bool":
        return bool(value.v)
    if t == "int":
        v = value.v
        return int(v, 16) if type(v) is str else v
    if t == "float":
        return float(value.v)
    if t == "complex":
        return complex(_decode(value.items[0], refs), _decode(value.items[1], refs))
    if t == "str":
        return value.v
    if t in ("bytes", "bytearray"):
        data = bytes.fromhex(value.v)
        return data if t == "bytes" else bytearray(data)
    if t == "range":
        return range(*(_decode(x, refs) for x in value.items))
    if t == "list":
        out: Any = []
        if value.id:
            refs[value.id] = out
        out.extend(_decode(x, refs) for x in value.items)
        return out if value.type != "deque" else deque(out)
    if t == "dict":
        out = {}
        if value.id:
            refs[value.id] = out
        for k, v in zip(value.keys, value.items):
            out[_decode(k, refs)] = _decode(v, refs)
        return out
    if t in ("tuple", "set", "frozenset"):
        built = {"tuple": tuple, "set": set, "frozenset": frozenset}[t](_decode(x, refs) for x in value.items)
        if value.id:
            refs[value.id] = built
        return built
    if t == "ref" and value.v in refs:
        return refs[value.v]
    raise NotDecodable(f"a {t} value ({value.type or value.v}) has no Python literal")


# ---------------------------------------------------------------- literals

MAX_LITERAL_CHARS = 1_000_000
_LITERAL_CALLS = {
    "set": set,
    "frozenset": frozenset,
    "float": float,
    "complex": complex,
    "range": range,
    "bytearray": bytearray,
    "tuple": tuple,
    "list": list,
    "dict": dict,
}


def from_literal(text: str) -> Any:
    """Parse Python-literal text, as `render` writes it, without evaluating code.

    Accepts what `ast.literal_eval` accepts plus the calls `render` uses for
    values that have no literal: `set()`, `frozenset({...})`, `float('nan')`,
    `complex(re, im)`, `range(...)`, `bytearray(b'..')`. Raises ValueError.
    """
    if len(text) > MAX_LITERAL_CHARS:
        raise ValueError(f"literal longer than {MAX_LITERAL_CHARS} characters")
    import ast
    import warnings

    try:
        with warnings.catch_warnings():  # odd escapes in model output are not worth a warning on stderr
            warnings.simplefilter("ignore")  # SyntaxWarning (3.12+) or DeprecationWarning (3.11)
            tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, MemoryError, RecursionError) as error:
        raise ValueError(f"not a Python literal: {error}") from None
    try:
        return _literal(tree.body)
    except TypeError as error:  # an unhashable set element or dict key: {[]}
        raise ValueError(f"not a Python value: {error}") from None


def _literal(node: Any) -> Any:
    import ast

    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _LITERAL_CALLS
        and not node.keywords
        and len(node.args) <= 3
    ):
        args = [_literal(a) for a in node.args]
        if node.func.id == "float" and not (len(args) == 1 and type(args[0]) is str):
            raise ValueError("float() takes one string here, e.g. float('nan')")
        try:
            return _LITERAL_CALLS[node.func.id](*args)
        except (TypeError, ValueError, OverflowError) as error:
            raise ValueError(f"bad {node.func.id}() literal: {error}") from None
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Set):
        return {_literal(e) for e in node.elts}
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ValueError("dict unpacking (**) is not a literal")
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as error:
        raise ValueError(f"not a Python literal: {ast.dump(node)[:80]}") from error


# ---------------------------------------------------------------- rendering


def render(value: Value) -> str:
    """Python-literal-like text of a value, made from the encoding alone.

    A shared container is written out again where it recurs; a cycle is `[...]`
    or `{...}` as Python writes it.
    """
    parts: list[str] = []
    targets: dict[int, Value] = {}
    _collect_targets(value, targets)
    _render(value, parts, _RenderState(targets, set()))
    return "".join(parts)


class _RenderState(NamedTuple):
    targets: dict  # id -> the Value a ref points to
    path: set  # ids of the containers being written (a ref to one of them is a cycle)


def _collect_targets(value: Value, targets: dict[int, Value]) -> None:
    if value.id:
        targets[value.id] = value
    for child in value.items or ():
        _collect_targets(child, targets)
    for child in value.keys or ():
        _collect_targets(child, targets)
    for child in (value.attrs or {}).values():
        _collect_targets(child, targets)


def _more(n: int) -> str:
    return f"...<+{n}>"


def _render(value: Value, out: list[str], kinds: _RenderState) -> None:
    t, v = value.t, value.v
    if value.id:
        kinds.path.add(value.id)
    wrap = value.type is not None and t not in ("object", "exception", "other", "deep")
    if wrap:
        out.append(value.type + "(")
    if t == "none":
        out.append("None")
    elif t == "bool":
        out.append("True" if v else "False")
    elif t == "int":
        if type(v) is str:
            n = int(v, 16)
            out.append(v if value.more or n.bit_length() > 14_000 else str(n))  # str() refuses > 4300 digits
        else:
            out.append(str(v))
    elif t == "float":
        out.append(f"float('{v}')" if v in ("nan", "inf", "-inf") else float.__repr__(float(v)))
    elif t == "complex":
        re, im = value.items
        # Python's repr of complex does not always read back exactly (-1j, nan/inf/-0.0 parts)
        if type(re.v) is float and type(im.v) is float and (re.v != 0 or im.v > 0):
            out.append(complex.__repr__(complex(re.v, im.v)))
        else:
            out.append(f"complex({render(re)}, {render(im)})")
    elif t == "str":
        out.append(str.__repr__(v))
        if value.more:
            out.append(_more(value.more) + " chars")
    elif t in ("bytes", "bytearray"):
        text = bytes.__repr__(bytes.fromhex(v))
        out.append(text if t == "bytes" else f"bytearray({text})")
        if value.more:
            out.append(_more(value.more) + " bytes")
    elif t == "range":
        bounds = [render(x) for x in value.items]
        if bounds[2] == "1":
            bounds.pop()
        out.append("range(" + ", ".join(bounds) + ")")
    elif t in ("list", "tuple", "set", "frozenset"):
        _render_seq(value, out, kinds)
    elif t == "dict":
        out.append("{")
        for i, (k, item) in enumerate(zip(value.keys, value.items)):
            if i:
                out.append(", ")
            _render(k, out, kinds)
            out.append(": ")
            _render(item, out, kinds)
        if value.more:
            out.append((", " if value.items else "") + _more(value.more))
        out.append("}")
    elif t == "exception":
        out.append(value.type + "(")
        for i, item in enumerate(value.items):
            out.append(", " if i else "")
            _render(item, out, kinds)
        out.append(")")
    elif t == "object":
        out.append(value.type + "(")
        for i, (k, item) in enumerate(value.attrs.items()):
            out.append((", " if i else "") + k + "=")
            _render(item, out, kinds)
        if value.more:
            out.append((", " if value.attrs else "") + _more(value.more))
        out.append(")")
    elif t == "ref":
        target = kinds.targets.get(v)
        if target is None or v in kinds.path:
            kind = target.t if target is not None else ""
            out.append({"list": "[...]", "dict": "{...}", "set": "{...}"}.get(kind, "<...>"))
        else:
            _render(target, out, kinds)
    elif t == "deep":
        out.append(f"<{value.type} ...>")
    elif t == "other":
        out.append(v if v is not None else f"<{value.type} object>")
    else:
        out.append(f"<{t} {v}>")
    if wrap:
        out.append(")")
    if value.id:
        kinds.path.discard(value.id)


def _render_seq(value: Value, out: list[str], kinds: _RenderState) -> None:
    t, items = value.t, value.items
    if t in ("set", "frozenset") and not items and not value.more:
        out.append("set()" if t == "set" else "frozenset()")
        return
    opening, closing = {"list": ("[", "]"), "tuple": ("(", ")"), "set": ("{", "}"), "frozenset": ("frozenset({", "})")}[
        t
    ]
    out.append(opening)
    for i, item in enumerate(items):
        if i:
            out.append(", ")
        _render(item, out, kinds)
    if value.more:
        out.append((", " if items else "") + _more(value.more))
    elif t == "tuple" and len(items) == 1:
        out.append(",")
    out.append(closing)
