"""Tracer backends behind one small protocol.

A backend delivers the events of user code objects, and only those, to a
`Recorder`: `sys.monitoring` on Python 3.12+ (`sysmon.py`), `sys.settrace`
everywhere (`settrace.py`). Both produce the same trace for the same code.
"none" delivers nothing: the code runs untraced, and its Trace has the run's
outcome (value, exception, exit code, output) without steps.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import CodeType
from typing import Protocol

from .. import env
from ..recorder import Recorder


class Backend(Protocol):
    name: str

    def start(self, recorder: Recorder, codes: Iterable[CodeType]) -> None:
        """Begin delivering events of `codes` (and nothing else) to `recorder`."""

    def stop(self) -> None:
        """Stop delivering events; safe to call twice and from inside a callback."""

    def intact(self) -> list[str]:
        """Problems found if the traced code disabled or replaced the backend (empty = intact)."""


BACKENDS = ("monitoring", "settrace", "none")


class NoBackend:
    """Records nothing (backend "none")."""

    name = "none"

    def start(self, recorder: Recorder, codes: Iterable[CodeType]) -> None:
        pass

    def stop(self) -> None:
        pass

    def intact(self) -> list[str]:
        return []


def make_backend(name: str = "auto") -> Backend:
    if name == "auto":
        name = "monitoring" if env.HAS_MONITORING else "settrace"
    if name == "monitoring":
        if not env.HAS_MONITORING:
            raise ValueError("the 'monitoring' backend needs Python 3.12+ (sys.monitoring); use 'settrace'")
        from .sysmon import MonitoringBackend

        return MonitoringBackend()
    if name == "settrace":
        from .settrace import SettraceBackend

        return SettraceBackend()
    if name == "none":
        return NoBackend()
    raise ValueError(f"unknown backend {name!r}: choose one of 'auto', {', '.join(map(repr, BACKENDS))}")
