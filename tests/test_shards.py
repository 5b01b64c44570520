"""A pool of shards: jobs spread over them, a shard that dies loses no job and starts again, pools run side by side.

Processes are ended here only by the pid of a process the pool under test started.
"""

import fcntl
import os
import signal
import threading
import time

import psutil
import pytest

import sandbox
from sandbox import Job, Limits, isolation
from tests.sandbox_util import job_processes, quick

NAP = "import os, time\ntime.sleep({seconds})\nwhere = (os.getcwd(), os.getuid())"


def nap(seconds: float) -> Job:
    return Job(mode="call", code=NAP.format(seconds=seconds), call="where", limits=Limits(wall_time=30))


def _wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def _base_of(work: str) -> str:
    """The shard's base directory of a job's working directory (BASE/slotN/work)."""
    return os.path.dirname(os.path.dirname(work))


def _running_on(pool, shard) -> bool:
    """Whether a job runs in one of the shard's slots (found by the uids of its slots)."""
    uids = {pool.uids[slot] for slot in shard.slots}
    return any(p["uids"].real in uids for p in job_processes(pool))


def _needs_uids(pool):
    if not pool.uids:
        pytest.skip("a job's process is found by the uid of its slot: needs root")


def test_slots_are_split_over_shards_without_overlap():
    with sandbox.Pool(5, shards=2) as pool:
        assert len(pool.shards) == 2
        slots = [list(s.slots) for s in pool.shards]
        assert sorted(s for own in slots for s in own) == list(range(5)) and all(slots)
        assert len({s.zygote_pid for s in pool.shards}) == 2 and len({s.process.pid for s in pool.shards}) == 2


def test_jobs_spread_over_shards():
    with sandbox.Pool(4, shards=2) as pool:
        results = pool.map([nap(0.3) for _ in range(12)])
        assert {r.status for r in results} == {"ok"}
        where = [sandbox.to_python(r.value) for r in results]
        bases = {_base_of(cwd) for cwd, _ in where}
        assert bases == {s.base for s in pool.shards}  # each shard's zygote ran some of them
        if pool.uids:
            assert {uid for _, uid in where} <= set(pool.uids)
            assert len({uid for _, uid in where}) > 2  # slots of both shards


def test_a_zygote_killed_mid_batch_loses_no_job():
    with sandbox.Pool(2, shards=2) as pool:
        _needs_uids(pool)
        victim = pool.shards[0]
        futures = [pool.submit(nap(1.0)) for _ in range(8)]
        assert _wait_for(lambda: _running_on(pool, victim)), "no job started on the shard"
        old = victim.zygote_pid
        os.kill(old, signal.SIGKILL)  # the zygote its driver started (with namespaces its inner one follows)
        results = [f.result(timeout=120) for f in futures]
        statuses = [r.status for r in results]
        assert set(statuses) <= {"ok", "infra_error"} and "ok" in statuses
        lost = [r for r in results if r.status == "infra_error"]
        assert 1 <= len(lost) <= len(victim.slots)  # only what ran there; what waited in its driver ran later
        assert all("zygote died" in r.message for r in lost)
        assert _wait_for(lambda: victim.zygote_pid != old)
        assert {r.status for r in pool.map([quick_job() for _ in range(6)])} == {"ok"}


def test_a_driver_killed_mid_batch_loses_no_job():
    with sandbox.Pool(2, shards=2) as pool:
        _needs_uids(pool)
        victim = pool.shards[0]
        futures = [pool.submit(nap(1.0)) for _ in range(8)]
        assert _wait_for(lambda: _running_on(pool, victim)), "no job started on the shard"
        old = victim.process.pid
        os.kill(old, signal.SIGKILL)
        results = [f.result(timeout=120) for f in futures]
        statuses = [r.status for r in results]
        assert set(statuses) <= {"ok", "infra_error"} and "ok" in statuses and "infra_error" in statuses
        lost = [r for r in results if r.status == "infra_error"]
        assert len(lost) <= victim.capacity and all("driver died" in r.message for r in lost)
        assert _wait_for(lambda: victim.ready and victim.process.pid != old)
        results = pool.map([nap(0.2) for _ in range(6)])
        assert {r.status for r in results} == {"ok"}
        assert {_base_of(sandbox.to_python(r.value)[0]) for r in results} == {s.base for s in pool.shards}
        if pool.layers.namespaces:  # the old zygote went with its driver, and its jobs with it
            assert _wait_for(lambda: not psutil.pid_exists(old) or psutil.Process(old).status() == "zombie")


def test_two_pools_at_once(pool):
    with sandbox.Pool(2, shards=2) as second:
        if pool.uids:
            assert set(second.uids).isdisjoint(pool.uids)
        out: dict[str, list] = {}

        def batch(name, p):
            out[name] = p.map([nap(0.1) for _ in range(8)])

        threads = [threading.Thread(target=batch, args=(n, p)) for n, p in (("first", pool), ("second", second))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name, p in (("first", pool), ("second", second)):
            assert {r.status for r in out[name]} == {"ok"}
            if p.uids:
                assert {sandbox.to_python(r.value)[1] for r in out[name]} <= set(p.uids)
        assert quick(second).status == "ok"


def test_a_closed_pool_leaves_no_process_and_frees_its_uids():
    own = sandbox.Pool(2, shards=2)
    processes = [s.process.pid for s in own.shards] + [s.zygote_pid for s in own.shards]
    uids = own.uids
    assert quick(own).status == "ok"
    own.close()
    assert all(not psutil.pid_exists(p) or psutil.Process(p).status() == "zombie" for p in processes)
    with pytest.raises(RuntimeError, match="closed"):
        own.submit(quick_job())
    if uids:  # the block is free again: its lock can be taken
        block = (uids.start - isolation.UID_FIRST) // isolation.UID_BLOCK
        fd = os.open(os.path.join(isolation.LOCK_DIR, f"uids-{block}.lock"), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def quick_job() -> Job:
    return Job(mode="call", code="", call="1")
