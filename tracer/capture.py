"""The traced program's standard streams: bounded capture of stdout and stderr, stdin from text.

What the program gets as `sys.stdout` and `sys.stderr` is a real
`io.TextIOWrapper` (`captured`), so `.buffer`, `.reconfigure()`, `.encoding`,
`.errors` and `.fileno()` behave as in plain Python. Underneath, `Capture`
(its `.buffer`) keeps the first `limit` bytes, counts the rest, notes which
step wrote what (`marks`, when given a `clock`), and with `echo` passes
everything on to a real stream as it is written. With `echo`, `.fileno()` and
`.isatty()` are the real stream's (bytes written to that fd directly are shown
but not captured); without, `.fileno()` raises `io.UnsupportedOperation` as
for any in-memory stream.
"""

from __future__ import annotations

import codecs
import io
import weakref
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

Clock = Callable[[], int]  # the index of the step running now


class Capture(io.BufferedIOBase):
    """A binary stream that keeps the first `limit` bytes written to it and counts the rest.

    Its state lives outside the instance (`_STATE`), so that the traced program,
    which can reach it as `sys.stdout.buffer`, sees no more of it than of a real one.
    """

    def __init__(self, limit: int, echo: TextIO | None = None, clock: Clock | None = None, name: str = "<stdout>"):
        super().__init__()
        _STATE[self] = _Tee(limit, echo, clock, name)

    @property
    def state(self) -> _Tee:
        return _STATE[self]

    @property
    def name(self) -> str:
        return self.state.name

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        chunk = bytes(data)  # a TypeError for str, as a real binary stream gives
        self.state.write(chunk)
        return len(chunk)

    def flush(self) -> None:
        state = _STATE.get(self)  # gone already when the stream is collected (its weak reference dies first)
        if state is not None and not self.closed:
            state.flush()

    def fileno(self) -> int:
        echo = self.state.echo
        if echo is None:
            raise io.UnsupportedOperation("fileno: the traced program's output is captured in memory")
        return echo.fileno()

    def isatty(self) -> bool:
        echo = self.state.echo
        return echo is not None and bool(_quietly(echo.isatty))

    def text(self, encoding: str) -> tuple[str, int, list[tuple[int, int]]]:
        """The kept output as text, the bytes left out, and the marks in characters of that text."""
        return self.state.text(encoding)


class _Tee:
    """What a `Capture` keeps: the first `limit` bytes, a count of the rest, `marks` (step,
    bytes written by the end of its writes), and the real stream it echoes to."""

    def __init__(self, limit: int, echo: TextIO | None, clock: Clock | None, name: str):
        self.limit = limit
        self.echo = echo
        self.clock = clock
        self.name = name
        self.data = bytearray()
        self.more = 0
        self.marks: list[tuple[int, int]] = []
        self.echo_bytes: IO[bytes] | None = getattr(echo, "buffer", None)
        self.echo_text = None
        if echo is not None and self.echo_bytes is not None:
            _quietly(echo.flush)  # what was written to its text layer before goes out first
        elif echo is not None:
            self.echo_text = codecs.getincrementaldecoder(getattr(echo, "encoding", None) or "utf-8")("replace")

    def write(self, chunk: bytes) -> None:
        if self.echo_bytes is not None:
            echo_bytes = self.echo_bytes
            _quietly(lambda: echo_bytes.write(chunk))
        elif self.echo is not None and self.echo_text is not None:
            echo, text = self.echo, self.echo_text.decode(chunk)
            _quietly(lambda: echo.write(text))
        room = max(self.limit - len(self.data), 0)
        self.data += chunk[:room]
        self.more += max(len(chunk) - room, 0)
        if self.clock is not None and chunk:
            step, written = self.clock(), len(self.data) + self.more
            if self.marks and self.marks[-1][0] == step:
                self.marks[-1] = (step, written)
            else:
                self.marks.append((step, written))

    def flush(self) -> None:
        target = self.echo_bytes if self.echo_bytes is not None else self.echo
        if target is not None:
            _quietly(target.flush)

    def text(self, encoding: str) -> tuple[str, int, list[tuple[int, int]]]:
        decoder = codecs.getincrementaldecoder(encoding)("replace")
        marks: list[tuple[int, int]] = []
        parts: list[str] = []
        done = chars = 0
        for step, written in self.marks:
            end = min(written, len(self.data))
            if end > done:
                part = decoder.decode(bytes(self.data[done:end]))
                parts.append(part)
                chars, done = chars + len(part), end
            marks.append((step, chars))
        parts.append(decoder.decode(bytes(self.data[done:]), final=not self.more))  # a character cut in two is left out
        return "".join(parts), self.more, marks


_STATE: weakref.WeakKeyDictionary[Capture, _Tee] = weakref.WeakKeyDictionary()


def captured(capture: Capture, echo: TextIO | None, errors: str) -> io.TextIOWrapper:
    """The text stream the program writes to: like the real one it echoes to, else UTF-8."""
    encoding = (getattr(echo, "encoding", None) or "utf-8") if echo is not None else "utf-8"
    errors = (getattr(echo, "errors", None) or errors) if echo is not None else errors
    line_buffering = bool(getattr(echo, "line_buffering", False))
    return io.TextIOWrapper(
        capture, encoding=encoding, errors=errors, line_buffering=line_buffering, write_through=True
    )


def stdin_from(text: str) -> io.TextIOWrapper:
    """A stdin that reads `text` (with `.buffer`, as a real stdin has)."""
    data = io.BytesIO(text.encode("utf-8", "surrogateescape"))
    return io.TextIOWrapper(data, encoding="utf-8", errors="surrogateescape")


def _quietly(action: Callable[[], object]) -> object:
    """Run an action on the stream we echo to; it may have been closed under us."""
    try:
        return action()
    except (ValueError, OSError):
        return None
