"""`execalign view`: a run as a step-through HTML page, alone or beside a predicted trajectory.

    execalign view prog.py [-- ARGS]                  # run it, write prog.html, print its path
    execalign view trace.json                         # a trace saved by `execalign trace --format json`
    execalign view prog.py --call 'f(3)' --prediction @answer.txt   # the prediction against the run

The page is one self-contained HTML file (no server, no network: it opens from
file://). With --prediction, the code's call is run in the sandbox and scored
exactly as `execalign score` scores it, and the page shows the real and the
predicted steps side by side as the reward aligned them (`rewards.diff`). Without,
the program runs here as `execalign trace` runs it (its stdout goes to stderr,
so that stdout has only the page's path).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import webbrowser

import msgspec

from tracer import Trace
from tracer.cli import HelpFormatter, ProgramError, add_program_arguments, notes, run_program, warn
from tracer.view import write_html

from .cli import add_question_arguments, read_argument
from .diff import comparison, prediction_diff

_TRACE_FILES = (".json", ".msgpack", ".mp")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "view",
        help="write a step-through HTML page of a run (and of a prediction against it)",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=HelpFormatter,
        usage="%(prog)s [options] (FILE | TRACE.json | -m MODULE) [-- ARGS ...]",
    )
    add_program_arguments(p)
    p.add_argument("-o", "--output", metavar="OUT.html", help="where to write the page (default: FILE's name, .html)")
    p.add_argument("--open", action="store_true", help="open the page in a web browser, where there is one")
    p.add_argument(
        "--prediction",
        metavar="ANSWER",
        help="a predicted execution of --call (text, @PATH, or - for stdin), in any form `score` accepts"
        " (default: none)",
    )
    add_question_arguments(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.prediction is not None:
            path, trace, data = _predicted(args, read_argument(args.prediction) or "")
        elif args.file is not None and args.file.endswith(_TRACE_FILES):
            path, trace, data = args.file, _load(args.file), None
        else:
            ran = run_program(args, echo=sys.stderr)
            for note in notes(ran, args):
                warn(args, note)
            path, trace, data = args.file or args.module, ran.trace, None
    except ProgramError as error:
        warn(args, f"error: {error}")
        return error.status
    except OSError as error:
        warn(args, f"error: {error}")
        return 2
    out = args.output or os.path.splitext(os.path.basename(os.path.normpath(path)))[0] + ".html"
    title = f"{path} · {args.call}" if args.call else path
    written = write_html(out, trace, comparison=data, title=title, start=max(trace.call_step, 0))
    print(written)
    if args.open:
        _open(args, written)
    return 0


def _predicted(args: argparse.Namespace, answer: str) -> tuple[str, Trace, dict[str, object]]:
    if args.file is None or args.call is None:
        raise ProgramError("--prediction needs a FILE and the --call it predicts")
    code = _text(args.file)
    diff = prediction_diff(code, [args.call], answer, question=args.question, mode=args.mode)
    s = diff.score
    reward = s.reward if s.reward is None else round(s.reward, 4)
    warn(args, f"reward {reward} ({s.question}, status {s.status})" + (f": {s.message}" if s.message else ""))
    if diff.trace is None:
        raise ProgramError(f"no run to show: {s.message or s.status}", status=1)
    return args.file, _named(diff.trace, args.file), comparison(diff)


def _named(trace: Trace, path: str) -> Trace:
    """The sandbox's trace with its code named by the file's path (only that code is traced)."""
    frames = [msgspec.structs.replace(f, file=path) for f in trace.frames]
    return msgspec.structs.replace(trace, frames=frames)


def _text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _load(path: str) -> Trace:
    try:
        with open(path, "rb") as f:
            data = f.read()
        return Trace.from_json(data) if path.endswith(".json") else Trace.from_msgpack(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise ProgramError(f"{path} is not a saved trace ({error})")


def _open(args: argparse.Namespace, path: str) -> None:
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        warn(args, f"no web browser found here; open {path} in one")
        return
    if not browser.open(pathlib.Path(path).as_uri()):
        warn(args, f"the browser did not open; open {path} in one")
