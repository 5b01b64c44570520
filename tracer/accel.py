"""The one place that chooses how line events are recorded: compiled or pure Python.

`tracer._accel` (built from `_accel.c` on install when a C compiler is there,
see setup.py) does for a line event what `Recorder.line` does, handing every
value that needs encoding back to the recorder's Python methods, and makes
the Steps of the raw records as `Recorder.finish` does; both paths give the
same trace (tests/test_accel.py). Like coverage.py's CTracer beside its
PyTracer, the backends ask for it here and fall back to the pure-Python path
when it is not built, or when the environment variable EXECALIGN_PURE=1
(read once, at the first trace) forces pure Python.
"""

from __future__ import annotations

import os
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .recorder import FrameState, Recorder
    from .schema import Step


class LineHook(Protocol):
    """What the compiled module offers a backend for one recorder."""

    active: bool  # as a sys.settrace local trace function: record (True) or detach (False)
    other: Any  # as a sys.settrace local trace function: what gets every event but "line"

    def line(self, frame: FrameType, line: int) -> None:
        """`Recorder.line`."""

    def settle(self, st: FrameState, frame: FrameType) -> None:
        """`Recorder._settle`."""

    def diff_all(self, st: FrameState, frame: FrameType) -> dict[str, Any]:
        """`Recorder._diff_all`."""

    def monitor_line(self, code: CodeType, line: int) -> None:
        """A sys.monitoring LINE callback: `Recorder.line` on the calling frame, errors to `Recorder.failed`."""

    def monitor_start(self, code: CodeType, offset: int) -> None:
        """A sys.monitoring PY_START or PY_RESUME callback: `Recorder.call` on the calling frame."""

    def monitor_return(self, code: CodeType, offset: int, value: Any) -> None:
        """A sys.monitoring PY_RETURN callback: `Recorder.returned` on the calling frame."""

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
    from .encode import SMALL_INTS, Encoder
    from .schema import Edit, ExceptionInfo, Splice, Step, Value

    _accel.configure(
        FrameState=r.FrameState,
        Encoder=Encoder,
        Value=Value,
        Edit=Edit,
        Splice=Splice,
        Step=Step,
        ExceptionInfo=ExceptionInfo,
        SMALL_INTS=SMALL_INTS,
        EVENTS=r.EVENTS,
        DELETED=r._DELETED,
        MISSING=r._MISSING,
        SAFE_ITERABLES=r.SAFE_ITERABLES,
    )
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


def build_steps(recorder: Recorder) -> list[Step] | None:
    """The Steps of `recorder`'s raw records, as `Recorder.finish` makes them, or None (pure Python)."""
    if not compiled():
        return None
    steps: list[Step] = _ACCEL.build_steps(
        recorder.events,
        recorder.fids,
        recorder.line_numbers,
        recorder.changes,
        recorder.payloads,
        recorder.encoder.encode,
        recorder.encoder.limits.max_str,
        recorder.any_deleted,
    )
    return steps
