"""`execalign trace FILE [-- ARGS...]`: watch a Python program run, line by line.

The program (a file, a directory with __main__.py, or -m MODULE) runs as
__main__ with ARGS, as `python` would run it: its stdin, stdout and stderr are
its own (output shows as it is written) and the command exits with its exit
status (130 on Ctrl-C and 143 on SIGTERM, as a shell shows Python's; 124 past
--timeout). Then the trace is written: by default a listing on stderr, each
executed line with its source and the variables it changed, calls and returns
indented by depth, the program's output where it was written (coloured on a
terminal). --format json|jsonl|msgpack writes the trace as data, to stdout
unless -o PATH says otherwise (-o - is stdout too). Whenever the trace goes to
stdout, the program's own stdout goes to stderr, so the two never mix; the
trace's "stdout" field keeps it either way. Ctrl-C, SIGTERM and --timeout stop
the program and still write what was recorded.

The `execalign` command itself is `rewards.cli.main`; this module adds its
`trace` subcommand (`add_parser`), the options and the run that `trace` and
`view` share (`add_program_arguments`, `run_program`), and the listing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from typing import IO, Any, NamedTuple

import msgspec

from .program import NotSource, interruptions, trace_file, trace_module
from .render import render
from .schema import Step, StepState, Trace, Value

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
_COMPILE_ERRORS = ("SyntaxError", "IndentationError", "TabError", "ValueError")
TIMEOUT_STATUS, INTERRUPT_STATUS = 124, 130  # as timeout(1), and as a shell shows Python's death by SIGINT


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; every option's help says its default itself (`%(default)s`)."""


class ProgramError(Exception):
    """The program could not be run at all (one line for the user)."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "trace",
        help="run a Python program and show what each line did",
        description=__doc__.split("\n\n")[1],
        formatter_class=HelpFormatter,
        usage="%(prog)s [options] (FILE | -m MODULE) [-- ARGS ...]",
    )
    add_program_arguments(p)
    p.add_argument(
        "--format",
        choices=("text", "json", "jsonl", "msgpack"),
        default="text",
        help="text: the listing; json: the Trace; jsonl: a step per line, then the Trace without its steps;"
        " msgpack: the Trace as MessagePack (default: %(default)s)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="write the trace to PATH, - for stdout (default: stderr for text, stdout for the other formats)",
    )
    p.add_argument(
        "--function", metavar="NAME", help="show only the calls of this function and what they call (default: all)"
    )
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the listing: auto colours it on a terminal (default: %(default)s)",
    )
    p.set_defaults(handler=run)


def add_program_arguments(p: argparse.ArgumentParser) -> None:
    """The options that say what to run and how to record it (`trace` and `view`)."""
    p.add_argument("file", nargs="?", metavar="FILE", help="the Python file (or directory with __main__.py) to run")
    p.add_argument(
        "-m", dest="module", metavar="MODULE", help="run a module as `python -m MODULE` does (default: run FILE)"
    )
    p.add_argument(
        "--call", metavar="EXPR", help="after the program, trace this call expression, e.g. 'f(3)' (default: none)"
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=100_000,
        metavar="N",
        help="stop recording after N steps; the program itself runs on to its end (default: %(default)s)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="stop the program after SECONDS and keep what was recorded; exit status 124 (default: no limit)",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "monitoring", "settrace"),
        default="auto",
        help="auto: sys.monitoring on Python 3.12+, else sys.settrace (default: %(default)s)",
    )


class ProgramRun(NamedTuple):
    trace: Trace
    signals: list[int]  # the signals that stopped it (SIGTERM, SIGINT)


def run_program(args: argparse.Namespace, echo: bool | IO[str]) -> ProgramRun:
    """Run what `add_program_arguments` described; `ProgramError` when it cannot run at all."""
    what = args.file if args.module is None else f"-m {args.module}"
    if args.file is not None and args.module is not None:
        raise ProgramError(
            f"give a FILE or -m MODULE, not both (arguments for the program go after --:"
            f" -m {args.module} -- {args.file})"
        )
    if args.file is None and args.module is None:
        raise ProgramError("give a FILE or -m MODULE to run")
    if args.max_steps < 1:
        raise ProgramError("--max-steps must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise ProgramError("--timeout must be more than 0 seconds")
    if args.file is not None and not os.path.exists(args.file):
        raise ProgramError(f"cannot read {args.file}: no such file")
    options: dict[str, Any] = {
        "call": args.call,
        "backend": args.backend,
        "echo": echo,
        "timeout": args.timeout,
        "max_steps": args.max_steps,
    }
    try:
        with interruptions() as signals:
            if args.module is not None:
                result = trace_module(args.module, args.program_args, **options)
            else:
                result = trace_file(args.file, args.program_args, **options)
    except NotSource as error:
        raise ProgramError(str(error))
    except ImportError as error:
        raise ProgramError(f"cannot run {what}: {error}", status=1)
    except (OSError, ValueError) as error:
        raise ProgramError(f"cannot run {what}: {error}")
    if not result.steps and result.exception is not None and result.exception.type in _COMPILE_ERRORS:
        raise ProgramError(f"{what}: {result.exception.type}: {result.exception.message}", status=1)
    return ProgramRun(result, signals)


def exit_status(result: Trace) -> int:
    """The command's exit status for a run: the program's, as a shell would show Python's."""
    kind = result.exception.type if result.exception is not None else None
    if kind == "ProgramTimeout":
        return TIMEOUT_STATUS
    if kind == "KeyboardInterrupt":
        return INTERRUPT_STATUS
    return result.exit_code


def notes(ran: ProgramRun, args: argparse.Namespace) -> list[str]:
    """What the user should know about how the run went (one line each)."""
    result, out = ran.trace, []
    kind = result.exception.type if result.exception is not None else None
    if kind == "ProgramTimeout":
        out.append(f"the program ran past --timeout {args.timeout:g} s and was stopped; the trace shows it until then")
    elif kind == "KeyboardInterrupt":
        out.append("interrupted (Ctrl-C); the trace shows the program until then")
    elif signal.SIGTERM in ran.signals:
        out.append("terminated (SIGTERM); the trace shows the program until then")
    if args.call is not None:
        if result.call_step < 0:
            why = f"the program raised {kind}" if kind else "the program did not finish"
            out.append(f"--call {args.call} did not run: {why}")
        elif _exited(result, result.call_step):
            out.append(f"the program exited before --call {args.call}; the call ran after it")
    if result.stopped is not None and result.stopped.reason == "max_steps":
        out.append(f"recording stopped after {result.stopped.steps} steps (--max-steps); the program ran on untraced")
    return out


def _exited(result: Trace, before: int) -> bool:
    """Whether the module level ended by SystemExit before step `before`."""
    return any(
        s.event == "return" and s.depth == 0 and s.exception is not None and s.exception.type == "SystemExit"
        for s in result.steps[:before]
    )


def run(args: argparse.Namespace) -> int:
    to_stdout = args.output == "-" or (args.output is None and args.format != "text")
    try:
        ran = run_program(args, echo=sys.stderr if to_stdout else True)
    except ProgramError as error:
        return _error(args, str(error), error.status)
    result = ran.trace
    if args.function:
        kept = only_function(result, args.function)
        if not kept.steps:
            names = sorted({f.function for f in result.frames if f.function != "<module>"})
            warn(args, f"no function named {args.function} ran (functions that ran: {', '.join(names) or 'none'})")
        result = kept
    for note in notes(ran, args):
        warn(args, note)
    with _destination(args, to_stdout) as (out, color):
        _write(result, args, out, color)
    return exit_status(result)


@contextlib.contextmanager
def _destination(args: argparse.Namespace, to_stdout: bool) -> Iterator[tuple[IO[Any], bool]]:
    """Where the trace goes, and whether the listing is coloured there."""
    binary = args.format == "msgpack"
    if to_stdout or args.output is None:
        stream = sys.stdout if to_stdout else sys.stderr
        color = args.color == "always" or (args.color == "auto" and _is_terminal(stream))
        yield (stream.buffer if binary else stream), color
        stream.flush()
        return
    with open(args.output, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
        yield f, args.color == "always"


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty() and "NO_COLOR" not in os.environ
    except (AttributeError, ValueError):
        return False


def _error(args: argparse.Namespace, message: str, status: int = 2) -> int:
    warn(args, f"error: {message}")
    return status


def warn(args: argparse.Namespace, message: str) -> None:
    """One line on stderr, `execalign COMMAND: message`."""
    print(f"execalign {args.command}: {message}", file=sys.stderr)


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
        out.write(listing(result, color))


def only_function(result: Trace, name: str) -> Trace:
    """The steps of frames running `name` (qualified or bare name) and of what they call
    (depths counted from it; `stdout_at` follows the steps kept)."""
    keep: set[int] = set()
    base: dict[int, int] = {}
    for frame in result.frames:
        if frame.parent in keep:
            keep.add(frame.id)
            base[frame.id] = base[frame.parent]
        elif frame.function == name or frame.function.rsplit(".", 1)[-1] == name:
            keep.add(frame.id)
            base[frame.id] = frame.depth
    new_index: dict[int, int] = {}
    steps: list[Step] = []
    for i, s in enumerate(result.steps):
        if s.frame in keep:
            new_index[i] = len(steps)
            steps.append(msgspec.structs.replace(s, depth=s.depth - base[s.frame]))
    marks = [(new_index.get(step, -1), n) for step, n in result.stdout_at]
    return msgspec.structs.replace(result, steps=steps, stdout_at=marks)


def listing(result: Trace, color: bool = False) -> str:
    """The person-readable listing of a trace (see the module docstring)."""
    c = _COLORS if color else dict.fromkeys(_COLORS, "")
    sources = _Sources()
    output = _output_by_step(result)
    out: list[str] = []
    for state in result.replay():
        step = state.step
        pad = "    " * step.depth
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
    step = state.step
    if step.event == "call":
        args = ", ".join(f"{k}={_short(v)}" for k, v in state.changed.items())
        yield f"{c['call']}>>> call {step.function}({args}){c['off']}  {c['dim']}line {step.line}{c['off']}"
        return
    exiting = step.exception is not None and step.exception.type == "SystemExit"
    if step.event == "line":
        yield f"{c['dim']}{step.line:>5} |{c['off']} {sources.line(step)}"
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
        yield f"{c['call']}<<< {what}{c['off']}  {c['dim']}{step.function}, line {step.line}{c['off']}"
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

    def line(self, step: Step) -> str:
        if step.file not in self.files:
            try:
                with open(step.file, encoding="utf-8", errors="replace") as f:
                    self.files[step.file] = f.read().splitlines()
            except OSError:
                self.files[step.file] = []
        lines = self.files[step.file]
        return lines[step.line - 1].rstrip() if 0 < step.line <= len(lines) else ""


def _short(value: Value) -> str:
    try:
        text = render(value)
    except RecursionError:  # render() on a large object graph (an argparse parser): issue 11 makes it bounded
        return f"<{value.type or value.t}: too deeply nested to show>"
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + f"...<{len(text) - _MAX_SHOWN} more chars>"


def dispatch(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """Parse `argv`; what follows the first `--` is the traced program's own arguments."""
    program_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, program_args = argv[:cut], argv[cut + 1 :]
    args, extra = parser.parse_known_args(argv)
    if extra:
        hint = ""
        if hasattr(args, "module"):  # a command that runs a program
            what = args.file or f"-m {args.module}"
            hint = f" (arguments for the program go after --: execalign {args.command} {what} -- {' '.join(extra)})"
        commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        command = commands[0].choices.get(args.command, parser) if commands else parser
        command.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    args.program_args = program_args
    status: int = args.handler(args)
    return status
