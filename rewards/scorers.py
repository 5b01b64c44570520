"""Scoring processes: `score_batch` reads and scores a large batch's answers on several cores.

Reading an answer (`parse_answer`) and scoring it (alignment, the details'
display strings) is the scoring side's own work, about 2 ms per steps answer,
all under one GIL in a single process. `Scorers(n)` starts n processes (fresh
interpreters, never a fork of a trainer holding threads or a GPU), each serving
requests one at a time over a socket:

  plan(key, items, options)  -> the sandbox jobs the items need, and how many each needs
                                (`score.plan_batch`; the plans stay in the process under `key`)
  finish(key, results)       -> the items' Scores from those jobs' results (`score.finish_batch`)
  drop(key)                  -> the plans are forgotten (the batch failed in between)

`Scorers.run_batch` cuts the items into chunks, has each chunk planned by one
process, runs all the chunks' jobs here (through the result cache and the sandbox
pool, so each distinct job still runs once), then has each chunk finished by the
process that planned it. The functions are those of the single-process path, so
the Scores are the same; traces travel as MessagePack and are decoded only in the
scoring process that reads them. A scoring process that dies fails only its chunk's
items, as infra_error (masked), and is started again for the next batch.

`shared(n)` is the process-wide set behind `score_batch` (closed at exit);
`processes_for(items)` is how many it uses when not told: none for small
batches or machines with few cores.
"""

from __future__ import annotations

import atexit
import itertools
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import msgspec

import sandbox
from sandbox import Job, Result

if TYPE_CHECKING:
    from .cache import ResultCache
    from .score import BatchOptions, Score, Scored

MIN_ITEMS = 64  # smaller batches are scored in the calling process
MIN_CORES = 4  # below this the sandbox's children keep the cores busy: scoring stays in the calling process
ITEMS_PER_PROCESS = 32  # a batch gets at most one process per this many items
CHUNKS_PER_PROCESS = 2  # chunks per process: a slow chunk does not hold the others' cores idle
_HEADER = struct.Struct(">Q")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RESULTS = msgspec.msgpack.Decoder(list[Result])
_ENCODER = msgspec.msgpack.Encoder()


def processes_for(items: int) -> int:
    """How many scoring processes a batch of `items` answers gets by default (0: none)."""
    cores = sandbox.available_cores()
    if items < MIN_ITEMS or cores < MIN_CORES:
        return 0
    return min(cores, items // ITEMS_PER_PROCESS)


def start_shared() -> None:
    """Start the scoring processes a large batch would get here (a server does it before its first request)."""
    count = processes_for(1 << 30)
    if count:
        shared(count)


def _send(sock: socket.socket, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HEADER.pack(len(data)) + data)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    parts = []
    while size:
        chunk = sock.recv(min(size, 1 << 16))
        if not chunk:
            raise EOFError("the other end closed the socket")
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def _recv(sock: socket.socket) -> Any:
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    return pickle.loads(_recv_exact(sock, size))


class _Process:
    """One scoring process: requests go out under a lock, a thread of ours takes the answers."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-c", f"from rewards.scorers import serve; serve({theirs.fileno()})"],
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs.close()
        self.sock = ours
        self.lock = threading.Lock()
        self.pending: dict[int, Future[Any]] = {}
        self.ids = itertools.count()
        self.alive = True
        self.reader = threading.Thread(target=self._read, name="execalign-scorer", daemon=True)
        self.reader.start()

    def request(self, kind: str, key: int, payload: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self.lock:
            if not self.alive:
                future.set_exception(RuntimeError("the scoring process is gone"))
                return future
            request_id = next(self.ids)
            self.pending[request_id] = future
            try:
                _send(self.sock, (request_id, kind, key, payload))
            except OSError as error:
                self.pending.pop(request_id)
                future.set_exception(RuntimeError(f"cannot reach the scoring process: {error}"))
        return future

    def _read(self) -> None:
        try:
            while True:
                request_id, ok, payload = _recv(self.sock)
                with self.lock:
                    future = self.pending.pop(request_id)
                if ok:
                    future.set_result(payload)
                else:
                    future.set_exception(RuntimeError(payload))
        except (EOFError, OSError, pickle.UnpicklingError):
            pass
        with self.lock:
            self.alive = False
            lost, self.pending = list(self.pending.values()), {}
        status = self.process.poll()
        for future in lost:
            future.set_exception(RuntimeError(f"the scoring process died (exit status {status})"))

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.reader.join(timeout=30)
        self.sock.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()  # its own session: this reaches nothing else
            self.process.wait()


class Scorers:
    """Scoring processes (`count` of them, more with `grow`), used by any number of threads at once."""

    def __init__(self, count: int):
        self.lock = threading.Lock()
        self.processes = [_Process() for _ in range(count)]
        self.keys = itertools.count()

    @property
    def count(self) -> int:
        return len(self.processes)

    def grow(self, count: int) -> None:
        with self.lock:
            self.processes += [_Process() for _ in range(count - len(self.processes))]

    def _process(self, index: int) -> _Process:
        with self.lock:  # a process that died is replaced for the requests that follow
            if not self.processes[index].alive:
                self.processes[index].close()
                self.processes[index] = _Process()
            return self.processes[index]

    def run_batch(
        self,
        items: list[Any],
        options: BatchOptions,
        pool: sandbox.Pool | None,
        cache: ResultCache,
        progress: bool,
        count: int,
    ) -> list[Scored]:
        """What `score.run_batch` returns, with the items read and scored by `count` of the processes."""
        count = min(count, self.count)
        size = -(-len(items) // (count * CHUNKS_PER_PROCESS)) or 1
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        first = next(self.keys) % self.count  # batches at once start on different processes
        workers = [self._process((first + n % count) % self.count) for n in range(len(chunks))]
        keys = [next(self.keys) for _ in chunks]
        try:
            return self._score(chunks, workers, keys, options, pool, cache, progress)
        except BaseException:
            for worker, key in zip(workers, keys):  # the plans left in the processes are of no use now
                worker.request("drop", key, None)
            raise

    def _score(
        self,
        chunks: list[list[Any]],
        workers: list[_Process],
        keys: list[int],
        options: BatchOptions,
        pool: sandbox.Pool | None,
        cache: ResultCache,
        progress: bool,
    ) -> list[Scored]:
        from .score import attach_results

        planned = [w.request("plan", k, (chunk, options)) for w, k, chunk in zip(workers, keys, chunks)]
        jobs: list[tuple[list[Job], list[int]] | None] = []
        for future in planned:
            try:
                jobs.append(future.result())
            except RuntimeError:
                jobs.append(None)  # that chunk's items are lost with its process
        flat = [job for own in jobs if own for job in own[0]]
        results = iter(cache.run(flat, pool, progress) if flat else [])
        finished: list[tuple[Future[Any], list[Result]] | None] = []
        for worker, key, own in zip(workers, keys, jobs):
            if own is None:
                finished.append(None)
                continue
            mine = [next(results) for _ in own[0]]
            unique = list({id(r): r for r in mine}.values())  # a result shared by several answers decodes once
            where = {id(r): n for n, r in enumerate(unique)}
            payload = (_ENCODER.encode(unique), [where[id(r)] for r in mine])
            finished.append((worker.request("finish", key, payload), mine))
        scored: list[Scored] = []
        for chunk, own, done in zip(chunks, jobs, finished):
            try:
                if own is None or done is None:
                    raise RuntimeError("the scoring process died while it read the answers")
                scored += attach_results(done[0].result(), own[1], done[1])
            except RuntimeError as error:
                scored += attach_results([_lost(str(error)) for _ in chunk], [0] * len(chunk), [])
        return scored

    def close(self) -> None:
        for process in self.processes:
            process.close()


def _lost(why: str) -> Score:
    from .score import Score

    return Score(reward=None, status="infra_error", message=why)


_shared: Scorers | None = None
_shared_lock = threading.Lock()


def shared(count: int) -> Scorers:
    """The process-wide scoring processes, at least `count` of them (started on first use, closed at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Scorers(count)
            atexit.register(_close_shared)
        elif _shared.count < count:
            _shared.grow(count)
        return _shared


def shared_pids() -> list[int]:
    """The pids of the shared scoring processes (none started: [])."""
    with _shared_lock:
        return [p.process.pid for p in _shared.processes] if _shared is not None else []


def _close_shared() -> None:
    with _shared_lock:
        if _shared is not None:
            _shared.close()


# ---------------------------------------------------------------- in the scoring process


def serve(fd: int) -> None:
    """A scoring process: plan and finish chunks until the socket closes."""
    from .score import batch_jobs, finish_batch, job_count, plan_batch

    sock = socket.socket(fileno=fd)
    plans: dict[int, tuple[list[Any], BatchOptions]] = {}
    while True:
        try:
            request_id, kind, key, payload = _recv(sock)
        except EOFError:
            return
        try:
            if kind == "plan":
                items, options = payload
                plans[key] = (plan_batch(items, options), options)
                answer: Any = (batch_jobs(plans[key][0]), [job_count(plan) for plan in plans[key][0]])
            elif kind == "drop":
                answer = plans.pop(key, None) is not None
            else:
                chunk, options = plans.pop(key)
                unique, where = payload
                decoded = _RESULTS.decode(unique)
                answer = finish_batch(chunk, [decoded[n] for n in where], options)
            _send(sock, (request_id, True, answer))
        except Exception as error:  # a bug of ours: the chunk's items come back as infra_error
            _send(sock, (request_id, False, f"scoring process: {type(error).__name__}: {error}"))
