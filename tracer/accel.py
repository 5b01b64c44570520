"""The one place that chooses how line events are recorded: compiled or pure Python.

`tracer._accel` (built from `_accel.c` on install when a C compiler is there,
see setup.py) does for a line event what `Recorder.line` does, handing every
case that needs encoding back to the recorder's Python methods, so both give
the same trace (tests/test_accel.py). Like coverage.py's CTracer beside its
PyTracer, the backends ask for it here and fall back to the pure-Python path
when it is not built, or when the environment variable EXECALIGN_PURE=1
(read once, at the first trace) forces pure Python.
"""

from __future__ import annotations

import os
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .recorder import Recorder


class LineHook(Protocol):
    """What the compiled module offers a backend for one recorder."""

    active: bool  # as a sys.settrace local trace function: record (True) or detach (False)
    other: Any  # as a sys.settrace local trace function: what gets every event but "line"

    def line(self, frame: FrameType, line: int) -> None:
        """`Recorder.line`."""

    def monitor_line(self, code: CodeType, line: int) -> None:
        """A sys.monitoring LINE callback: `Recorder.line` on the calling frame, errors to `Recorder.failed`."""

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        """A sys.settrace local trace function: line events here, every other to `other`."""


def _load() -> Any:
    if os.environ.get("EXECALIGN_PURE") == "1":
        return None
    try:
        from . import _accel  # type: ignore[attr-defined]
    except ImportError:
        return None
    from . import recorder as r
    from .encode import Encoder
    from .schema import Edit, Splice, Value

    _accel.configure(r.FrameState, Encoder, Value, Edit, Splice, r._DELETED, r._MISSING, r.SAFE_ITERABLES)
    return _accel


_ACCEL: Any = None
_LOADED = False


def compiled() -> bool:
    """Do line events go through the compiled accelerator?"""
    global _ACCEL, _LOADED
    if not _LOADED:
        _ACCEL, _LOADED = _load(), True
    return _ACCEL is not None


def line_hook(recorder: Recorder) -> LineHook | None:
    """The compiled line events of `recorder`, or None (pure Python)."""
    if not compiled():
        return None
    hook: LineHook = _ACCEL.Hot(recorder)
    return hook
