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
`view` share (`add_program_arguments`, `run_program`); the listing is `tracer.listing`.
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

from .listing import listing
from .program import NotSource, interruptions, trace_file, trace_module
from .schema import Step, Trace

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
        s.event == "return"
        and result.frames[s.frame].depth == 0
        and s.exception is not None
        and s.exception.type == "SystemExit"
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
            steps.append(s)
    frames = [msgspec.structs.replace(f, depth=f.depth - base[f.id]) if f.id in keep else f for f in result.frames]
    marks = [(new_index.get(step, -1), n) for step, n in result.stdout_at]
    return msgspec.structs.replace(result, steps=steps, frames=frames, stdout_at=marks)


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
