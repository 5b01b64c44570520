"""The judge: a pool of workers that run jobs through one warm zygote.

`Pool(workers)` starts the zygote (its isolation layers are in `pool.layers`),
then runs jobs on `workers` threads, each with its own slot (its own uid with
root, from a block of uids this pool alone holds: `pool.uids`). `submit`
returns a Future, `map` keeps the order (`progress=True` shows it, see
`sandbox.track`), `run_async` awaits. Safe to call from many threads at once.
`ZygoteClient` owns the zygote process and its socket (messages in
`sandbox.wire`); `Execution` runs one job.

Deadlines are the judge's: the wall clock is watched here and the whole job is
killed by the zygote (SIGKILL to its process group, then every process it left);
CPU time is an rlimit. Nothing here uses signals or `signal.alarm`. A job that
was `starved` (the machine, not its code, made it time out) is run again, up to
`STARVED_RETRIES` times, before that status is returned.
"""

from __future__ import annotations

import asyncio
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from . import isolation, wire
from .execution import Execution
from .job import Job, Limits, Result
from .progress import track
from .verdict import Evidence, classify
from .wire import Exited, Hello, Kill, Spawn, Spawned, SpawnFailed
from .zygote import DEFAULT_PRELOAD

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STARVED_RETRIES = 2


class _Handle:
    """The judge's view of one spawned child: filled in by the zygote's messages."""

    def __init__(self, job_id: int):
        self.id = job_id
        self.spawned = threading.Event()
        self.exited = threading.Event()
        self.failure: str | None = None
        self.exit: Exited | None = None


class ZygoteClient:
    """Starts the zygote and talks to it; restarts it if it dies."""

    def __init__(self, preload: Iterable[str]):
        self.preload = tuple(preload)
        # with root, jobs run as uids of a block that no other pool on this host holds
        self.first_uid, self.uid_lock = isolation.claim_uid_block() if os.geteuid() == 0 else (-1, -1)
        self.lock = threading.Lock()
        self.handles: dict[int, _Handle] = {}
        self.next_id = 0
        self._start()

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.base = base = tempfile.mkdtemp(prefix="execalign-")  # the slots' working directories live here
        os.chmod(base, 0o711)  # jobs (other uids) reach their own directory only
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": _ROOT,
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "LANG": "C.UTF-8",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-s",
                "-c",
                "import sys; from sandbox.zygote import main; main(*sys.argv[1:3], int(sys.argv[3]), int(sys.argv[4]))",
                base,
                ",".join(self.preload),
                str(theirs.fileno()),
                str(self.first_uid),
            ],
            pass_fds=[theirs.fileno()] + ([self.uid_lock] if self.uid_lock >= 0 else []),
            env=env,
            cwd=base,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs.close()
        self.sock = ours
        self.decoder = wire.Decoder[wire.FromZygote](wire.FromZygote, wire.PACKET_LIMIT)
        hello = self.decoder.unpack(self._recv_blocking(timeout=60))
        if not isinstance(hello, Hello):
            raise RuntimeError(f"zygote said {hello!r} instead of hello")
        self.layers: isolation.Layers = hello.layers
        self.reader = threading.Thread(target=self._dispatch, name="execalign-zygote-reader", daemon=True)
        self.reader.start()

    def _recv_blocking(self, timeout: float) -> bytes:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(wire.PACKET_LIMIT + 4)
        finally:
            self.sock.settimeout(None)
        if not data:
            raise RuntimeError("the zygote exited while starting (see its stderr)")
        return data

    def _dispatch(self) -> None:
        sock = self.sock
        while True:
            try:
                data = sock.recv(wire.PACKET_LIMIT + 4)
            except OSError:
                data = b""
            if not data:
                break
            message = self.decoder.unpack(data)
            if isinstance(message, Hello):
                continue
            with self.lock:
                handle = self.handles.get(message.id)
            if handle is None:
                continue
            if isinstance(message, Spawned):
                handle.spawned.set()
            elif isinstance(message, SpawnFailed):
                handle.failure = message.reason
                handle.spawned.set()
                handle.exited.set()
            elif isinstance(message, Exited):
                handle.exit = message
                with self.lock:
                    self.handles.pop(message.id, None)
                handle.spawned.set()
                handle.exited.set()
        with self.lock:  # the zygote is gone: every job in flight is lost
            lost, self.handles = list(self.handles.values()), {}
        for handle in lost:
            handle.failure = handle.failure or "the zygote died"
            handle.spawned.set()
            handle.exited.set()

    def spawn(self, slot: int, limits: Limits, fds: list[int]) -> _Handle:
        with self.lock:
            if not self.reader.is_alive():
                self._restart_locked()
            self.next_id += 1
            handle = _Handle(self.next_id)
            self.handles[handle.id] = handle
            try:
                socket.send_fds(self.sock, [wire.pack(Spawn(handle.id, slot, limits))], fds)
            except OSError as error:
                self.handles.pop(handle.id, None)
                handle.failure = f"cannot reach the zygote: {error}"
                handle.spawned.set()
                handle.exited.set()
        return handle

    def kill(self, handle: _Handle, timeout: bool = False) -> None:
        with self.lock:
            try:
                self.sock.send(wire.pack(Kill(handle.id, timeout)))
            except OSError:
                pass

    def _restart_locked(self) -> None:
        self._stop_zygote()
        self._start()

    def close(self) -> None:
        self._stop_zygote()
        if self.uid_lock >= 0:
            os.close(self.uid_lock)  # the block is free once the zygote (which inherited the lock) is gone too
            self.uid_lock = -1

    def _stop_zygote(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes our reader thread and tells the zygote: it exits
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()  # its own session and namespace: this reaches nothing else
            self.process.wait()


class Pool:
    """Run sandboxed jobs on `workers` threads (default: one per core) through one zygote."""

    def __init__(self, workers: int | None = None, preload: Iterable[str] = DEFAULT_PRELOAD):
        self.workers = workers or os.cpu_count() or 1
        if self.workers > isolation.UID_BLOCK:
            raise ValueError(f"at most {isolation.UID_BLOCK} workers per pool")
        self.client = ZygoteClient(preload)
        self.layers = self.client.layers
        # the uids this pool's jobs run as (empty without root)
        self.uids = (
            range(self.client.first_uid, self.client.first_uid + self.workers)
            if self.client.first_uid >= 0
            else range(0)
        )
        self.slots: queue.Queue[int] = queue.Queue()
        for slot in range(self.workers):
            self.slots.put(slot)
        self.executor = ThreadPoolExecutor(self.workers, thread_name_prefix="execalign-sandbox")
        self.closed = False

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.executor.shutdown(wait=True)
            self.client.close()

    def run(self, job: Job) -> Result:
        return self.submit(job).result()

    def submit(self, job: Job) -> Future[Result]:
        if self.closed:
            raise RuntimeError("the pool is closed")
        return self.executor.submit(self._execute, job)

    async def run_async(self, job: Job) -> Result:
        return await asyncio.wrap_future(self.submit(job))

    def map(self, jobs: Iterable[Job], progress: bool = False) -> list[Result]:
        """Results in the order of `jobs`; `progress=True` shows how far it got on stderr (`sandbox.track`)."""
        futures = [self.submit(j) for j in jobs]
        if not progress:
            return [f.result() for f in futures]
        return track(futures, "sandbox")

    def _execute(self, job: Job) -> Result:
        slot = self.slots.get()
        try:
            result = Execution(self.client, slot, job).run()
            for _ in range(STARVED_RETRIES):
                if result.status != "starved":
                    break
                result = Execution(self.client, slot, job).run()
            return result
        except Exception as error:  # a bug of ours: reported as such, never as the code's failure
            status, message = classify(
                Evidence(mode=job.mode, limits=job.limits, judge_error=f"{type(error).__name__}: {error}")
            )
            return Result(status=status, message=message)
        finally:
            self.slots.put(slot)
