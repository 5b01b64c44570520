"""execalign's sandbox: run untrusted code fast, with limits, and judge it where it cannot cheat.

    import sandbox
    with sandbox.Pool() as pool:                       # a slot per core, spread over shards
        r = pool.run(sandbox.Job(mode="call", code="def f(x):\\n    return x + 1", call="f(1)"))
        r.status, sandbox.to_python(r.value)            # 'ok', 2
        r = pool.run(sandbox.Job(mode="asserts", code=src, tests=["assert f(1) == 2"]))
        r.status, r.passed, r.total                     # 'passed', 1, 1
    print(pool.layers.describe())                       # which isolation layers this machine allows

`sandbox.run(job)` uses a shared default pool. Modes: call, asserts, stdio,
script (see `Job`). Statuses: ok (ran, no verdict asked), passed, failed,
error, timeout, memory_exceeded, output_exceeded, killed, and two that say
nothing about the code (`NOT_VERDICTS`: mask them, never score or cache them):
starved (the machine gave the job too little CPU to finish in time, even after
retries) and infra_error (ours or the machine's); `sandbox.verdict` decides them.
`sandbox.track(futures, label)` waits for a batch and shows its progress.

The pool (this process) only hands jobs to its shards and takes their Results
back. A shard is a driver process, the judge of its jobs: it holds tests and
expected values, pumps each job's pipes, runs asserts-mode tests and gives the
verdict; the code runs in a child forked from the shard's zygote, which never
sees them. See `sandbox.isolation` for the layers and their fallbacks.

Modules: job (Job, Limits, Result), pool (the pool: shards, futures), shard (the
pool's end of one shard), driver (a shard's process and its client of the
zygote), execution (one job's pipes), asserts (asserts mode in the judge),
verdict (the status), wire (every message and its framing), zygote, slot and
child (the processes that run the code), janitor (what jobs leave on disk),
isolation, compare, progress. This package imports the pool's side on first use
(the zygote imports the package too).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from tracer import to_python

from .isolation import Layers
from .job import NOT_VERDICTS, STATUSES, Job, Limits, Result, TestOutcome

if TYPE_CHECKING:
    from .compare import matches
    from .pool import Pool, available_cores, shard_count
    from .progress import track

Task = Job  # the name the README used before 0.2: kept as an alias of `Job`

__all__ = [
    "NOT_VERDICTS",
    "STATUSES",
    "Job",
    "Layers",
    "Limits",
    "Pool",
    "Result",
    "Task",
    "TestOutcome",
    "available_cores",
    "default_pool",
    "matches",
    "run",
    "shard_count",
    "to_python",
    "track",
]

# The judge's side (the pool, its threads and processes) is imported on first use: the zygote
# imports this package too, and every module it holds makes each fork dearer.
_LAZY = {"Pool": "pool", "available_cores": "pool", "shard_count": "pool", "track": "progress", "matches": "compare"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_default: Pool | None = None
_default_lock = threading.Lock()


def default_pool() -> Pool:
    """The shared pool behind `run` (started on first use, closed at exit)."""
    global _default
    from .pool import Pool

    with _default_lock:
        if _default is None or _default.closed:
            import atexit

            _default = Pool()
            atexit.register(_default.close)
        return _default


def run(job: Job) -> Result:
    """Run one job on the default pool."""
    return default_pool().run(job)
