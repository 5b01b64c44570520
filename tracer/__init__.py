"""execalign's tracer: what every variable holds, line by line.

    import tracer
    t = tracer.trace("def f(x):\\n    y = x * 2\\n    return y + 1", call="f(3)")
    tracer.to_python(t.returned)          # 7
    [(s.line, s.changes) for s in t.steps]
    t.to_json(); tracer.Trace.from_json(...)

Public API (kept this small on purpose):

- `trace(source, call=None, *, backend="auto", stdin=None, **limits) -> Trace`
  runs a snippet, then the call expression if given, in this process.
- `trace_file(path, argv=(), *, call=None, backend="auto", **limits) -> Trace`
  runs a file as `__main__`.
- `Trace`, `Step`, `Frame`, `Value`, `ExceptionInfo`, `Stop`: the msgspec schema
  (`Trace.to_json/from_json/to_msgpack/from_msgpack`).
- `encode(obj)`, `to_python(value)`, `render(value)`, `from_literal(text)`: the value codec.
- `exception_info(exc)`: an exception's type and message, made without user code.
- `TraceLimits`: the caps accepted as `**limits`; `EncodeLimits`: the caps of one value.

Backends: "monitoring" (sys.monitoring, Python 3.12+, the default there) and
"settrace" (sys.settrace, the default before 3.12). Only the traced source's own
code objects are recorded; calls into the standard library or installed
packages are single steps. All threads that run the traced code are recorded
(`Frame.thread` tells them apart).

`trace` and `trace_file` run the code in the calling process: use them for
trusted code or inside a sandbox child. Untrusted code goes through `sandbox`.
"""

from .recorder import exception_info
from .run import TraceLimits, trace, trace_file
from .schema import ExceptionInfo, Frame, Step, Stop, Trace
from .values import EncodeLimits, NotDecodable, Value, encode, from_literal, render, to_python

__all__ = [
    "EncodeLimits",
    "ExceptionInfo",
    "Frame",
    "NotDecodable",
    "Step",
    "Stop",
    "Trace",
    "TraceLimits",
    "Value",
    "encode",
    "exception_info",
    "from_literal",
    "render",
    "to_python",
    "trace",
    "trace_file",
]
