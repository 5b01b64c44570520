"""A predicted trace in Meta CWM's format (see `tracer.cwm`), read as a `steps` answer.

`is_cwm(text)` says whether an answer is one (it holds CWM's frame and action separators);
`read(text, code)` turns its frames into steps, as CWM's own reader (demos/cwmdbg.py) would:

- each frame's source text is looked up among the code's lines (the START_OF_TRACE marker and
  trailing whitespace ignored; indentation too when nothing matches exactly; of several equal
  lines, the first at or after the scope's previous line);
- a ".." value is the one last shown, looking back no further than the last call or return frame;
- only the first `MAX_CHARS` characters are read, in one linear pass (a longer answer's further
  frames are not read: they count as steps it did not predict);
- a line's changes are what differs between its variables and those of the next line frame of
  the same call (nested calls skipped). The last line of each call shows no changes: CWM's return
  frames carry no variables. `score_steps` therefore checks a CWM answer against the real trace
  as CWM shows it (`tracer.cwm.to_cwm` read back the same way), so that nothing CWM cannot show
  is asked for, and the real trace exported to CWM scores 1.0.

Values are read as Python literals (`tracer.from_literal`); one that is not a literal (an
object's rendering) stays `Opaque` text, equal only to the same text. A frame whose variables
are not JSON counts as a line with no variables, as in cwmdbg.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tracer import from_literal
from tracer.cwm import ACTION_SEP, ARG_SEP, CALL_SEP, END_OF_TEXT, EVENT_SEPS, FRAME_SEP, LINE_SEP, UNCHANGED

from .parse import MAX_CHARS

_MARKER = re.compile(r"\s*#\s*<<\s*START_OF_TRACE\s*$")
_EVENTS = {sep: event for event, sep in EVENT_SEPS.items()}


@dataclass(frozen=True)
class Opaque:
    """A shown value that is not a Python literal (an object's rendering): equal to the same text only."""

    text: str


@dataclass(frozen=True)
class Reading:
    """A CWM trace read as steps: each executed line (None where its text is not in the code) with its changes."""

    steps: list[tuple[int | None, dict[str, Any]]]
    frames: int  # frames read


def is_cwm(answer: Any) -> bool:
    return isinstance(answer, str) and ACTION_SEP in answer and any(sep in answer for sep in (LINE_SEP, CALL_SEP))


@dataclass
class _Scope:
    """One call being read: its last line frame (waiting for the next to show its changes)."""

    previous_line: int = 0
    pending: int = -1  # index in the steps of the line whose changes are not known yet
    shown: dict[str, str] = field(default_factory=dict)  # that line's variables, as text


def read(text: str, code: str) -> Reading:
    """The steps of a CWM-format trace of `code` (see the module docstring)."""
    sources = [_MARKER.sub("", line).rstrip() for line in code.splitlines()]
    body = text[:MAX_CHARS].split(END_OF_TEXT, 1)[0]
    steps: list[tuple[int | None, dict[str, Any]]] = []
    scopes = [_Scope()]
    frames = 0
    written_since: dict[str, str] = {}  # each name's value last written, since (and in) the last call or return frame
    for chunk in body.split(FRAME_SEP):
        chunk = chunk.lstrip()
        event = next((e for sep, e in _EVENTS.items() if chunk.startswith(sep)), None)
        if event is None or ACTION_SEP not in chunk:
            continue  # the prompt's context, or text that is no frame
        head, action = chunk[len(EVENT_SEPS[event]) :].split(ACTION_SEP, 1)
        written = _variables(head) if event in ("call", "line") else {}
        variables = {
            name: written_since.get(name, value) if value == UNCHANGED else value for name, value in written.items()
        }
        if event in ("call", "return"):  # ".." looks back no further than this frame
            written_since = {}
        written_since.update((name, value) for name, value in written.items() if value != UNCHANGED)
        frames += 1
        scope = scopes[-1]
        if event == "call":
            scopes.append(_Scope(shown=variables))
        elif event == "return":
            _settle(steps, scope, scope.shown)  # its last line: no variables to compare with
            if len(scopes) > 1:
                scopes.pop()
        elif event == "line":
            source = action.split(ARG_SEP, 1)[0]
            line = _line_number(source, sources, scope.previous_line)
            _settle(steps, scope, variables)
            steps.append((line, {}))
            scope.pending, scope.shown, scope.previous_line = len(steps) - 1, variables, line or scope.previous_line
    return Reading(steps, frames)


def _settle(steps: list[tuple[int | None, dict[str, Any]]], scope: _Scope, now: dict[str, str]) -> None:
    """The scope's pending line changed what differs between its variables and `now`."""
    if scope.pending >= 0:
        line, _ = steps[scope.pending]
        changed = {k: _value(v) for k, v in now.items() if scope.shown.get(k) != v}
        steps[scope.pending] = (line, changed)
        scope.pending = -1


def _variables(head: str) -> dict[str, str]:
    try:
        loaded = json.loads(head)
    except ValueError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in loaded.items()}


def _value(text: str) -> Any:
    try:
        return from_literal(text)
    except ValueError:
        return Opaque(text)


def _line_number(source: str, sources: list[str], previous: int) -> int | None:
    wanted = _MARKER.sub("", source.rstrip("\n")).rstrip()
    found = [i + 1 for i, line in enumerate(sources) if line == wanted]
    if not found and wanted.strip():
        found = [i + 1 for i, line in enumerate(sources) if line.strip() == wanted.strip()]
    if not found:
        return None
    return next((n for n in found if n >= previous), found[0])
