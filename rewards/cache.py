"""The result cache: every sandbox run of `score`, `score_batch` and `build_task` goes through it.

A bounded LRU of sandbox `Result`s keyed by the content hash of their `Job`,
shared by all calls (`CACHE`): the G answers of a GRPO group cost one
execution. Concurrent requests for the same job wait for the one run in
flight. Results that say nothing about the code (`sandbox.NOT_VERDICTS`: infra_error,
starved) are never cached.

What rewards keeps of a result (`kept`, also what `run` returns) has its
messages cut: the result's message, each test's message, the exception's
message, stderr and tamper notes to `KEPT_TEXT` characters; stdout to
`KEPT_TEXT` too, except for a traced program (`script`), whose stdout is what
an output answer is compared with, kept to `KEPT_OUTPUT`. Each entry's size is
measured (its MessagePack length): the cache holds at most `max_bytes` in all,
and an entry over an eighth of that (a very large trace) is used but not kept.
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
from tracer import ExceptionInfo

KEPT_TEXT = 2000  # characters kept of each message, exception message, stderr and tamper note
KEPT_OUTPUT = 400_000  # characters kept of a traced program's stdout (twice what an answer may hold)
KEPT_NOTES = 20  # tamper notes kept


class ResultCache:
    """A bounded LRU of sandbox results by job content hash, with in-flight sharing."""

    def __init__(self, max_entries: int = 4096, max_bytes: int = 1 << 30):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.lock = threading.Lock()
        self.entries: OrderedDict[bytes, tuple[Result, int]] = OrderedDict()  # result, its size in bytes
        self.bytes = 0
        self.inflight: dict[bytes, Future[Result]] = {}
        self.hits = self.misses = 0

    @staticmethod
    def key(job: Job) -> bytes:
        return hashlib.sha256(msgspec.msgpack.encode(job)).digest()

    def run(self, jobs: list[Job], pool: sandbox.Pool | None = None, progress: bool = False) -> list[Result]:
        """Results of `jobs` in order (what rewards keeps of them), each distinct job run at most once."""
        pool = pool or sandbox.default_pool()
        waiting: list[Future[Result]] = []
        started: dict[bytes, tuple[Job, Future[Result]]] = {}
        with self.lock:
            for job in jobs:
                key = self.key(job)
                if key in self.entries:
                    self.entries.move_to_end(key)
                    self.hits += 1
                    waiting.append(_done(self.entries[key][0]))
                elif key in self.inflight:
                    self.hits += 1
                    waiting.append(self.inflight[key])
                else:
                    self.misses += 1
                    future = self.inflight[key] = pool.submit(job)
                    started[key] = (job, future)
                    waiting.append(future)
        for key, (job, future) in started.items():  # outside the lock: a future already done calls back at once
            future.add_done_callback(partial(self._store, key, job.mode == "script"))
        results = sandbox.track(waiting, "sandbox") if progress else [w.result() for w in waiting]
        return [kept(r, job.mode == "script") for r, job in zip(results, jobs)]

    def _store(self, key: bytes, program: bool, future: Future[Result]) -> None:
        if future.cancelled() or future.exception() is not None:
            with self.lock:
                self.inflight.pop(key, None)
            return
        result = kept(future.result(), program)
        size = len(msgspec.msgpack.encode(result)) if result.status not in sandbox.NOT_VERDICTS else 0
        with self.lock:
            self.inflight.pop(key, None)
            if result.status in sandbox.NOT_VERDICTS or self.max_entries <= 0 or size > self.max_bytes // 8:
                return
            if key in self.entries:
                self.bytes -= self.entries.pop(key)[1]
            self.entries[key] = (result, size)
            self.bytes += size
            while len(self.entries) > self.max_entries or self.bytes > self.max_bytes:
                self.bytes -= self.entries.popitem(last=False)[1][1]

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.bytes = 0


def kept(result: Result, program: bool = True) -> Result:
    """What rewards keeps of a result: its messages cut to `KEPT_TEXT` characters, its stdout to
    `KEPT_OUTPUT` for a program (`program`: its stdout may be scored) and to `KEPT_TEXT` otherwise."""
    changes: dict[str, object] = {}
    for name, limit in (
        ("message", KEPT_TEXT),
        ("stderr", KEPT_TEXT),
        ("stdout", KEPT_OUTPUT if program else KEPT_TEXT),
    ):
        text = getattr(result, name)
        if len(text) > limit:
            changes[name] = _cut(text, limit)
    if any(len(t.message) > KEPT_TEXT or len(t.test) > KEPT_TEXT for t in result.tests):
        changes["tests"] = [
            msgspec.structs.replace(t, test=_cut(t.test), message=_cut(t.message)) for t in result.tests
        ]
    if result.exception is not None and _long(result.exception):
        changes["exception"] = _exception(result.exception)
    if _too_many(result.tampered):
        changes["tampered"] = _notes(result.tampered)
    trace = result.trace
    if trace is not None:
        cut_trace: dict[str, object] = {}
        if len(trace.stderr) > KEPT_TEXT:
            cut_trace["stderr"] = _cut(trace.stderr)
        if len(trace.stdout) > KEPT_OUTPUT:
            cut_trace["stdout"] = _cut(trace.stdout, KEPT_OUTPUT)
        if trace.exception is not None and _long(trace.exception):
            cut_trace["exception"] = _exception(trace.exception)
        if _too_many(trace.tampered):
            cut_trace["tampered"] = _notes(trace.tampered)
        if cut_trace:
            changes["trace"] = msgspec.structs.replace(trace, **cut_trace)
    return msgspec.structs.replace(result, **changes) if changes else result


def _cut(text: str, limit: int = KEPT_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


def _long(exception: ExceptionInfo) -> bool:
    return len(exception.type) > KEPT_TEXT or len(exception.message) > KEPT_TEXT


def _exception(exception: ExceptionInfo) -> ExceptionInfo:
    return msgspec.structs.replace(exception, type=_cut(exception.type), message=_cut(exception.message))


def _too_many(notes: list[str]) -> bool:
    return len(notes) > KEPT_NOTES or any(len(n) > KEPT_TEXT for n in notes)


def _notes(notes: list[str]) -> list[str]:
    more = [f"... and {len(notes) - KEPT_NOTES} more"] if len(notes) > KEPT_NOTES else []
    return [_cut(n) for n in notes[:KEPT_NOTES]] + more


def _done(result: Result) -> Future[Result]:
    future: Future[Result] = Future()
    future.set_result(result)
    return future


CACHE = ResultCache()
