"""Comparing a predicted value with the real one.

Default (typed, exact): types must match exactly (`True != 1`, `(1, 2) != [1, 2]`,
`{1: x} != {"1": x}`, `np.int64(3) != 3`), ints are compared exactly at any size,
floats are equal when |a - b| <= rtol * max(|a|, |b|) (DEFAULT_RTOL = 1e-9) or
both are nan, sets compare unordered, dict keys are typed. Library values: numpy
arrays by type (ndarray or matrix), dtype, shape and elements (floats within
rtol), numpy scalars by type and value, deque with its maxlen, OrderedDict in
order, defaultdict with its factory, Decimal, Fraction and the datetime types
exactly (`Decimal('1.50') != Decimal('1.5')`). A real value with no Python
literal (an object, a function) matches the predicted text of its rendering.

`coderl_plus` reproduces CodeRL+'s checker: values as JSON (tuples are lists,
dict keys are strings), then its lenient rules: equal, or None/null/none,
True/true/1 and False/false/0 alike, numbers within 1e-9, lists and dicts
element by element, else equal text.

Nothing here recurses or expands shared parts: a real value may be deep,
shared (`v = [v] * 30`, five times) or cyclic, and its cost stays bounded.
To compare one real value with many predictions, decode it once (`Real`) and
use `equal`; `exact_key` gives the common small values a hashable key, so that
many of them compare by set intersection.
"""

from __future__ import annotations

import datetime
import decimal
import fractions
import math
from collections import Counter, OrderedDict, defaultdict, deque
from typing import Any

from tracer import NotDecodable, Value, render, to_python

DEFAULT_RTOL = 1e-9
_MAX_PARTS = 1_000_000  # parts of a value compared at most (shared parts counted each time)
_ATOMS = (int, bool, str, bytes, bytearray, range, type(None))
_EXACT = (decimal.Decimal, fractions.Fraction, datetime.date, datetime.datetime, datetime.time)
_EXACT_TYPES = (*_EXACT, datetime.timedelta, datetime.timezone)  # equal when written the same
_DICTS = (dict, Counter, OrderedDict, defaultdict)
_SEQUENCES = (list, tuple, deque)


def typed_equal(a: Any, b: Any, rtol: float = DEFAULT_RTOL) -> bool:
    """Are two values equal in type and value, recursively (see the module docstring)?"""
    size = _parts(a, _MAX_PARTS)
    if _parts(b, size) != size:  # equal values have as many parts; this also bounds the walk below
        return False
    seen: set[tuple[int, int]] = set()  # pairs of containers compared already (a cycle meets one again)
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        t = type(x)
        if t is not type(y):
            return False
        if t is float:
            if not _close(x, y, rtol):
                return False
            continue
        if t in _ATOMS:
            if x != y:
                return False
            continue
        if (id(x), id(y)) in seen:
            continue
        seen.add((id(x), id(y)))
        pairs = _pairs(x, y, rtol)
        if pairs is None:
            return False
        stack.extend(pairs)
    return True


def _close(x: float, y: float, rtol: float) -> bool:
    if x != x or y != y:
        return x != x and y != y
    return x == y or abs(x - y) <= rtol * max(abs(x), abs(y))


def _pairs(x: Any, y: Any, rtol: float) -> list[tuple[Any, Any]] | None:
    """The parts of two values of one type that must be equal in turn, or None if the values differ here."""
    t = type(x)
    if t is complex:
        return [(x.real, y.real), (x.imag, y.imag)]
    if t in _SEQUENCES:
        if len(x) != len(y) or (t is deque and x.maxlen != y.maxlen):
            return None
        return list(zip(x, y))
    if t in _DICTS:
        if len(x) != len(y) or (t is defaultdict and x.default_factory is not y.default_factory):
            return None
        if t is OrderedDict:  # order is part of its value
            return [*zip(x, y), *zip(x.values(), y.values())]
        keys = _matched(list(x), list(y), rtol)
        return None if keys is None else [(x[k], y[j]) for k, j in keys]
    if t is set or t is frozenset:
        return None if len(x) != len(y) or _matched(list(x), list(y), rtol) is None else []
    if t in _EXACT_TYPES:
        return [] if repr(x) == repr(y) else None  # exact: Decimal('1.50') is not Decimal('1.5')
    if t is memoryview:
        return [] if x.tobytes() == y.tobytes() else None
    numpy = _numpy_module(x)
    if numpy is not None and isinstance(x, numpy.ndarray):
        if x.dtype != y.dtype or x.shape != y.shape:
            return None
        return list(zip(x.ravel().tolist(), y.ravel().tolist()))
    if numpy is not None and isinstance(x, numpy.generic):
        return [(x.item(), y.item())]
    if hasattr(x, "__dict__") and type(vars(x)) is dict and hasattr(y, "__dict__"):  # tracer.Namespace ...
        return [(vars(x), vars(y))]
    try:
        return [] if bool(x == y) else None
    except Exception:  # an object whose == does not give a truth value
        return None


def _matched(xs: list[Any], ys: list[Any], rtol: float) -> list[tuple[Any, Any]] | None:
    """Pair each x with a typed-equal y (set elements, dict keys: hashable, compared exactly), or None."""
    groups: dict[Any, list[Any]] = {}
    for y in ys:
        groups.setdefault(y, []).append(y)  # 1, 1.0 and True share a group: told apart by type below
    out = []
    for x in xs:
        group = groups.get(x, [])
        match = next((i for i, y in enumerate(group) if typed_equal(x, y, 0.0)), None)
        if match is None:
            return None
        out.append((x, group.pop(match)))
    return out


def _numpy_module(x: Any) -> Any:
    """numpy, if x may be one of its values (only then is it imported)."""
    if type(x).__module__ != "numpy" and not type(x).__module__.startswith("numpy."):
        return None
    import numpy

    return numpy


def _parts(value: Any, limit: int) -> int:
    """How many parts typed_equal walks in `value`, shared parts counted each time; at most limit + 1."""
    count = 0
    stack = [value]
    while stack and count <= limit:
        x = stack.pop()
        count += 1
        t = type(x)
        if t in _SEQUENCES or t is set or t is frozenset:
            stack.extend(x)
        elif t in _DICTS:
            stack.extend(x)
            stack.extend(x.values())
        elif t is complex:
            count += 2
        elif t.__module__ == "numpy" and t.__name__ in ("ndarray", "matrix"):
            count += x.size
    return count


def to_json_value(value: Any) -> Any:
    """A Python value as CodeRL+ stores it: JSON (tuples, sets and arrays as lists, dict keys as str).

    A shared part stays shared (and a cycle a cycle): nothing is expanded."""
    made: dict[int, Any] = {}
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]  # (value, where its JSON goes, key or index there)
    while stack:
        x, into, at = stack.pop()
        out = made.get(id(x))
        if out is None:
            out, parts = _json_shell(x)
            if parts is not None:
                made[id(x)] = out
                stack.extend((part, out, key) for key, part in parts)
        into[at] = out
    return root[0]


def _json_shell(x: Any) -> tuple[Any, list[tuple[Any, Any]] | None]:
    """A value's JSON form, empty when it has parts: (the form, [(key or index, part) ...] or None)."""
    if isinstance(x, dict):
        pairs = [(k if isinstance(k, str) else str(k), v) for k, v in x.items()]
        return dict.fromkeys(k for k, _ in pairs), pairs  # keys in their order, values filled in later
    if isinstance(x, (list, tuple, deque)):
        return [None] * len(x), list(enumerate(x))
    if isinstance(x, (set, frozenset)):
        items = list(x)
        try:
            items = sorted(items)
        except TypeError:
            pass
        return [None] * len(items), list(enumerate(items))
    numpy = _numpy_module(x)
    if numpy is not None and isinstance(x, numpy.ndarray):
        return _json_shell(x.tolist())
    if numpy is not None:
        return (_json_atom(x.item()), None) if isinstance(x, numpy.generic) else (str(x), None)  # a dtype
    return _json_atom(x), None


def _json_atom(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, (*_EXACT_TYPES, memoryview)):
        return str(x.tobytes() if isinstance(x, memoryview) else x)
    return x


_NONE = {"None", "none", "null", "Null", "NULL"}
_TRUE = {"True", "true", "TRUE", "1"}
_FALSE = {"False", "false", "FALSE", "0"}


def coderl_equal(predicted: Any, expected: Any) -> bool:
    """CodeRL+'s lenient check_value_equality, reimplemented (lists and dicts element by element)."""
    seen: set[tuple[int, int]] = set()
    stack = [(predicted, expected)]
    while stack:
        p, e = stack.pop()
        if _coderl_alike(p, e):
            continue
        if isinstance(p, list) and isinstance(e, list):
            if len(p) != len(e):
                return False
            pairs = list(zip(p, e))
        elif isinstance(p, dict) and isinstance(e, dict):
            if set(p) != set(e):
                return False
            pairs = [(p[k], e[k]) for k in p]
        elif _text(p) != _text(e):
            return False
        else:
            continue
        if (id(p), id(e)) not in seen:
            seen.add((id(p), id(e)))
            stack.extend(pairs)
    return True


def _coderl_alike(p: Any, e: Any) -> bool:
    """CodeRL+'s rules for two values that are not both lists or both dicts (those go element by element)."""
    if isinstance(p, (list, dict)) or isinstance(e, (list, dict)):
        return False  # equal only as text (or element by element)
    try:
        if p == e:
            return True
    except Exception:
        pass
    ps, es = _text(p), _text(e)
    if (ps in _NONE and es in _NONE) or (ps in _TRUE and es in _TRUE) or (ps in _FALSE and es in _FALSE):
        return True
    if not isinstance(p, bool) and not isinstance(e, bool):
        try:
            return abs(float(p) - float(e)) < 1e-9
        except (TypeError, ValueError, OverflowError):
            return False
    return False


def _text(x: Any) -> str | None:
    """str(x), stripped, or None when it would be longer than any answer (a huge or shared value)."""
    if isinstance(x, (list, dict)) and _parts(x, 100_000) > 100_000:
        return None
    try:
        return str(x).strip()
    except (RecursionError, ValueError):
        return None


class Real:
    """A real (encoded) value decoded once, to compare with many predictions (`equal`)."""

    __slots__ = ("text", "value")

    def __init__(self, actual: Value):
        try:
            self.value, self.text = to_python(actual), None
        except NotDecodable:  # no Python literal: a prediction is compared with its rendering
            self.value, self.text = None, render(actual)

    @classmethod
    def known(cls, value: Any, text: str | None = None) -> Real:
        """A real value already in Python, or (`text`) known only by its rendering."""
        real = cls.__new__(cls)
        real.value, real.text = (None, text) if text is not None else (value, None)
        return real


def equal(predicted: Any, real: Real, mode: str = "typed", rtol: float = DEFAULT_RTOL) -> bool:
    """`matches`, for a real value already decoded."""
    if real.text is not None:
        return isinstance(predicted, str) and predicted.strip() == real.text
    if mode == "coderl_plus":
        return coderl_equal(to_json_value(predicted), to_json_value(real.value))
    return typed_equal(predicted, real.value, rtol)


def matches(predicted: Any, actual: Value, mode: str = "typed", rtol: float = DEFAULT_RTOL) -> bool:
    """Does the predicted Python value match the real (encoded) one?"""
    return equal(predicted, Real(actual), mode, rtol)


_KEYED = (type(None), bool, int, str, bytes)  # types whose typed equality is their == (with their type)


def exact_key(value: Any) -> Any:
    """A hashable key two values share exactly when `typed_equal` holds, for the common small values:
    None, bools, ints, strings, bytes, and lists or tuples of up to 64 of them; None for any other."""
    t = type(value)
    if t in _KEYED:
        return (t, value)
    if (t is list or t is tuple) and len(value) <= 64 and all(type(x) in _KEYED for x in value):
        return (t, tuple((type(x), x) for x in value))
    return None


def nodes(value: Any, cap: int) -> int:
    """How many parts `value` has (shared parts counted each time), at most `cap`."""
    return min(_parts(value, cap), cap)


def gold(actual: Value) -> Any:
    """The value a perfect answer holds for `actual` (its rendering when it has no literal)."""
    try:
        return to_python(actual)
    except NotDecodable:
        return render(actual)
