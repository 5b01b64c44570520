"""execalign's tracer: what every variable holds, line by line.

    import tracer
    t = tracer.trace("def f(x):\\n    y = x * 2\\n    return y + 1", call="f(3)")
    tracer.to_python(t.returned)          # 7
    for s in t.replay():                  # every step, with its frame's variables before and after it
        if s.index >= t.call_step:        # the steps of the call f(3)
            print(s.step.event, s.step.line, {k: tracer.render(v) for k, v in s.after.items()})
    # call 1 {'x': '3'}
    # line 2 {'x': '3', 'y': '6'}         (s.before: {'x': '3'}; s.changed: {'y': '6'})
    # line 3 {'x': '3', 'y': '6'}
    # return 3 {'x': '3', 'y': '6'}
    t.to_json(); tracer.Trace.from_json(...)

Public API (kept this small on purpose):

- `trace(source, call=None, *, backend="auto", stdin=None, record="lines", **limits) -> Trace`
  runs a snippet, then the call expression if given, in this process.
  `record="final"` records calls and returns only (final values, return
  values), at close to untraced speed.
- `trace_file(path, argv=(), *, call=None, backend="auto", timeout=None, record="lines", **limits) -> Trace`
  runs a file (or a directory's `__main__.py`) as `__main__`; `trace_module(name, argv)`
  runs a module as `python -m` does.
- `Trace`, `Step`, `Frame`, `Value`, `ExceptionInfo`, `Stop`, `Edit`, `Splice`:
  the msgspec schema (`Trace.to_json/from_json/to_msgpack/from_msgpack`).
- `Trace.replay()`: per step, a `StepState` with the step's frame (`Frame`:
  function, file, depth), the line's hit count, and the frame's variables
  `before` and `after` it and the whole new values of those it `changed`. Read
  variable values from here, never from `Step.changes`/`Step.edits` (a
  container changed in place is stored as an `Edit` of its previous value).
- `encode(obj)`, `to_python(value)`, `render(value)`, `from_literal(text)`: the value codec;
  `to_literal(obj)`: exact Python source of a value (`from_literal`'s inverse, no caps).
- `exception_info(exc)`: an exception's type and message, made without user code.
- `TraceLimits`: the caps accepted as `**limits`; `EncodeLimits`: the caps of one value.
- `env`: what differs between the Python versions (`env.HAS_MONITORING` ...).
- `cwm.to_cwm(trace, source)`: the trace in Meta CWM's trace format (prompt and frames).

Backends: "monitoring" (sys.monitoring, Python 3.12+, the default there),
"settrace" (sys.settrace, the default before 3.12), and "none" (run the code
the same way without recording). Only the traced source's own code objects are
recorded; calls into the standard library or installed packages are single
steps. All threads that run the traced code are recorded (`Frame.thread` tells
them apart).

`trace` and `trace_file` run the code in the calling process: use them for
trusted code or inside a sandbox child. Untrusted code goes through `sandbox`.

Modules: `schema` (the Structs, `replay`), `encode` / `decode` / `render` /
`literals` (values to and from objects and text), `library` (the library
values they build: numpy, Decimal, datetime ...), `run` (the one runner and
how a run ends), `program` (files, directories, modules as `python` runs them;
timeouts and signals), `recorder` (frame events to steps), `edits` (what a step
stores for a changed container), `codeinfo` (what each line can change),
`backends/` (settrace, sysmon), `capture` (the program's standard streams),
`env` (version differences), `cwm` (Meta CWM's trace format), `cli` (`execalign
trace`), `listing` (its text), `view` (the step-through HTML viewer).
"""

from . import cwm, env
from .decode import NotDecodable, to_python
from .encode import EncodeLimits, encode, exception_info
from .literals import from_literal, to_literal
from .program import trace_file, trace_module
from .render import render
from .run import TraceLimits, trace
from .schema import Edit, ExceptionInfo, Frame, Splice, Step, StepState, Stop, Trace, Value

__all__ = [
    "Edit",
    "EncodeLimits",
    "ExceptionInfo",
    "Frame",
    "NotDecodable",
    "Splice",
    "Step",
    "StepState",
    "Stop",
    "Trace",
    "TraceLimits",
    "Value",
    "cwm",
    "encode",
    "env",
    "exception_info",
    "from_literal",
    "render",
    "to_literal",
    "to_python",
    "trace",
    "trace_file",
    "trace_module",
]
