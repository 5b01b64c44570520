"""Progress of a batch: `track(futures, label)` waits for them and shows how far it got.

On a terminal it redraws one line in place (a bar, done/total, rate, time left);
anywhere else (a log file, a pipe, CI) it writes a plain line every `interval`
seconds and one at the end, never lines joined by carriage returns. Futures
already done when tracking starts (cache hits) count as done but not in the
rate, which is that of the work finished since.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TextIO, TypeVar

T = TypeVar("T")
_BAR = 30  # characters


def track(
    futures: Sequence[Future[T]], label: str = "sandbox", *, stream: TextIO | None = None, interval: float | None = None
) -> list[T]:
    """The results of `futures` in order, showing progress on `stream` (default: stderr) meanwhile.

    `interval` is the time between updates: 0.1 s on a terminal, 10 s otherwise by default.
    """
    out = stream if stream is not None else sys.stderr
    terminal = _is_terminal(out)
    every = interval if interval is not None else (0.1 if terminal else 10.0)
    total, start = len(futures), time.monotonic()
    lock, finished = threading.Lock(), threading.Event()
    count = cached = 0

    def one_done(_: Future[T]) -> None:
        nonlocal count
        with lock:
            count += 1
            if count == total:
                finished.set()

    for future in futures:
        if future.done():
            cached += 1
            one_done(future)
        else:
            future.add_done_callback(one_done)
    if total == 0:
        finished.set()
    while not finished.wait(every):
        _show(out, terminal, label, count, cached, total, time.monotonic() - start)
    _show(out, terminal, label, count, cached, total, time.monotonic() - start, last=True)
    return [f.result() for f in futures]


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _show(
    out: TextIO, terminal: bool, label: str, done: int, cached: int, total: int, elapsed: float, last: bool = False
) -> None:
    ran = done - cached
    rate = ran / elapsed if elapsed > 0 else 0.0
    left = (total - done) / rate if rate > 0 else None
    if last:
        speed = f"{ran} in {elapsed:.1f} s, {rate:.0f}/s" if ran else f"in {elapsed:.1f} s"
        text = f"{label}: {done}/{total} done ({speed}{f'; {cached} were done already' if cached else ''})"
    else:
        text = f"{label}: {done}/{total} done, {rate:.0f}/s" + (
            f", about {left:.0f} s left" if left is not None else ""
        )
    if terminal:
        filled = _BAR * done // total if total else _BAR
        text = f"\r{label} [{'#' * filled}{'.' * (_BAR - filled)}] {text[len(label) + 2 :]}\x1b[K"
        out.write(text + ("\n" if last else ""))
    else:
        out.write(text + "\n")
    out.flush()
