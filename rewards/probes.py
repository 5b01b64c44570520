"""White-box probes: questions about one point of a run, as ExecVerify and REval ask them.

A `Probe` asks one of
- "state":    the value (and so the type) of `variable` just after execution number `execution`
              of `line`;
- "next":     the line executed right after that execution of `line`, not counting the lines of
              the functions it calls; -1 when the run ends there or `line` never runs that often;
- "coverage": whether `line` runs at all; with no line, the set of lines that run.

Lines count in the traced execution (the call's, or the whole program's), main thread only;
`execution` counts from 1 over every frame running the line. `Run` indexes a trace once (each
line's executions with the variables after each, from `Trace.replay`); `answer` is a probe's
gold answer and `grade` scores one answer to it. `read_answers` finds one answer per probe in a
model's text: one value for one probe; for several, a list, a dict numbered from 1, or numbered
lines ("1. 7", "Q2: True"); `{"answers": [...]}` (the CodeRL+ template's JSON) either way.
`rewards.selection` chooses probes worth asking.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, get_args

import msgspec

from tracer import Trace, Value, render

from .compare import DEFAULT_RTOL, gold, matches
from .parse import ParseError, candidates, parse_answer, read_value
from .testcases import InvalidTask

Probed = Literal["state", "next", "coverage"]
PROBED: tuple[Probed, ...] = get_args(Probed)
NOT_ASKED = frozenset({"function", "class", "module", "generator", "coroutine"})  # values not worth asking


class Probe(msgspec.Struct, frozen=True, kw_only=True):
    """One white-box question about a run (see the module docstring)."""

    question: Probed
    line: int | None = None
    execution: int = 1
    variable: str | None = None

    def check(self) -> None:
        """Raise InvalidTask when the probe lacks what its question needs."""
        if self.line is not None and self.line < 1:
            raise InvalidTask(f"a probe's line is a line number from 1, got {self.line}")
        if self.execution < 1:
            raise InvalidTask(f"a probe's execution counts from 1, got {self.execution}")
        if self.question != "coverage" and self.line is None:
            raise InvalidTask(f"a {self.question} probe needs a line")
        if self.question == "state" and not self.variable:
            raise InvalidTask("a state probe needs a variable")

    def text(self) -> str:
        """The question in words, as a prompt asks it."""
        nth = f"for the {ordinal(self.execution)} time"
        if self.question == "state":
            return (
                f"What is the value of `{self.variable}` just after line {self.line} runs {nth}? "
                "Give it as a Python literal (its type shows: 1, 1.0 and '1' differ)."
            )
        if self.question == "next":
            return (
                f"Which line runs right after line {self.line} runs {nth} (lines inside the functions it calls "
                f"do not count)? Give its number, or -1 if the execution ends there or line {self.line} does "
                "not run that often."
            )
        if self.line is None:
            return "Which lines run? Give the sorted list of their numbers."
        return f"Does line {self.line} run? Answer True or False."

    def label(self) -> str:
        """A short name of the probe, for a score's details."""
        if self.question == "state":
            return f"state of {self.variable} after line {self.line} (#{self.execution})"
        if self.question == "next":
            return f"next after line {self.line} (#{self.execution})"
        return "coverage" if self.line is None else f"coverage of line {self.line}"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def as_probes(raw: Iterable[Any] | None) -> list[Probe]:
    """Probes from Probe structs or dicts of their fields (InvalidTask when malformed)."""
    try:
        probes = [p if isinstance(p, Probe) else msgspec.convert(p, Probe) for p in raw or ()]
    except msgspec.ValidationError as error:
        raise InvalidTask(f"malformed probe: {error}") from None
    for probe in probes:
        probe.check()
    return probes


# ---------------------------------------------------------------- the run, indexed


@dataclass(frozen=True)
class Execution:
    """One execution of a line: the variables after it, those it changed, and the next line."""

    line: int
    depth: int
    after: dict[str, Value]
    changed: dict[str, Value]
    next_line: int = -1


class Run:
    """A trace's line executions (the traced call's, or the program's; main thread), by line."""

    def __init__(self, trace: Trace) -> None:
        main = {frame.id for frame in trace.frames if frame.thread == 0}
        start = max(trace.call_step, 0)
        states = [s for s in trace.replay() if s.index >= start and s.step.event == "line" and s.step.frame in main]
        following = [-1] * len(states)
        later: list[tuple[int, int]] = []  # (depth, line) of later executions, the nearest no deeper on top
        for i in range(len(states) - 1, -1, -1):
            depth = states[i].frame.depth
            while later and later[-1][0] > depth:
                later.pop()
            following[i] = later[-1][1] if later else -1
            later.append((depth, states[i].step.line))
        self.executions = [
            Execution(s.step.line, s.frame.depth, s.after, s.changed, n) for s, n in zip(states, following)
        ]
        self.by_line: dict[int, list[Execution]] = {}
        for execution in self.executions:
            self.by_line.setdefault(execution.line, []).append(execution)

    def find(self, probe: Probe) -> Execution | None:
        runs = self.by_line.get(probe.line or 0, [])
        return runs[probe.execution - 1] if probe.execution <= len(runs) else None

    def state(self, probe: Probe) -> Value:
        """The value a state probe asks about (InvalidTask when there is none)."""
        execution = self.find(probe)
        if execution is None:
            raise InvalidTask(f"line {probe.line} does not run {probe.execution} times")
        value = execution.after.get(probe.variable or "")
        if value is None:
            raise InvalidTask(f"`{probe.variable}` is not defined after line {probe.line} (#{probe.execution})")
        return value


def answer(probe: Probe, run: Run) -> Any:
    """The gold answer to a probe."""
    if probe.question == "state":
        return gold(run.state(probe))
    if probe.question == "next":
        execution = run.find(probe)
        return execution.next_line if execution is not None else -1
    return sorted(run.by_line) if probe.line is None else probe.line in run.by_line


# ---------------------------------------------------------------- reading answers


class _Missing:
    """No answer was found for this probe."""

    def __repr__(self) -> str:
        return "<no answer>"


MISSING: Any = _Missing()
_NUMBERED = re.compile(
    r"^\s*(?:[-*]\s*)?(?:\*\*)?(?:(?:q|question|a|answer)\s*)?(\d{1,3})\s*(?:\*\*)?[.):\]](?:\*\*)?\s+(.*?)\s*$",
    re.I,
)
_PREFIX = re.compile(
    r"^\s*(?:\*\*)?\s*(?:the\s+)?(?:final\s+)?answers?\s*(?:\*\*)?\s*(?:is\b|[:=])\s*(?:\*\*)?\s*", re.I
)
_ASSIGNED = re.compile(r"^\s*`?[A-Za-z_]\w*`?\s*(?:=|:|is)\s*")


class _Numbered(dict[int, Any]):
    """Answers read from numbered lines (never from a model's literal)."""


class Unwrapped(NamedTuple):
    """A single answer given as {"answer": x} or {"answers": [x]}: x, unless a state's real value is
    that dict itself (an answer is read both ways; only one can be right)."""

    inner: Any
    whole: Any


def read_answers(raw: Any, probes: Sequence[Probe]) -> list[Any]:
    """One answer per probe (MISSING where none is found) from a model's text or a parsed value."""
    forms = [_form(p) for p in probes] or ["lines"]
    value = whole = _find(raw, forms)
    wrapped = False
    if isinstance(value, dict) and not isinstance(value, _Numbered) and len(value) == 1:
        key = next(iter(value))
        if isinstance(key, str) and key.lower() in ("answers", "answer"):
            value, wrapped = value[key], key.lower() == "answers"
    if len(forms) == 1:
        if isinstance(value, _Numbered):
            return [value.get(1, MISSING)]
        if wrapped and isinstance(value, list) and len(value) == 1:
            value = value[0]
        return [Unwrapped(value, whole) if value is not whole else value]
    if isinstance(value, (list, tuple)):
        return [value[i] if i < len(value) else MISSING for i in range(len(forms))]
    numbered = _by_number(value) if isinstance(value, dict) else {}
    if numbered:
        return [numbered.get(i + 1, MISSING) for i in range(len(forms))]
    shown = "numbered lines" if isinstance(value, _Numbered) else type(value).__name__
    raise ParseError(f"{len(forms)} questions take a list with one answer each (or numbered lines), got {shown}")


def _form(probe: Probe) -> str:
    """How an answer to the probe reads: state, next, coverage (a yes or no), or lines (a set)."""
    return "lines" if probe.question == "coverage" and probe.line is None else probe.question


def _by_number(value: dict[Any, Any]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for key, item in value.items():
        digits = re.fullmatch(r"\s*(?:q|question|a|answer)?\s*(\d{1,3})\s*", str(key), re.I)
        if digits is not None and not isinstance(key, bool):
            out[int(digits.group(1))] = item
    return out


def _find(raw: Any, forms: list[str]) -> Any:
    """The answer in a model's output: numbered lines, else the value its last line (or, failing
    that, the rest of the text, as `parse_answer` reads it) holds; inside <answer> or \\boxed{} if
    there is one."""
    if not isinstance(raw, str):
        return raw
    if not raw.strip():
        raise ParseError("the answer is empty")
    region = next((text for where, text in candidates(raw) if where in ("answer_tag", "boxed")), raw)
    numbered = _numbered_lines(region)
    if numbered and (len(forms) > 1 or list(numbered) == [1]):
        return _Numbered({i: _read(text, forms[i - 1] if i <= len(forms) else "state") for i, text in numbered.items()})
    lines = [line for line in region.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    single = forms[0] if len(forms) == 1 else ""
    value = _read(last, single)
    if value is not last or single in ("next", "coverage"):
        return value  # "Line 7", "Yes, it runs": read by the probe's own rules
    try:
        return parse_answer(region).value
    except ParseError as error:
        if single:
            return last
        raise ParseError(f"{len(forms)} questions take a list with one answer each, or numbered lines: {error}")


def _numbered_lines(text: str) -> dict[int, str]:
    """The block of numbered lines that ends the text, numbered from 1 ({} if none)."""
    block: list[tuple[int, str]] = []
    for line in reversed(text.strip().splitlines()):
        if not line.strip():
            if block:
                break
            continue
        found = _NUMBERED.match(line)
        if found is None or not found.group(2):
            break
        block.append((int(found.group(1)), found.group(2)))
    block.reverse()
    if [n for n, _ in block] != list(range(1, len(block) + 1)):
        return {}
    return dict(block)


def _read(text: str, form: str) -> Any:
    """A literal in the text (after "Answer:", or "x =" for a state), else the text itself."""
    stripped = _PREFIX.sub("", text).strip().strip("`").strip()
    attempts = [stripped, _ASSIGNED.sub("", stripped, count=1)] if form == "state" else [stripped]
    for attempt in attempts:
        try:
            return read_value(attempt)
        except ParseError:
            continue
    return text


# ---------------------------------------------------------------- grading one answer


def grade(
    probe: Probe, given: Any, run: Run, mode: str = "typed", rtol: float = DEFAULT_RTOL
) -> tuple[float, str, str]:
    """The score of one answer to a probe in [0, 1], with the answer and the truth as text."""
    if probe.question == "state":
        real = run.state(probe)
        ways = [given.inner, given.whole] if isinstance(given, Unwrapped) else [given]
        return max(_grade_state(way, real, mode, rtol) for way in ways), _show(ways[0]), render(real)[:300]
    if isinstance(given, Unwrapped):
        given = given.inner
    truth = answer(probe, run)
    read = _READERS[_form(probe)](given)
    if read is None:
        return 0.0, _show(given), _show(truth)
    if isinstance(truth, list):
        return _f1(set(read), set(truth)), _show(sorted(read)), _show(truth)
    return float(read == truth), _show(read), _show(truth)


def _grade_state(given: Any, real: Value, mode: str, rtol: float) -> float:
    """1.0 when the answer is the value, or {"value": the value, "type": its type name}."""
    if given is MISSING:
        return 0.0
    if matches(given, real, mode, rtol):
        return 1.0
    if isinstance(given, dict) and "value" in given and set(given) <= {"value", "type"}:
        named = given.get("type")
        if named is not None and str(named).strip().lower() not in type_names(real):
            return 0.0
        return float(matches(given["value"], real, mode, rtol))
    return 0.0


def type_names(value: Value) -> set[str]:
    """The names (lower case) an answer may give the type of an encoded value: int, nonetype or none,
    counter, point, decimal, datetime.date or date ..."""
    if value.t == "none":
        return {"nonetype", "none"}
    if value.t == "call" and isinstance(value.v, str):  # Decimal, datetime.date, np.int64 ...
        return {value.v.lower(), value.v.rsplit(".", 1)[-1].lower()}
    return {(value.type or value.t).lower()}


def _read_next(given: Any) -> int | None:
    if given is None:
        return -1
    if type(given) is int:
        return given
    if isinstance(given, str):
        numbers = re.findall(r"-?\d+", given)
        if numbers:
            return int(numbers[-1])
        if re.search(r"\b(end|ends|none|terminates|exits|no line)\b", given, re.I):
            return -1
    return None


def _read_covered(given: Any) -> bool | None:
    if isinstance(given, bool):
        return given
    if type(given) is int and given in (0, 1):
        return bool(given)
    if isinstance(given, str):
        if re.search(r"\b(no|false|not|never|doesn't|isn't|skipped)\b", given, re.I):
            return False
        if re.search(r"\b(yes|true|runs|executes|executed|reached)\b", given, re.I):
            return True
    return None


def _read_lines(given: Any) -> list[int] | None:
    if isinstance(given, dict) and len(given) == 1:
        given = next(iter(given.values()))
    if isinstance(given, str):
        given = [int(n) for n in re.findall(r"\d+", given)]
    if isinstance(given, (list, tuple, set, frozenset)) and all(type(n) is int for n in given):
        return list(given)
    return None


_READERS: dict[str, Callable[[Any], Any]] = {"next": _read_next, "coverage": _read_covered, "lines": _read_lines}


def _f1(predicted: set[int], real: set[int]) -> float:
    if not predicted and not real:
        return 1.0
    return 2 * len(predicted & real) / (len(predicted) + len(real))


def _show(value: Any) -> str:
    if value is MISSING:
        return "<no answer>"
    text = repr(value)
    return text if len(text) <= 300 else text[:300] + "..."
