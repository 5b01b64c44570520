"""The stdout comparator of stdio mode: exact, documented, tested.

Two outputs match when, after normalisation, they have the same lines:
- line endings: "\\r\\n" and "\\r" count as "\\n";
- trailing whitespace at the end of each line is ignored;
- trailing empty lines at the end of the output are ignored (so a missing or
  extra final newline does not matter), but the number of other lines must match;
- leading whitespace and whitespace inside a line are significant;
- with `float_tolerance`, tokens (split on whitespace) that both parse as floats
  match when |a - b| <= tol * max(1, |b|) (b is the expected token); other tokens
  must be equal.
`explain` says where the first difference is.
"""

from __future__ import annotations

import math


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _token_match(got: str, expected: str, tol: float) -> bool:
    if got == expected:
        return True
    try:
        a, b = float(got), float(expected)
    except ValueError:
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(b))


def explain(got: str, expected: str, float_tolerance: float | None = None) -> str | None:
    """None when the outputs match, else a one-line description of the first difference."""
    got_lines, expected_lines = _lines(got), _lines(expected)
    for number, (g, e) in enumerate(zip(got_lines, expected_lines), 1):
        if g == e:
            continue
        if float_tolerance is not None:
            gt, et = g.split(), e.split()
            if len(gt) == len(et) and all(_token_match(a, b, float_tolerance) for a, b in zip(gt, et)):
                continue
        return f"line {number}: expected {e[:200]!r}, got {g[:200]!r}"
    if len(got_lines) != len(expected_lines):
        return f"expected {len(expected_lines)} lines, got {len(got_lines)}"
    return None


def matches(got: str, expected: str, float_tolerance: float | None = None) -> bool:
    return explain(got, expected, float_tolerance) is None
