"""The `execalign` command: `trace` (`tracer.cli`), `view` (`rewards.view`), `score`, `serve`,
and `tasks build` and `score --batch` (`rewards.dataset_cli`).

    execalign score FILE --test "f(3)" --prediction '{"y": 6}'
    execalign score FILE --test "assert f(3) == 7"              # pass rate only
    execalign score FILE --stdin-test INPUT EXPECTED --prediction @answer.txt

`score` runs FILE's code in the sandbox, compares the prediction (text, or
@PATH to read it from a file, or - for stdin) and prints the Score as JSON; the
exit status is 0 when the status is ok, 1 otherwise. `--task` is the old name
of `--question`.

A subcommand is a function that adds its parser to the subparsers and sets
`handler` (called with the parsed arguments, returning the exit status); it is
one entry of `subcommands()`. Every option says its default in its help.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING

import msgspec

from tracer import cli as tracer_cli
from tracer.cli import HelpFormatter

from . import dataset_cli
from .questions import QUESTIONS
from .score import jsonable, score

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]  # what add_subparsers returns


def subcommands() -> list[Callable[[Subparsers], None]]:
    """The subcommands of `execalign`, in the order `--help` lists them."""
    from . import view  # it uses this module's `read_argument`

    return [tracer_cli.add_parser, view.add_parser, add_parser, add_serve_parser, dataset_cli.add_tasks_parser]


def read_argument(text: str | None) -> str | None:
    """An argument that is text, or @PATH to read it from a file, or - for stdin."""
    if text is None:
        return None
    if text == "-":
        return sys.stdin.read()
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            return f.read()
    return text


def add_question_arguments(p: argparse.ArgumentParser) -> None:
    """What a prediction predicts and how its values compare (`score` and `view`)."""
    p.add_argument(
        "--question",
        "--task",
        choices=("auto", *QUESTIONS),
        default="auto",
        help="what the prediction predicts; auto: from its shape (default: %(default)s)",
    )
    p.add_argument(
        "--mode",
        choices=("typed", "coderl_plus"),
        default="typed",
        help="typed: exact typed values; coderl_plus: CodeRL+'s lenient values and reward (default: %(default)s)",
    )


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help="score a predicted execution of a file's code",
        description=__doc__.split("\n\n")[2],
        formatter_class=HelpFormatter,
    )
    p.add_argument("file", nargs="?", help="the Python file whose code is run (or --batch FILE)")
    p.add_argument(
        "--test",
        action="append",
        default=[],
        help="an assert statement or call expression (repeatable; default: none)",
    )
    p.add_argument(
        "--stdin-test",
        nargs=2,
        action="append",
        default=[],
        metavar=("STDIN", "STDOUT"),
        help="a stdin/expected-stdout pair (repeatable; default: none)",
    )
    p.add_argument(
        "--prediction", help="the model's answer: text, @PATH, or - for stdin (default: none: the tests' pass rate)"
    )
    add_question_arguments(p)
    p.add_argument(
        "--test-index",
        type=int,
        default=0,
        metavar="N",
        help="the test whose execution the prediction describes (default: %(default)s)",
    )
    dataset_cli.add_batch_arguments(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.batch:
        return dataset_cli.run_batch(args)
    if not args.file:
        print("execalign score: error: give FILE, or --batch FILE", file=sys.stderr)
        return 2
    try:
        with open(args.file, encoding="utf-8") as f:
            code = f.read()
        prediction = read_argument(args.prediction)
    except OSError as error:
        print(f"execalign score: error: {error}", file=sys.stderr)
        return 2
    tests = args.test or [{"stdin": i, "stdout": o} for i, o in args.stdin_test]
    if not tests:
        print("execalign score: error: give at least one --test or --stdin-test", file=sys.stderr)
        return 2
    result = score(code, tests, prediction, question=args.question, mode=args.mode, test_index=args.test_index)
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(jsonable(result))).decode() + "\n")
    return 0 if result.status == "ok" else 1


def add_serve_parser(subparsers: Subparsers) -> None:
    from . import server

    p = subparsers.add_parser(
        "serve",
        help="run the HTTP reward server (OpenRLHF remote reward JSON)",
        description=server.__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="the port to listen on (default: %(default)s)")
    p.add_argument(
        "--max-pending",
        type=int,
        default=64,
        metavar="N",
        help="requests in flight before answering 503 (default: %(default)s)",
    )
    p.add_argument(
        "--max-request-bytes",
        type=int,
        default=16 << 20,
        metavar="N",
        help="the largest request body accepted (default: %(default)s)",
    )
    p.add_argument(
        "--read-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a request may take to arrive before answering 408 (default: %(default)s)",
    )

    def handler(args: argparse.Namespace) -> int:
        server.serve(args.host, args.port, args.max_pending, args.max_request_bytes, read_timeout=args.read_timeout)
        return 0

    p.set_defaults(handler=handler)


def version() -> str:
    try:
        return metadata.version("execalign")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="execalign", description="execalign: execution traces and rewards", formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"execalign {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in subcommands():
        add(commands)
    return tracer_cli.dispatch(parser, sys.argv[1:] if argv is None else list(argv))


if __name__ == "__main__":
    sys.exit(main())
