"""Helpers for sandbox tests: find what a job may have left behind, run hostile code with tight limits."""

import os
import time

import psutil
import pytest

from sandbox import Job, Limits

# hostile tests: every job gets these unless it says otherwise
FAST = Limits(
    wall_time=3, cpu_time=2, memory=256 << 20, output=64 << 10, file_size=1 << 20, open_files=32, processes=16
)
MARKER = "/tmp/execalign-hostile-marker"  # the one file outside a job's directory hostile code tries to write


def job_processes(pool) -> list:
    """Processes running as one of the pool's job uids (host view), i.e. anything a job left alive."""
    uids = pool.uids
    found = []
    for p in psutil.process_iter(["uids", "pid", "cmdline"]):
        try:
            if p.info["uids"] and p.info["uids"].real in uids:
                found.append(p.info)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def quick(pool):
    return pool.run(Job(mode="call", code="", call="1"))


def run(pool, code, mode="call", call=None, tests=None, **kw):
    return pool.run(Job(mode=mode, code=code, call=call, tests=tests, limits=kw.pop("limits", FAST), **kw))


@pytest.fixture
def nothing_left_behind(pool):
    """After a hostile test: no process of the pool's uids, no marker file, and the next job is unaffected."""
    yield
    deadline = time.monotonic() + 5
    while job_processes(pool) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job_processes(pool) == []
    assert not os.path.exists(MARKER)
    assert quick(pool).status == "ok"
