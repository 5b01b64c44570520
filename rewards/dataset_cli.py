"""The dataset commands of `execalign`: `tasks build` and `score --batch` (see `rewards.dataset`).

    execalign tasks build INPUT.jsonl -o OUT.jsonl|OUT.parquet --question final,state,next \\
        [--template execalign|coderl_plus|cwm] [--per-item N] [--seed S]
    execalign score --batch FILE.jsonl|FILE.parquet [--prediction-field NAME] [-o SCORES.jsonl]

`tasks build` writes one row per alignment task (TRL's and verl's columns, and `score_args`),
shows the sandbox's progress, and ends with how many tasks it wrote and why others were
skipped. `--kind` is accepted for `--question`. `score --batch` scores each row's prediction
(a row with `score_args`, or the fields of `rewards.score`), with a progress bar; it writes one
Score per row as JSONL (to stdout, or -o) and a summary table on stderr. Both exit 2 on a file
they cannot read or write; `score --batch` exits 1 when a row is masked (infra_error,
invalid_task), else 0.
"""

from __future__ import annotations

import argparse
import sys

import msgspec

from tracer.cli import HelpFormatter

from . import dataset
from .questions import QUESTIONS
from .tasks import TEMPLATES


def add_tasks_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tasks = subparsers.add_parser(
        "tasks", help="build datasets of alignment tasks for trainers", formatter_class=HelpFormatter
    )
    actions = tasks.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "build",
        help="alignment tasks from code and inputs, as rows for TRL and verl",
        description=dataset.__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("input", help="JSONL (or .parquet) rows with code and call, stdin, input or tests")
    p.add_argument(
        "-o", "--output", required=True, help="where to write the rows: OUT.jsonl or OUT.parquet (required, no default)"
    )
    askable = ",".join(name for name, q in QUESTIONS.items() if q.gold is not None)
    p.add_argument(
        "--question",
        "--kind",
        default="final",
        help=f"comma-separated questions to ask, of {askable} (default: %(default)s)",
    )
    p.add_argument(
        "--template", choices=TEMPLATES, default="execalign", help="the prompt's wording (default: %(default)s)"
    )
    p.add_argument(
        "--per-item", type=int, default=1, metavar="N", help="tasks per item and question (default: %(default)s)"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="fixes which variables and probes are asked (default: %(default)s)"
    )
    p.add_argument("--data-source", default="execalign", help="verl's data_source column (default: %(default)s)")
    p.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace) -> int:
    questions = [q.strip() for q in args.question.split(",") if q.strip()]
    if args.per_item < 1:
        return _error("tasks build", "--per-item must be at least 1")
    try:
        items = dataset.read_rows(args.input)
        rows, skipped = dataset.build_rows(
            items,
            questions,
            template=args.template,
            per_item=args.per_item,
            seed=args.seed,
            data_source=args.data_source,
            progress=True,
        )
        dataset.write_rows(rows, args.output)
    except (OSError, ValueError) as error:
        return _error("tasks build", str(error))
    print(f"wrote {len(rows)} tasks from {len(items)} items to {args.output}", file=sys.stderr)
    if skipped:
        print(f"skipped {skipped.total()}:", file=sys.stderr)
        for reason, count in skipped.most_common():
            print(f"  {count:>6}  {reason}", file=sys.stderr)
    return 0


def add_batch_arguments(p: argparse.ArgumentParser) -> None:
    """`score --batch` and its options, on the `score` command's parser."""
    p.add_argument(
        "--batch", metavar="FILE", help="score every row of a JSONL or Parquet file instead of FILE (default: none)"
    )
    p.add_argument(
        "--prediction-field",
        metavar="NAME",
        help="with --batch: the column holding each answer (default: the first of "
        + ", ".join(dataset.PREDICTION_FIELDS)
        + ")",
    )
    p.add_argument("-o", "--output", metavar="PATH", help="with --batch: write the scores here (default: stdout)")


def run_batch(args: argparse.Namespace) -> int:
    try:
        rows = dataset.read_rows(args.batch)
    except (OSError, ValueError) as error:
        return _error("score", str(error))
    scores = dataset.score_rows(rows, args.prediction_field, progress=True)
    encoder = msgspec.json.Encoder(enc_hook=repr)  # a prediction may hold values JSON has no type for
    lines = [encoder.encode({"row": i, **msgspec.structs.asdict(s)}).decode() + "\n" for i, s in enumerate(scores)]
    try:
        if args.output:
            with open(args.output, "w", encoding="utf-8") as f:
                f.writelines(lines)
        else:
            sys.stdout.writelines(lines)
    except OSError as error:
        return _error("score", str(error))
    print(dataset.summary_table(scores), file=sys.stderr)
    return 1 if any(s.masked for s in scores) else 0


def _error(command: str, message: str) -> int:
    print(f"execalign {command}: error: {message}", file=sys.stderr)
    return 2
