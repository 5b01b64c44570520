"""The `execalign` command: `trace` (see `tracer.cli`), `score`, `serve`, and `tasks build` and
`score --batch` (see `rewards.dataset_cli`).

    execalign score FILE --test "f(3)" --prediction '{"y": 6}'
    execalign score FILE --test "assert f(3) == 7"              # pass rate only
    execalign score FILE --stdin-test INPUT EXPECTED --prediction @answer.txt

`score` runs FILE's code in the sandbox, compares the prediction (text, or
@PATH to read it from a file, or - for stdin) and prints the Score as JSON; the
exit status is 0 when the status is ok, 1 otherwise. `--task` is the old name
of `--question`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import msgspec

from tracer import cli as tracer_cli

from . import dataset_cli
from .questions import QUESTIONS
from .score import score


def _read(text: str | None) -> str | None:
    if text is None:
        return None
    if text == "-":
        return sys.stdin.read()
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            return f.read()
    return text


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "score",
        help="score a predicted execution of a file's code",
        description=__doc__.split("\n\n")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", nargs="?", help="the Python file whose code is run")
    p.add_argument("--test", action="append", default=[], help="an assert statement or call expression (repeatable)")
    p.add_argument(
        "--stdin-test",
        nargs=2,
        action="append",
        default=[],
        metavar=("STDIN", "STDOUT"),
        help="a stdin/expected-stdout pair (repeatable)",
    )
    p.add_argument("--prediction", help="the model's answer: text, @PATH, or - for stdin")
    p.add_argument(
        "--question", "--task", choices=("auto", *QUESTIONS), default="auto", help="what the prediction predicts"
    )
    p.add_argument("--mode", choices=("typed", "coderl_plus"), default="typed")
    p.add_argument("--test-index", type=int, default=0)
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
        prediction = _read(args.prediction)
    except OSError as error:
        print(f"execalign score: error: {error}", file=sys.stderr)
        return 2
    tests = args.test or [{"stdin": i, "stdout": o} for i, o in args.stdin_test]
    if not tests:
        print("execalign score: error: give at least one --test or --stdin-test", file=sys.stderr)
        return 2
    result = score(code, tests, prediction, question=args.question, mode=args.mode, test_index=args.test_index)
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(result)).decode() + "\n")
    return 0 if result.status == "ok" else 1


def add_serve_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from . import server

    p = subparsers.add_parser(
        "serve",
        help="run the HTTP reward server (OpenRLHF remote reward JSON)",
        description=server.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-pending", type=int, default=64, help="requests in flight before answering 503")
    p.add_argument("--max-request-bytes", type=int, default=16 << 20)

    def handler(args: argparse.Namespace) -> int:
        server.serve(args.host, args.port, args.max_pending, args.max_request_bytes)
        return 0

    p.set_defaults(handler=handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="execalign", description="execalign: execution traces and rewards")
    subparsers = parser.add_subparsers(dest="command", required=True)
    tracer_cli.add_parser(subparsers)
    add_parser(subparsers)
    add_serve_parser(subparsers)
    dataset_cli.add_tasks_parser(subparsers)
    return tracer_cli.dispatch(parser, sys.argv[1:] if argv is None else list(argv))


if __name__ == "__main__":
    sys.exit(main())
