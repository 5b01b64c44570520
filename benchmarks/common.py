"""What every benchmark shares: the CRUXEval corpus and writing its report."""

from __future__ import annotations

import json
import pathlib
import statistics
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CRUXEVAL = ROOT.parent / "shared" / "data" / "cruxeval.jsonl"
RESULTS = ROOT / "benchmarks" / "results"


def load_cruxeval() -> list[dict[str, str]]:
    """The 800 CRUXEval rows, or [] (with a note on stderr) when the corpus is not beside the project."""
    if not CRUXEVAL.exists():
        print(f"note: {CRUXEVAL} not found: CRUXEval workloads are skipped", file=sys.stderr)
        return []
    return [json.loads(line) for line in CRUXEVAL.read_text().splitlines() if line.strip()]


def python_version() -> str:
    return "{}.{}.{}".format(*sys.version_info[:3])


def report(name: str, text: str, out: str | pathlib.Path = RESULTS) -> None:
    """Print the report and write it to OUT/NAME-pyXY.md."""
    print(text)
    folder = pathlib.Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}-py{sys.version_info[0]}{sys.version_info[1]}.md").write_text(text)


def median_range(values: list[float], fmt: str = "{:.0f}") -> str:
    """'median (min-max)' of repeated measurements; the median alone for one."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"
