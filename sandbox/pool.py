"""The pool: jobs go to shards, each a driver process with a zygote of its own.

`Pool(workers)` runs up to `workers` jobs at once (default: one per core) on
`shards` shards (default: `shard_count(workers)`), each with its share of the
slots; a slot has its own uid with root, from a block of uids this pool alone
holds (`pool.uids`). Its isolation layers are in `pool.layers`. `submit`
returns a Future, `map` keeps the order (`progress=True` shows it, see
`sandbox.track`), `run_async` awaits. Safe to call from many threads at once.

This process only hands each `Job` to a shard (`sandbox.shard`) and takes its
`Result` back: the shard's driver (`sandbox.driver`) does the rest, so the
pool's own CPU per job stays small and every core can work. One thread reads
every shard's results and gives the next waiting jobs to the shards with room.
A shard whose driver dies is restarted; its jobs in flight come back as
infra_error, and nothing else is lost.

Deadlines are the judge's (the shard's driver): the wall clock is watched there
and the whole job is killed by the zygote (SIGKILL to its process group, then
every process it left); CPU time is an rlimit. Nothing uses signals or
`signal.alarm`. A job that was `starved` (the machine, not its code, made it
time out) is run again by its driver, up to `sandbox.driver.STARVED_RETRIES`
times, before that status is returned.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, wait
from typing import Any

from . import isolation
from .job import Job, Result
from .progress import track
from .shard import Shard
from .verdict import judge_failure
from .wire import Results
from .zygote import DEFAULT_PRELOAD

_START_TIMEOUT = 120.0  # seconds for every shard to be ready
_RESTART_PAUSE = 2.0  # seconds before starting again a driver that died before it was ready
MIN_SHARDS = 16  # up to this many workers, each has a shard of its own


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def shard_count(workers: int, cores: int | None = None) -> int:
    """How many shards `workers` slots get: one per worker, at most max(16, cores / 2).

    A shard's zygote spends about a quarter of a job's CPU (the fork and what follows it,
    measured), so with every core busy a shard for each two cores keeps each zygote half idle;
    up to 16 workers each gets its own shard (the lowest latency, and the most work a pool's
    busiest process can keep up with)."""
    cores = available_cores() if cores is None else cores
    return max(1, min(workers, max(MIN_SHARDS, cores // 2)))


class Pool:
    """Run sandboxed jobs, `workers` at a time, on shards (driver processes, each with its zygote)."""

    def __init__(self, workers: int | None = None, preload: Iterable[str] = DEFAULT_PRELOAD, shards: int | None = None):
        self.workers = workers or available_cores()
        if self.workers > isolation.UID_BLOCK:
            raise ValueError(f"at most {isolation.UID_BLOCK} workers per pool")
        # with root, jobs run as uids of a block that no other pool on this host holds
        self.first_uid, self.uid_lock = isolation.claim_uid_block() if os.geteuid() == 0 else (-1, -1)
        self.uids = range(self.first_uid, self.first_uid + self.workers) if self.first_uid >= 0 else range(0)
        count = max(1, min(shards or shard_count(self.workers), self.workers))
        size, extra = divmod(self.workers, count)
        bounds = [n * size + min(n, extra) for n in range(count + 1)]
        self.shards = [
            Shard(n, range(bounds[n], bounds[n + 1]), self.first_uid, self.uid_lock, tuple(preload))
            for n in range(count)
        ]
        try:
            for shard in self.shards:
                shard.wait_ready(_START_TIMEOUT)
        except BaseException:
            self._stop_shards()
            raise
        layers = self.shards[0].layers
        assert layers is not None
        self.layers: isolation.Layers = layers
        self.lock = threading.Lock()
        self.waiting: deque[tuple[int, Job, Future[Result]]] = deque()
        self.next_id = 0
        self.closed = False
        self.stopping = False
        self.selector = selectors.DefaultSelector()
        for shard in self.shards:
            self.selector.register(shard.sock, selectors.EVENT_READ, shard)
        self.wake_r, self.wake_w = os.pipe()
        self.selector.register(self.wake_r, selectors.EVENT_READ, None)
        self.restarts: dict[Shard, float] = {}  # shards to start again, and when
        self.reader = threading.Thread(target=self._read, name="execalign-pool", daemon=True)
        self.reader.start()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Finish every job submitted, then stop the shards."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            pending = [f for _, _, f in self.waiting]
            pending += [f for shard in self.shards for f, _ in shard.in_flight.values()]
        wait(pending)
        self.stopping = True
        os.write(self.wake_w, b"\0")
        self.reader.join()
        self._stop_shards()
        self.selector.close()
        os.close(self.wake_r)
        os.close(self.wake_w)

    def _stop_shards(self) -> None:
        for shard in self.shards:
            shard.stop()
        if self.uid_lock >= 0:
            os.close(self.uid_lock)  # the block is free once every driver and zygote (which inherit it) is gone too
            self.uid_lock = -1

    def run(self, job: Job) -> Result:
        return self.submit(job).result()

    def submit(self, job: Job) -> Future[Result]:
        return self._enqueue([job])[0]

    def _enqueue(self, jobs: Iterable[Job]) -> list[Future[Result]]:
        futures: list[Future[Result]] = []
        with self.lock:
            if self.closed:
                raise RuntimeError("the pool is closed")
            idle = not self.waiting  # else every shard is full: the pool's thread gives these out as room comes
            for job in jobs:
                future: Future[Result] = Future()
                self.next_id += 1
                self.waiting.append((self.next_id, job, future))
                futures.append(future)
            if idle:
                self._dispatch_locked(self.shards)
        return futures

    async def run_async(self, job: Job) -> Result:
        return await asyncio.wrap_future(self.submit(job))

    def map(self, jobs: Iterable[Job], progress: bool = False) -> list[Result]:
        """Results in the order of `jobs`; `progress=True` shows how far it got on stderr (`sandbox.track`)."""
        futures = self._enqueue(jobs)
        if not progress:
            wait(futures)  # one wake-up for the batch, not one per job
            return [f.result() for f in futures]
        return track(futures, "sandbox")

    def _dispatch_locked(self, shards: list[Shard]) -> None:
        """Give waiting jobs to `shards`, those with most room first, one batch per shard."""
        by_room = sorted(shards, key=lambda s: -s.room) if len(shards) > 1 else shards
        for shard in by_room:
            room = shard.room
            if room <= 0 or not self.waiting:
                return
            ids: list[int] = []
            jobs: list[Job] = []
            while self.waiting and len(ids) < room:
                job_id, job, future = self.waiting.popleft()
                if future.set_running_or_notify_cancel():  # else cancelled while it waited
                    shard.in_flight[job_id] = (future, job)
                    ids.append(job_id)
                    jobs.append(job)
            if ids:
                shard.send(ids, jobs)

    def _read(self) -> None:
        """The pool's thread: every shard's results, restarts of shards that died."""
        while not self.stopping:
            now = time.monotonic()
            timeout = max(0.0, min(self.restarts.values()) - now) if self.restarts else None
            for key, _ in self.selector.select(timeout):
                shard = key.data
                if shard is None:
                    os.read(self.wake_r, 4096)
                    continue
                messages = shard.receive()
                if messages is None:
                    self._lost(shard)
                    continue
                answered = []
                with self.lock:
                    for message in messages:
                        if isinstance(message, Results):
                            for job_id, result in zip(message.ids, message.results):
                                entry = shard.in_flight.pop(job_id, None)
                                if entry is not None:
                                    answered.append((entry[0], result))
                    self._dispatch_locked([shard])  # the one shard that has room now
                for future, result in answered:
                    future.set_result(result)
            for shard, when in list(self.restarts.items()):
                if when <= time.monotonic():
                    del self.restarts[shard]
                    with self.lock:
                        shard.start()
                    self.selector.register(shard.sock, selectors.EVENT_READ, shard)

    def _lost(self, shard: Shard) -> None:
        """A shard's driver died: its jobs in flight end as infra_error, and it starts again."""
        self.selector.unregister(shard.sock)
        was_ready = shard.ready
        status = shard.stop()
        why = f"the shard's driver died (exit status {status}) with this job in flight"
        with self.lock:
            lost = [(f, judge_failure(job, why)) for f, job in shard.in_flight.values()]
            shard.in_flight.clear()
            if not was_ready:
                shard.failures += 1
                if not any(s.ready for s in self.shards):  # nothing would ever run what waits: answer it
                    lost += [
                        (f, judge_failure(job, f"no shard could start: {why}"))
                        for _, job, f in self.waiting
                        if f.set_running_or_notify_cancel()
                    ]
                    self.waiting.clear()
        self.restarts[shard] = time.monotonic() + (_RESTART_PAUSE * min(shard.failures, 15) if not was_ready else 0)
        for future, result in lost:
            future.set_result(result)
