"""A `Trace` in the trace format of Meta's Code World Model (CWM; facebookresearch/cwm, PROMPTING_GUIDE.md).

    export = tracer.cwm.to_cwm(trace, source)
    export.prompt      # <|trace_context_start|>SOURCE, its entry line marked "  # << START_OF_TRACE", <|frame_sep|>
    export.completion  # the frames, then <|end_of_text|>: what a CWM model predicts after the prompt

CWM writes an execution as frames, each an observation (local variables) and an action (a source line):

    <|call_sep|>LOCALS<|action_sep|>SOURCE<|frame_sep|>
    <|line_sep|>LOCALS<|action_sep|>SOURCE<|frame_sep|>
    <|return_sep|><|action_sep|>SOURCE<|arg_sep|>VALUE<|frame_sep|>
    <|exception_sep|><|action_sep|>SOURCE<|arg_sep|>VALUE<|frame_sep|>

LOCALS is a JSON object of the frame's variables as repr-like strings (`tracer.render`): for a call,
its arguments; for a line, the variables just before the line runs. A value equal to the one last
shown since the last call or return frame is written ".." (CWM's own reader, demos/cwmdbg.py, looks
back that far and no further, so every call and every return to a caller shows its values again).
SOURCE is the line's text with its newline; VALUE is a JSON string: the returned value (None for a
frame left by an exception, as `sys.settrace` reports it) or the exception as `Type('message')`.

The frames start at the entry point (the call expression's function, or the module of a program),
include the functions it calls, and end when the entry point's frame returns (main thread only). The
prompt leaves out `<|begin_of_text|>`, which a tokenizer adds as its BOS token.
"""

from __future__ import annotations

import json

import msgspec

from .render import render
from .schema import Step, Trace, Value

BEGIN_OF_TEXT = "<|begin_of_text|>"
END_OF_TEXT = "<|end_of_text|>"
FRAME_SEP = "<|frame_sep|>"
ACTION_SEP = "<|action_sep|>"
RETURN_SEP = "<|return_sep|>"
CALL_SEP = "<|call_sep|>"
LINE_SEP = "<|line_sep|>"
EXCEPTION_SEP = "<|exception_sep|>"
ARG_SEP = "<|arg_sep|>"
TRACE_CONTEXT_START = "<|trace_context_start|>"
START_MARKER = "  # << START_OF_TRACE"
UNCHANGED = ".."
EVENT_SEPS = {"call": CALL_SEP, "line": LINE_SEP, "return": RETURN_SEP, "exception": EXCEPTION_SEP}


class CWMTrace(msgspec.Struct, frozen=True):
    """A trace in CWM's format: the prompt (source context) and the frames a model should predict."""

    prompt: str
    completion: str
    entry_line: int  # the line marked START_OF_TRACE (0: the run has no entry point to mark)


def context(source: str, entry_line: int) -> str:
    """The source with the entry line marked, as CWM's prompts show it."""
    lines = source.splitlines()
    if 0 < entry_line <= len(lines):
        lines[entry_line - 1] += START_MARKER
    return "\n".join(lines) + "\n"


def to_cwm(trace: Trace, source: str) -> CWMTrace:
    """The trace of the entry point (the call expression's call, or the whole program) in CWM's format."""
    lines = source.splitlines()

    def text(line: int) -> str:
        return (lines[line - 1] if 0 < line <= len(lines) else "") + "\n"

    steps = list(_entry_states(trace))
    entry_line = steps[0][0].line if steps else 0
    frames: list[str] = []
    shown: dict[str, str] = {}  # what CWM's reader resolves ".." to: the values shown since the last call or return
    for step, variables in steps:
        if step.event in ("call", "line"):
            if step.event == "call":
                shown = {}
            observed = {}
            for name, value in variables.items():
                written = render(value)
                observed[name] = UNCHANGED if shown.get(name) == written else written
                shown[name] = written
            frames.append(f"{EVENT_SEPS[step.event]}{json.dumps(observed)}{ACTION_SEP}{text(step.line)}")
            continue
        if step.event == "return":
            returned = render(step.value) if step.value is not None and step.exception is None else "None"
            shown = {}
        else:
            info = step.exception
            returned = f"{info.type}({info.message!r})" if info is not None else "None"
        frames.append(f"{EVENT_SEPS[step.event]}{ACTION_SEP}{text(step.line)}{ARG_SEP}{json.dumps(returned)}")
    completion = "".join(frame + FRAME_SEP for frame in frames) + END_OF_TEXT
    return CWMTrace(TRACE_CONTEXT_START + context(source, entry_line) + FRAME_SEP, completion, entry_line)


def _entry_states(trace: Trace) -> list[tuple[Step, dict[str, Value]]]:
    """The main thread's steps from the entry point's call to its return, each with the variables
    CWM shows with it (a call: its arguments; a line: the variables before it runs)."""
    main = {frame.id for frame in trace.frames if frame.thread == 0}
    start = max(trace.call_step, 0)
    out: list[tuple[Step, dict[str, Value]]] = []
    entry = -1
    for state in trace.replay():
        step = state.step
        if state.index < start or step.frame not in main:
            continue
        if entry < 0:
            if step.event != "call":
                continue
            entry = step.frame
        out.append((step, state.after if step.event == "call" else state.before))
        if step.event == "return" and step.frame == entry:
            break
    return out
