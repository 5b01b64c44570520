"""The person-readable listing of a trace (what `execalign trace` shows), snoop-style.

Each executed line with its source and what it changed, calls and returns
indented by depth, the program's stdout after the step that wrote it (`out>`),
a normal `sys.exit` as an exit rather than an error, then how the run ended. A
value changed in place in a few places shows as those places (`self.pos = 3`,
`seen['a'] = 3`, `xs[2] = 5`) rather than whole. Values are read from
`Trace.replay()`.
"""

from __future__ import annotations

from collections.abc import Iterator

from .render import render
from .schema import StepState, Trace, Value

_COLORS = {
    "dim": "\x1b[2m",
    "var": "\x1b[32m",
    "call": "\x1b[36m",
    "exc": "\x1b[31m",
    "out": "\x1b[33m",
    "off": "\x1b[0m",
}
_MAX_SHOWN = 200  # characters of one rendered value in the listing
_MAX_PARTS = 3  # a container with at most this many changed parts shows them alone (`self.pos = 3`)


def listing(result: Trace, color: bool = False) -> str:
    """The person-readable listing of a trace (see the module docstring)."""
    c = _COLORS if color else dict.fromkeys(_COLORS, "")
    sources = _Sources()
    output = _output_by_step(result)
    out: list[str] = []
    for state in result.replay():
        pad = "    " * state.frame.depth
        out.extend(pad + line for line in _step_lines(state, sources, c))
        out.extend(f"{pad}{c['out']}  out> {text}{c['off']}" for text in output.get(state.index, ()))
    if result.stopped is not None:
        more = "; the program ran on untraced" if result.stopped.reason in ("max_steps", "max_values") else ""
        detail = f": {result.stopped.detail}" if result.stopped.detail else ""
        out.append(
            f"{c['exc']}... recording stopped ({result.stopped.reason}) after {result.stopped.steps} steps"
            f"{detail}{more}{c['off']}"
        )
    out.extend(f"{c['out']}  out> {text}{c['off']}" for text in output.get(len(result.steps), ()))
    if result.dropped:
        out.append(
            f"{c['exc']}... {result.dropped} events not recorded (the code was at the recursion limit){c['off']}"
        )
    if result.exception is not None:
        out.append(f"{c['exc']}uncaught {result.exception.type}: {result.exception.message}{c['off']}")
    out.append(
        f"{c['dim']}{len(result.steps)} steps, {len(result.frames)} frames, exit status {result.exit_code},"
        f" {result.backend} on Python {result.python}{c['off']}"
    )
    return "\n".join(out) + "\n"


def _step_lines(state: StepState, sources: _Sources, c: dict[str, str]) -> Iterator[str]:
    step, frame = state.step, state.frame
    if step.event == "call":
        args = ", ".join(f"{k}={_short(v)}" for k, v in state.changed.items())
        yield f"{c['call']}>>> call {frame.function}({args}){c['off']}  {c['dim']}line {step.line}{c['off']}"
        return
    exiting = step.exception is not None and step.exception.type == "SystemExit"
    if step.event == "line":
        yield f"{c['dim']}{step.line:>5} |{c['off']} {sources.line(frame.file, step.line)}"
    elif step.event == "exception" and step.exception is not None:
        if exiting:
            yield f"{c['call']}  --- sys.exit({step.exception.message}){c['off']}"
        else:
            yield f"{c['exc']}  !!! {step.exception.type}: {step.exception.message}{c['off']}"
    elif step.event == "return":
        if exiting:
            what = "exit"
        elif step.exception is not None:
            what = f"raise {step.exception.type}"
        else:
            what = f"return {_short(step.value)}" if step.value is not None else "return"
        yield f"{c['call']}<<< {what}{c['off']}  {c['dim']}{frame.function}, line {step.line}{c['off']}"
    for name, value in state.changed.items():
        for target, shown in _assignments(name, state.before.get(name), value):
            assignment = f"{target} = {shown}" if shown else target
            yield f"{c['dim']}      :{c['off']}   {c['var']}{assignment}{c['off']}"
    for name in step.deleted:
        yield f"{c['dim']}      :{c['off']}   {c['var']}del {name}{c['off']}"


def _assignments(name: str, old: Value | None, new: Value, room: int = _MAX_PARTS) -> list[tuple[str, str]]:
    """What a change shows as: `self.pos = 3` when at most `room` attributes (keys, items) of an
    object (dict, list) changed in place (and, within them, `self.seen['a'] = 3`), else
    `name = <whole value>`. A dict or list none of whose entries is left shows whole."""
    whole = [(name, _short(new))]
    if old is None or old.t != new.t or old.type != new.type or old.more or new.more:
        return whole
    before: dict[str, Value]
    after: dict[str, Value]
    if new.t == "object":
        before, after = old.attrs or {}, new.attrs or {}
        target = "{}.{}".format
    elif new.t == "dict":
        before = {render(k): v for k, v in zip(old.keys or [], old.items or [])}
        after = {render(k): v for k, v in zip(new.keys or [], new.items or [])}
        target = "{}[{}]".format
    elif new.t == "list" and len(old.items or []) == len(new.items or []):
        before = {str(i): v for i, v in enumerate(old.items or [])}
        after = {str(i): v for i, v in enumerate(new.items or [])}
        target = "{}[{}]".format
    else:
        return whole
    changed = [k for k, v in after.items() if before.get(k) != v]
    gone = [k for k in before if k not in after]
    if (not changed and not gone) or len(changed) + len(gone) > room:
        return whole
    if new.t != "object" and before and all(k in changed or k in gone for k in before):
        return whole  # nothing of the old value is left: more likely a new one
    parts: list[tuple[str, str]] = []
    for k in changed:
        parts += _assignments(target(name, k), before.get(k), after[k], max(1, room - len(parts)))
    return parts + [(f"del {target(name, k)}", "") for k in gone]


def _output_by_step(result: Trace) -> dict[int, list[str]]:
    """The program's stdout, split into lines, by the step that wrote it (`Trace.stdout_at`)."""
    by_step: dict[int, list[str]] = {}
    start = 0
    for step, end in result.stdout_at:
        text = result.stdout[start:end]
        start = end
        if step >= 0 and text:
            by_step.setdefault(step, []).extend(text.rstrip("\n").split("\n"))
    return by_step


class _Sources:
    """Source lines of the traced files, read once."""

    def __init__(self) -> None:
        self.files: dict[str, list[str]] = {}

    def line(self, file: str, line: int) -> str:
        if file not in self.files:
            try:
                with open(file, encoding="utf-8", errors="replace") as f:
                    self.files[file] = f.read().splitlines()
            except OSError:
                self.files[file] = []
        lines = self.files[file]
        return lines[line - 1].rstrip() if 0 < line <= len(lines) else ""


def _short(value: Value) -> str:
    text = render(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + f"...<{len(text) - _MAX_SHOWN} more chars>"
