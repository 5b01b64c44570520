"""Comparing a predicted value with the real one.

Default (typed, exact): types must match exactly (`True != 1`, `(1, 2) != [1, 2]`,
`{1: x} != {"1": x}`), ints are compared exactly at any size, floats are equal
when |a - b| <= rtol * max(|a|, |b|) (DEFAULT_RTOL = 1e-9) or both are nan,
sets compare unordered, dict keys are typed. A real value with no Python
literal (an object, a function) matches the predicted text of its rendering.

`coderl_plus` reproduces CodeRL+'s checker: values as JSON (tuples are lists,
dict keys are strings), then its lenient rules: equal, or None/null/none,
True/true/1 and False/false/0 alike, numbers within 1e-9, lists and dicts
element by element, else equal text.

Every comparison is bounded: it spends a `Budget` of value nodes (one per node
visited, shared by all the comparisons of one score), and raises `OverBudget`
past it, so no value, however large or shared, costs more than the budget.
"""

from __future__ import annotations

import math
from typing import Any

from tracer import NotDecodable, Value, render, to_python

DEFAULT_RTOL = 1e-9
DEFAULT_BUDGET = 2_000_000  # value nodes one score may visit comparing (about a second of Python)


class OverBudget(Exception):
    """A comparison needed more work than its budget allows."""


class Budget:
    """Work left for the comparisons of one score, in value nodes visited."""

    def __init__(self, nodes: int = DEFAULT_BUDGET):
        self.nodes = self.left = nodes

    def spend(self, nodes: int = 1) -> None:
        self.left -= nodes
        if self.left < 0:
            raise OverBudget(f"comparing needed more than {self.nodes} value nodes")


def typed_equal(a: Any, b: Any, rtol: float = DEFAULT_RTOL, budget: Budget | None = None) -> bool:
    """Exact, typed equality (floats within `rtol`); raises OverBudget past `budget` nodes."""
    return _typed_equal(a, b, rtol, budget or Budget())


def _typed_equal(a: Any, b: Any, rtol: float, budget: Budget) -> bool:
    budget.spend()
    t = type(a)
    if t is not type(b):
        return False
    if t is float:
        if a != a or b != b:
            return bool(a != a and b != b)
        return bool(a == b or abs(a - b) <= rtol * max(abs(a), abs(b)))
    if t is complex:
        return _typed_equal(a.real, b.real, rtol, budget) and _typed_equal(a.imag, b.imag, rtol, budget)
    if t is list or t is tuple:
        return len(a) == len(b) and all(_typed_equal(x, y, rtol, budget) for x, y in zip(a, b))
    if t is dict:
        if len(a) != len(b):
            return False
        budget.spend(len(b))
        keyed = {(type(k), k): v for k, v in b.items()}
        return all((type(k), k) in keyed and _typed_equal(v, keyed[(type(k), k)], rtol, budget) for k, v in a.items())
    if t is set or t is frozenset:
        budget.spend(len(a) + len(b))
        return len(a) == len(b) and {(type(x), x) for x in a} == {(type(y), y) for y in b}
    if t is str or t is bytes:
        budget.spend(min(len(a), len(b)) // 64)
    return bool(a == b)


def to_json_value(value: Any, budget: Budget | None = None) -> Any:
    """A Python value as CodeRL+ stores it: JSON (tuples and sets as lists, dict keys as str)."""
    return _to_json_value(value, budget or Budget())


def _to_json_value(value: Any, budget: Budget) -> Any:
    budget.spend()
    if isinstance(value, (list, tuple)):
        return [_to_json_value(v, budget) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [_to_json_value(v, budget) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _to_json_value(v, budget) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, bytes)):
        budget.spend(len(value) // 64)
    return value


_NONE = {"None", "none", "null", "Null", "NULL"}
_TRUE = {"True", "true", "TRUE", "1"}
_FALSE = {"False", "false", "FALSE", "0"}


def coderl_equal(predicted: Any, expected: Any, budget: Budget | None = None) -> bool:
    """CodeRL+'s lenient check_value_equality, reimplemented (on JSON values: see `to_json_value`)."""
    return _coderl_equal(predicted, expected, budget or Budget())


def _coderl_equal(predicted: Any, expected: Any, budget: Budget) -> bool:
    budget.spend()
    if isinstance(predicted, list) and isinstance(expected, list):  # (a list's text is no None, True or number)
        return len(predicted) == len(expected) and all(_coderl_equal(x, y, budget) for x, y in zip(predicted, expected))
    if isinstance(predicted, dict) and isinstance(expected, dict):
        return set(predicted) == set(expected) and all(
            _coderl_equal(predicted[k], expected[k], budget) for k in predicted
        )
    p, e = _text(predicted, budget), _text(expected, budget)
    if predicted == expected:
        return True
    if (p in _NONE and e in _NONE) or (p in _TRUE and e in _TRUE) or (p in _FALSE and e in _FALSE):
        return True
    if not isinstance(predicted, bool) and not isinstance(expected, bool):
        try:
            if abs(float(predicted) - float(expected)) < 1e-9:
                return True
        except (TypeError, ValueError, OverflowError):
            pass
    return p == e


def _text(value: Any, budget: Budget) -> str:
    """`str(value).strip()`, its size paid for first (`to_json_value` has walked the value)."""
    if isinstance(value, (list, dict)):
        budget.spend(len(value))
    try:
        text = str(value)
    except ValueError:  # an int past Python's digit limit for str()
        return f"<int of {value.bit_length()} bits>" if isinstance(value, int) else "?"
    budget.spend(len(text) // 64)
    return text.strip()


_EXACT = (type(None), bool, int, str, bytes)  # types whose typed equality is plain ==, with their type


def exact_key(value: Any) -> Any:
    """A hashable key two values share exactly when `typed_equal` holds, for the common small values:
    None, bools, ints, strings, bytes, and lists or tuples of up to 64 of them; None for any other."""
    t = type(value)
    if t in _EXACT:
        return (t, value)
    if (t is list or t is tuple) and len(value) <= 64 and all(type(x) in _EXACT for x in value):
        return (t, tuple((type(x), x) for x in value))
    return None


def nodes(value: Any, cap: int) -> int:
    """How many nodes `value` has (containers, items, dict keys), counted up to `cap`."""
    count, stack = 0, [value]
    while stack and count < cap:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return min(count, cap)


class Real:
    """A real (encoded) value decoded once, to compare with many predictions."""

    __slots__ = ("text", "value")

    def __init__(self, actual: Value):
        try:
            self.value, self.text = to_python(actual), None
        except NotDecodable:  # no Python literal: the prediction is compared with its rendering
            self.value, self.text = None, render(actual)


def equal(
    predicted: Any, real: Real, mode: str = "typed", rtol: float = DEFAULT_RTOL, budget: Budget | None = None
) -> bool:
    """`matches`, for a real value already decoded."""
    if real.text is not None:
        return isinstance(predicted, str) and predicted.strip() == real.text
    budget = budget or Budget()
    if mode == "coderl_plus":
        loaded = _to_json_value(predicted, budget)
        try:  # a lenient match is no larger than the prediction's text: a larger real value is no match
            expected = _to_json_value(real.value, Budget(2 * _weight(loaded) + 64))
        except OverBudget:
            return False
        return _coderl_equal(loaded, expected, budget)
    return _typed_equal(predicted, real.value, rtol, budget)  # (bounded by the prediction's size)


def _weight(value: Any) -> int:
    """Nodes and string characters of a JSON value: how large a value it can leniently equal."""
    weight, stack = 0, [value]
    while stack:
        item = stack.pop()
        weight += 1 + (len(item) if isinstance(item, str) else 0)
        if isinstance(item, dict):
            stack.extend(item.values())
            weight += sum(len(k) for k in item)
        elif isinstance(item, list):
            stack.extend(item)
    return weight


def matches(
    predicted: Any, actual: Value, mode: str = "typed", rtol: float = DEFAULT_RTOL, budget: Budget | None = None
) -> bool:
    """Does the predicted Python value match the real (encoded) one? Raises OverBudget past `budget`."""
    return equal(predicted, Real(actual), mode, rtol, budget)


def gold(actual: Value) -> Any:
    """The value a perfect answer holds for `actual` (its rendering when it has no literal)."""
    try:
        return to_python(actual)
    except NotDecodable:
        return render(actual)
