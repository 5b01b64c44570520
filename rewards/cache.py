"""The result cache: every sandbox run of `score`, `score_batch` and `build_task` goes through it.

A bounded LRU of sandbox `Result`s keyed by the content hash of their `Job`,
shared by all calls (`CACHE`): the G answers of a GRPO group cost one
execution. Concurrent requests for the same job wait for the one run in
flight. Results that say nothing about the code (`sandbox.NOT_VERDICTS`: infra_error,
starved) are never cached.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import Future
from functools import partial

import msgspec

import sandbox
from sandbox import Job, Result


class ResultCache:
    """A bounded LRU of sandbox results by job content hash, with in-flight sharing."""

    def __init__(self, max_entries: int = 4096):
        self.max_entries = max_entries
        self.lock = threading.Lock()
        self.entries: OrderedDict[bytes, Result] = OrderedDict()
        self.inflight: dict[bytes, Future[Result]] = {}
        self.hits = self.misses = 0

    @staticmethod
    def key(job: Job) -> bytes:
        return hashlib.sha256(msgspec.msgpack.encode(job)).digest()

    def run(self, jobs: list[Job], pool: sandbox.Pool | None = None, progress: bool = False) -> list[Result]:
        """Results of `jobs` in order, each distinct job run at most once."""
        pool = pool or sandbox.default_pool()
        waiting: list[Future[Result]] = []
        started: dict[bytes, Future[Result]] = {}
        with self.lock:
            for job in jobs:
                key = self.key(job)
                if key in self.entries:
                    self.entries.move_to_end(key)
                    self.hits += 1
                    waiting.append(_done(self.entries[key]))
                elif key in self.inflight:
                    self.hits += 1
                    waiting.append(self.inflight[key])
                else:
                    self.misses += 1
                    future = started[key] = self.inflight[key] = pool.submit(job)
                    waiting.append(future)
        for key, future in started.items():  # outside the lock: a future already done calls back at once
            future.add_done_callback(partial(self._store, key))
        if progress:
            return sandbox.track(waiting, "sandbox")
        return [w.result() for w in waiting]

    def _store(self, key: bytes, future: Future[Result]) -> None:
        with self.lock:
            self.inflight.pop(key, None)
            if future.cancelled() or future.exception() is not None:
                return
            result = future.result()
            if result.status not in sandbox.NOT_VERDICTS and self.max_entries > 0:
                self.entries[key] = result
                while len(self.entries) > self.max_entries:
                    self.entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


def _done(result: Result) -> Future[Result]:
    future: Future[Result] = Future()
    future.set_result(result)
    return future


CACHE = ResultCache()
