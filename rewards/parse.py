"""Find and parse the answer in a model's free text, without ever evaluating code.

Where the answer is looked for, in order (the first place that has one wins):
`<answer>...</answer>` (the last), `\\boxed{...}` (the last), a fenced block
(the last), the last non-empty line (the CodeRL+ format puts its JSON there), the last
balanced `{...}` or `[...]` (outermost), the whole text. The candidate is read as a Python literal
(`tracer.from_literal`, built on `ast`, never `eval`), then as JSON (for true/false/null).

Only the last `MAX_CHARS` characters are read, every search is linear in them
(the bracket scan stops after `SCAN_BUDGET` bracket and quote characters, and says
so), literals are size-capped, and reasons are cut to `MAX_REASON` characters, so no
input can make parsing slow, large or crash.
"""

from __future__ import annotations

import ast
import bisect
import re
import warnings
from typing import Any

import msgspec

from tracer import from_literal
from tracer.literals import MAX_LITERAL_DEPTH

MAX_CHARS = 200_000
SCAN_BUDGET = 500_000  # bracket, quote and backslash characters visited by the balanced-bracket scan
MAX_REASON = 200  # characters kept of each reason a candidate did not parse
_SPANS_TRIED = 200


class ParseError(ValueError):
    """The answer could not be found or read; the message says why."""


class Parsed(msgspec.Struct, frozen=True):
    value: Any  # the parsed Python value
    text: str  # the candidate text it was read from
    where: str  # answer_tag, boxed, fence, last_line, balanced, whole


_OPEN_TAG = re.compile(r"<answer>", re.I)
_CLOSE_TAG = re.compile(r"</answer>", re.I)
_SPECIAL = re.compile(r"[\[\]{}\"'\\]")
_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*[ \t]*\n(.*?)```", re.S)


def _boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def _answer_tag(text: str) -> str | None:
    """The content of the last `<answer>` that is closed, up to its first `</answer>`."""
    closes = [m.start() for m in _CLOSE_TAG.finditer(text)]
    if not closes:
        return None
    opening = None
    for m in _OPEN_TAG.finditer(text, 0, closes[-1]):
        opening = m.end()
    if opening is None:
        return None
    return text[opening : closes[bisect.bisect_left(closes, opening)]]


def _balanced_spans(text: str, notes: list[str]) -> list[tuple[int, int]]:
    """Spans of balanced brackets that start at one of the last openings (quote-aware).

    Only bracket, quote and backslash characters are visited, at most `SCAN_BUDGET`
    of them in all; past that the scan stops and says so in `notes`."""
    openings = [m.start() for m in re.finditer(r"[\[{]", text)][-_SPANS_TRIED:]
    special = [m.start() for m in _SPECIAL.finditer(text, openings[0])] if openings else []
    spans: list[tuple[int, int]] = []
    budget = SCAN_BUDGET
    for start in openings:
        stack: list[str] = []
        quote, skip_to = "", 0
        for k in range(bisect.bisect_left(special, start), len(special)):
            budget -= 1
            if budget < 0:
                notes.append(f"balanced: gave up after {SCAN_BUDGET} bracket and quote characters")
                return sorted(spans, key=lambda s: (-s[1], s[0]))
            j = special[k]
            ch = text[j]
            if j < skip_to:
                continue  # the character after a backslash in a string
            if quote:
                if ch == "\\":
                    skip_to = j + 2
                elif ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch in "[{":
                stack.append("]" if ch == "[" else "}")
            elif ch in "]}":
                if not stack or stack.pop() != ch:
                    break
                if not stack:
                    spans.append((start, j + 1))
                    break
    return sorted(spans, key=lambda s: (-s[1], s[0]))


def read_value(text: str) -> Any:
    """A Python literal, else JSON; raises ParseError."""
    try:
        return from_literal(text)
    except (ValueError, RecursionError, MemoryError) as literal_error:
        try:
            value = msgspec.json.decode(text.strip())
        except (msgspec.DecodeError, ValueError, RecursionError, MemoryError):
            raise ParseError(str(literal_error) or type(literal_error).__name__) from None
        if _deeper_than(value, MAX_LITERAL_DEPTH - 1):  # the nesting a Python literal may have
            raise ParseError(f"JSON value nested deeper than {MAX_LITERAL_DEPTH - 1}")
        return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether a decoded JSON value nests lists and dicts more than `limit` deep (walked level by level)."""
    level = [value]
    for _ in range(limit + 1):
        level = [
            inner
            for outer in level
            if isinstance(outer, (list, dict))
            for inner in (outer.values() if isinstance(outer, dict) else outer)
        ]
        if not level:
            return False
    return True


def candidates(text: str, notes: list[str] | None = None) -> list[tuple[str, str]]:
    """(where, candidate text) in the order they are tried; why a place was given up on goes to `notes`."""
    notes = [] if notes is None else notes
    out: list[tuple[str, str]] = []
    tag = _answer_tag(text)
    if tag is not None:
        out.append(("answer_tag", tag))
    boxed = _boxed(text)
    if boxed is not None:
        out.append(("boxed", boxed))
    fences = _FENCE.findall(text)
    if fences:
        out.append(("fence", fences[-1]))
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines:
        out.append(("last_line", lines[-1]))
    for start, end in _balanced_spans(text, notes)[:3]:
        out.append(("balanced", text[start:end]))
    out.append(("whole", text))
    return out


def _reason(where: str, error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{where}: {text if len(text) <= MAX_REASON else text[:MAX_REASON] + '...'}"


def parse_answer(text: Any) -> Parsed:
    """The answer in a model's output (a str), or an already parsed value passed through."""
    if not isinstance(text, str):
        return Parsed(text, "", "given")
    if not text.strip():
        raise ParseError("the answer is empty")
    text = text[-MAX_CHARS:]
    reasons: list[str] = []
    for where, candidate in candidates(text, reasons):
        if not candidate.strip():
            continue
        try:
            return Parsed(read_value(candidate), candidate, where)
        except ParseError as error:
            reasons.append(_reason(where, error))
        if where in ("answer_tag", "boxed", "fence"):
            break  # an explicitly marked answer that does not parse is the answer, and it is wrong
    raise ParseError("no Python or JSON value found (" + "; ".join(reasons[:3]) + ")")


def parse_arguments(text: Any, entry_point: str | None = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """CRUXEval-I answers: `'abc', 2` or `f('abc', 2)` (literals only) -> (args, kwargs)."""
    if not isinstance(text, str):
        return (tuple(text) if isinstance(text, (list, tuple)) else (text,)), {}
    last = ParseError("no arguments found")
    for _, candidate in candidates(text[-MAX_CHARS:]):
        candidate = candidate.strip().strip("`").strip()
        if candidate.startswith("assert "):
            candidate = candidate[len("assert ") :].split("==")[0].strip()
        try:
            with warnings.catch_warnings():  # odd escapes in model output are not worth a warning
                warnings.simplefilter("ignore")
                node = ast.parse(candidate, mode="eval").body
        except (SyntaxError, ValueError, MemoryError, RecursionError) as error:
            last = ParseError(_reason("not an argument list", error))
            continue
        try:
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if entry_point and node.func.id != entry_point:
                    raise ParseError(f"the call is to {node.func.id}, not {entry_point}")
                args = tuple(from_literal(ast.unparse(a)) for a in node.args)
                kwargs = {k.arg: from_literal(ast.unparse(k.value)) for k in node.keywords if k.arg}
                return args, kwargs
            value = from_literal(candidate)
            return (value if isinstance(node, ast.Tuple) else (value,)), {}
        except (ValueError, RecursionError, MemoryError) as error:
            last = ParseError(_reason("arguments must be literals", error))
    raise last
