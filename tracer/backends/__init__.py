"""Tracer backends behind one small protocol.

A backend delivers the events of user code objects, and only those, to a
`Recorder`: `sys.monitoring` on Python 3.12+ (`sysmon.py`), `sys.settrace`
everywhere (`settrace.py`). Both produce the same trace for the same code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from types import CodeType
from typing import Protocol

from ..recorder import Recorder


class Backend(Protocol):
    name: str

    def start(self, recorder: Recorder, codes: Iterable[CodeType]) -> None:
        """Begin delivering events of `codes` (and nothing else) to `recorder`."""

    def stop(self) -> None:
        """Stop delivering events; safe to call twice and from inside a callback."""

    def intact(self) -> list[str]:
        """Problems found if the traced code disabled or replaced the backend (empty = intact)."""


BACKENDS = ("monitoring", "settrace")


def make_backend(name: str = "auto") -> Backend:
    if name == "auto":
        name = "monitoring" if sys.version_info >= (3, 12) else "settrace"
    if name == "monitoring":
        if sys.version_info < (3, 12):
            raise ValueError("the 'monitoring' backend needs Python 3.12+ (sys.monitoring); use 'settrace'")
        from .sysmon import MonitoringBackend

        return MonitoringBackend()
    if name == "settrace":
        from .settrace import SettraceBackend

        return SettraceBackend()
    raise ValueError(f"unknown backend {name!r}: choose one of 'auto', {', '.join(map(repr, BACKENDS))}")
