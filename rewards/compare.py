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
"""

from __future__ import annotations

import math
from typing import Any

from tracer import NotDecodable, Value, render, to_python

DEFAULT_RTOL = 1e-9


def typed_equal(a: Any, b: Any, rtol: float = DEFAULT_RTOL) -> bool:
    t = type(a)
    if t is not type(b):
        return False
    if t is float:
        if a != a or b != b:
            return bool(a != a and b != b)
        return bool(a == b or abs(a - b) <= rtol * max(abs(a), abs(b)))
    if t is complex:
        return typed_equal(a.real, b.real, rtol) and typed_equal(a.imag, b.imag, rtol)
    if t is list or t is tuple:
        return len(a) == len(b) and all(typed_equal(x, y, rtol) for x, y in zip(a, b))
    if t is dict:
        if len(a) != len(b):
            return False
        keyed = {(type(k), k): v for k, v in b.items()}
        return all((type(k), k) in keyed and typed_equal(v, keyed[(type(k), k)], rtol) for k, v in a.items())
    if t is set or t is frozenset:
        return len(a) == len(b) and {(type(x), x) for x in a} == {(type(y), y) for y in b}
    return bool(a == b)


def to_json_value(value: Any) -> Any:
    """A Python value as CodeRL+ stores it: JSON (tuples and sets as lists, dict keys as str)."""
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [to_json_value(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


_NONE = {"None", "none", "null", "Null", "NULL"}
_TRUE = {"True", "true", "TRUE", "1"}
_FALSE = {"False", "false", "FALSE", "0"}


def coderl_equal(predicted: Any, expected: Any) -> bool:
    """CodeRL+'s lenient check_value_equality, reimplemented."""
    if predicted == expected:
        return True
    p, e = str(predicted).strip(), str(expected).strip()
    if (p in _NONE and e in _NONE) or (p in _TRUE and e in _TRUE) or (p in _FALSE and e in _FALSE):
        return True
    if not isinstance(predicted, bool) and not isinstance(expected, bool):
        try:
            if abs(float(predicted) - float(expected)) < 1e-9:
                return True
        except (TypeError, ValueError, OverflowError):
            pass
    if isinstance(predicted, list) and isinstance(expected, list):
        return len(predicted) == len(expected) and all(coderl_equal(x, y) for x, y in zip(predicted, expected))
    if isinstance(predicted, dict) and isinstance(expected, dict):
        return set(predicted) == set(expected) and all(coderl_equal(predicted[k], expected[k]) for k in predicted)
    return p == e


def matches(predicted: Any, actual: Value, mode: str = "typed", rtol: float = DEFAULT_RTOL) -> bool:
    """Does the predicted Python value match the real (encoded) one?"""
    try:
        real = to_python(actual)
    except NotDecodable:
        text = render(actual)
        return isinstance(predicted, str) and predicted.strip() == text
    return same_value(predicted, real, mode, rtol)


def same_value(predicted: Any, real: Any, mode: str = "typed", rtol: float = DEFAULT_RTOL) -> bool:
    """Does the predicted Python value match the real Python value (typed, or CodeRL+'s lenient rules)?"""
    if mode == "coderl_plus":
        return coderl_equal(to_json_value(predicted), to_json_value(real))
    return typed_equal(predicted, real, rtol)


def gold(actual: Value) -> Any:
    """The value a perfect answer holds for `actual` (its rendering when it has no literal)."""
    try:
        return to_python(actual)
    except NotDecodable:
        return render(actual)
