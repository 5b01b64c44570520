"""`execalign trace FILE [-- ARGS...]`: watch a Python file run, line by line.

The program runs as `__main__` with ARGS, its stdin, stdout and stderr are its
own (output is shown as it is written) and the command exits with its exit
status. The trace is shown afterwards on stderr, snoop-style: each executed line
with its source and the variables it changed, calls and returns indented by
depth, coloured when the stream is a terminal. `--format json|jsonl|msgpack`
and `-o PATH` write the trace instead.

The `execalign` command itself is `rewards.cli.main`; this module adds its
`trace` subcommand (`add_parser`) and splits the traced program's arguments
off at `--` (`dispatch`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import IO, Any

import msgspec

from .render import render
from .run import trace_file
from .schema import Trace, Value

_COLORS = {"dim": "\x1b[2m", "var": "\x1b[32m", "call": "\x1b[36m", "exc": "\x1b[31m", "off": "\x1b[0m"}
_MAX_SHOWN = 200  # characters of one rendered value in the listing


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "trace",
        help="run a Python file and show what each line did",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="the Python file to run as __main__")
    p.add_argument("--format", choices=("text", "json", "jsonl", "msgpack"), default="text")
    p.add_argument("-o", "--output", metavar="PATH", help="write the trace here instead of stderr")
    p.add_argument("--max-steps", type=int, default=100_000, help="stop recording after N steps (default 100000)")
    p.add_argument("--function", metavar="NAME", help="show only this function and what it calls")
    p.add_argument("--call", metavar="EXPR", help="after running the file, trace this call expression")
    p.add_argument("--backend", choices=("auto", "monitoring", "settrace"), default="auto")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    argv = args.program_args
    if not os.path.isfile(args.file):
        return _error(f"cannot read {args.file}: no such file")
    if args.max_steps < 1:
        return _error("--max-steps must be at least 1")
    try:
        result = trace_file(args.file, argv, call=args.call, backend=args.backend, echo=True, max_steps=args.max_steps)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return _error(f"cannot run {args.file}: {error}")
    if (
        not result.steps
        and result.exception is not None
        and result.exception.type in ("SyntaxError", "IndentationError", "TabError", "ValueError")
    ):
        return _error(f"{args.file}: {result.exception.type}: {result.exception.message}", status=1)
    if args.function:
        result = only_function(result, args.function)
    out: IO[Any]
    if args.output:
        mode = "wb" if args.format == "msgpack" else "w"
        with open(args.output, mode) as out:
            _write(result, args, out, color=args.color == "always")
    elif args.format == "msgpack":
        sys.stderr.buffer.write(result.to_msgpack())
    else:
        color = args.color == "always" or (args.color == "auto" and sys.stderr.isatty())
        _write(result, args, sys.stderr, color)
    return result.exit_code


def _error(message: str, status: int = 2) -> int:
    print(f"execalign trace: error: {message}", file=sys.stderr)
    return status


def _write(result: Trace, args: argparse.Namespace, out: IO[Any], color: bool) -> None:
    if args.format == "msgpack":
        out.write(result.to_msgpack())
    elif args.format == "json":
        out.write(result.to_json().decode() + "\n")
    elif args.format == "jsonl":
        for step in result.steps:
            out.write(msgspec.json.encode(step).decode() + "\n")
        summary = msgspec.structs.replace(result, steps=[])
        out.write('{"trace":' + summary.to_json().decode() + "}\n")
    else:
        out.write(listing(result, args.file, color))


def only_function(result: Trace, name: str) -> Trace:
    """The steps of frames running `name` (qualified or bare name) and of what they call."""
    keep: set[int] = set()
    base: dict[int, int] = {}
    for frame in result.frames:
        if frame.parent in keep:
            keep.add(frame.id)
            base[frame.id] = base[frame.parent]
        elif frame.function == name or frame.function.rsplit(".", 1)[-1] == name:
            keep.add(frame.id)
            base[frame.id] = frame.depth
    steps = [s for s in result.steps if s.frame in keep]
    frames = [msgspec.structs.replace(f, depth=f.depth - base[f.id]) if f.id in keep else f for f in result.frames]
    return msgspec.structs.replace(result, steps=steps, frames=frames)


def listing(result: Trace, path: str | None, color: bool = False) -> str:
    """The person-readable listing of a trace."""
    c = _COLORS if color else {k: "" for k in _COLORS}
    sources: dict[str, list[str]] = {}

    def source_line(file: str, line: int) -> str:
        if file not in sources:
            try:
                with open(file, encoding="utf-8", errors="replace") as f:
                    sources[file] = f.read().splitlines()
            except OSError:
                sources[file] = []
        lines = sources[file]
        return lines[line - 1].rstrip() if 0 < line <= len(lines) else ""

    out: list[str] = []
    for state in result.replay():
        step, frame = state.step, state.frame
        pad = "    " * frame.depth
        if step.event == "call":
            args = ", ".join(f"{k}={_short(v)}" for k, v in state.changed.items())
            out.append(
                f"{pad}{c['call']}>>> call {frame.function}({args}){c['off']}  {c['dim']}line {step.line}{c['off']}"
            )
            continue
        if step.event == "line":
            out.append(f"{pad}{c['dim']}{step.line:>5} |{c['off']} {source_line(frame.file, step.line)}")
        elif step.event == "exception" and step.exception is not None:
            out.append(f"{pad}{c['exc']}  !!! {step.exception.type}: {step.exception.message}{c['off']}")
        elif step.event == "return":
            if step.exception is not None:
                what = f"raise {step.exception.type}"
            else:
                what = f"return {_short(step.value)}" if step.value is not None else "return"
            out.append(f"{pad}{c['call']}<<< {what}{c['off']}  {c['dim']}{frame.function}, line {step.line}{c['off']}")
        for name, value in state.changed.items():
            out.append(f"{pad}{c['dim']}      :{c['off']}   {c['var']}{name} = {_short(value)}{c['off']}")
        for name in step.deleted:
            out.append(f"{pad}{c['dim']}      :{c['off']}   {c['var']}del {name}{c['off']}")
    if result.stopped is not None:
        out.append(
            f"{c['exc']}... recording stopped ({result.stopped.reason}) after {result.stopped.steps} steps"
            f"{': ' + result.stopped.detail if result.stopped.detail else ''}{c['off']}"
        )
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


def _short(value: Value) -> str:
    text = render(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + f"...<{len(text) - _MAX_SHOWN} more chars>"


def dispatch(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """Parse `argv`; what follows the first `--` is the traced program's own arguments."""
    program_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, program_args = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)
    args.program_args = program_args
    status: int = args.handler(args)
    return status
