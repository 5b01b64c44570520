"""Bounded capture of a traced program's stdout and stderr, and its stdin."""

from __future__ import annotations

import io
from typing import TextIO


class BoundedWriter(io.TextIOBase):
    """A text stream that keeps the first `limit` characters and counts the rest.

    With `echo`, everything written also goes to that stream (the CLI shows the
    program's own output as it runs).
    """

    def __init__(self, limit: int, echo: TextIO | None = None, name: str = "<stdout>"):
        super().__init__()
        self.limit = limit
        self.echo = echo
        self.parts: list[str] = []
        self.size = 0
        self.more = 0
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def encoding(self) -> str:  # type: ignore[override]  # read-only, as on a real text stream
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if type(text) is not str:
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self.echo is not None:
            try:
                self.echo.write(text)
            except (ValueError, OSError):  # the stream we echo to was closed under us
                pass
        room = self.limit - self.size
        if room >= len(text):
            self.parts.append(text)
            self.size += len(text)
        else:
            if room > 0:
                self.parts.append(text[:room])
                self.size = self.limit
            self.more += len(text) - max(room, 0)
        return len(text)

    def flush(self) -> None:
        if self.echo is not None:
            try:
                self.echo.flush()
            except (ValueError, OSError):  # the stream we echo to was closed under us
                pass

    def getvalue(self) -> str:
        return "".join(self.parts)


def stdin_from(text: str) -> TextIO:
    return io.StringIO(text)
