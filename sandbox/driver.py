"""A shard's driver: the process that does the judge's side of its jobs, with a zygote of its own.

The pool (`sandbox.shard`) starts it as `main(FD, SLOTS, FIRST_UID, UID_LOCK, PRELOAD)`
with its end of a stream socket as FD. It starts its zygote (`ZygoteClient`),
says `ShardReady`, then serves `Jobs` batches: each job waits for a free slot of
the shard (slots are numbers of the pool's, so a job of slot n runs as uid
FIRST_UID + n), runs, and its `Result` goes back under its id; the results of one
round of the loop go back in one `Results` message. A job that ends `starved`
(the machine, not its code, made it time out) is run again, up to
`STARVED_RETRIES` times, before that status is its Result.

One loop and one selector carry the pool's socket, the zygote's socket and the
pipes of every call, script and stdio job in flight: each job is an
`Execution` whose `steps()` the loop resumes when its wait is over (no thread
and no selector per job). An asserts job runs `Execution.run()` on a thread of
its own (its tests call into the child and wait for the answer), and hands its
Result back to the loop. When the zygote dies, its jobs in flight end as
infra_error and the loop starts a new one; when the pool's socket closes, the
driver stops its zygote and exits.
"""

from __future__ import annotations

import os
import select
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from . import isolation, wire
from .execution import Await, Execution, Pump, Wait
from .job import Job, Limits, Result
from .verdict import judge_failure
from .wire import Exited, Hello, Kill, Results, ShardReady, Spawn, Spawned, SpawnFailed

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RESTART_PAUSE = 1.0  # seconds between attempts to start a zygote that would not start
_SEND_PATIENCE = 10.0  # seconds a message to the zygote may wait for room on its socket
STARVED_RETRIES = 2  # times a starved job is run again before `starved` is its Result
_HOLD = 0.25  # seconds a Result may wait to go back with others while the shard has enough work queued
_POOL, _WAKE = "pool", "wake"  # selector data of the pool's socket and of the threads' wake-up pipe


class _Handle:
    """The judge's view of one spawned child: filled in by the zygote's messages."""

    def __init__(self, job_id: int):
        self.id = job_id
        self.spawned = threading.Event()
        self.exited = threading.Event()
        self.failure: str | None = None
        self.exit: Exited | None = None

    def fail(self, why: str) -> None:
        self.failure = self.failure or why
        self.spawned.set()
        self.exited.set()


class ZygoteClient:
    """Starts the zygote, sends it Spawn and Kill, and takes its reports when the driver's loop finds them.

    Its socket is registered in `selector` (with this client as data); `receive` reads what is there.
    Spawn may be called from any thread."""

    def __init__(self, preload: Iterable[str], first_uid: int, uid_lock: int, selector: selectors.BaseSelector):
        self.preload = tuple(preload)
        self.first_uid = first_uid
        self.uid_lock = uid_lock
        self.selector = selector
        self.lock = threading.Lock()
        self.handles: dict[int, _Handle] = {}
        self.next_id = 0
        self.alive = False
        self.decoder = wire.Decoder[wire.FromZygote](wire.FromZygote, wire.PACKET_LIMIT)
        self.start()

    def start(self) -> None:
        """Start a zygote and wait for its Hello (raises if it does not come)."""
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
        ours.settimeout(60)
        try:
            data = ours.recv(wire.PACKET_LIMIT + 4)
        except OSError:
            data = b""
        hello = self.decoder.unpack(data) if data else None
        if not isinstance(hello, Hello):
            self._stop()
            raise RuntimeError(f"the zygote did not start (see its stderr): it said {hello!r}")
        ours.setblocking(False)
        self.layers: isolation.Layers = hello.layers
        self.selector.register(ours, selectors.EVENT_READ, self)
        self.alive = True

    def receive(self) -> None:
        """Take every report waiting on the socket; when the zygote is gone, every job in flight is lost."""
        while True:
            try:
                data = self.sock.recv(wire.PACKET_LIMIT + 4)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._lost()
                return
            message = self.decoder.unpack(data)
            if isinstance(message, Hello):
                continue
            with self.lock:
                handle = self.handles.get(message.id)
                if isinstance(message, (Exited, SpawnFailed)):
                    self.handles.pop(message.id, None)
            if handle is None:
                continue
            if isinstance(message, Spawned):
                handle.spawned.set()
            elif isinstance(message, SpawnFailed):
                handle.fail(message.reason)
            else:
                handle.exit = message
                handle.spawned.set()
                handle.exited.set()

    def _lost(self) -> None:
        with self.lock:
            self.alive = False
            lost, self.handles = list(self.handles.values()), {}
            self.selector.unregister(self.sock)
            self._stop()
        for handle in lost:
            handle.fail("the zygote died")

    def spawn(self, slot: int, limits: Limits, fds: list[int]) -> _Handle:
        with self.lock:
            self.next_id += 1
            handle = _Handle(self.next_id)
            if not self.alive:
                handle.fail("the zygote is down (the shard is starting a new one)")
                return handle
            self.handles[handle.id] = handle
            try:
                self._send_locked(wire.pack(Spawn(handle.id, slot, limits)), fds)
            except OSError as error:
                self.handles.pop(handle.id, None)
                handle.fail(f"cannot reach the zygote: {error}")
        return handle

    def kill(self, handle: _Handle, timeout: bool = False) -> None:
        with self.lock:
            if self.alive:
                try:
                    self._send_locked(wire.pack(Kill(handle.id, timeout)))
                except OSError:
                    pass

    def _send_locked(self, data: bytes, fds: list[int] | None = None) -> None:
        """One message on the (non-blocking) socket, waiting a while for room if the zygote is slow to read."""
        deadline = time.monotonic() + _SEND_PATIENCE
        while True:
            try:
                if fds is None:
                    self.sock.send(data)
                else:
                    socket.send_fds(self.sock, [data], fds)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise
                select.select([], [self.sock], [], 0.1)

    def close(self) -> None:
        with self.lock:
            if self.alive:
                self.alive = False
                self.selector.unregister(self.sock)
                self._stop()

    def _stop(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # tells the zygote: it kills its jobs and exits
        except OSError:
            pass
        self.sock.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()  # its own session and namespace: this reaches nothing else
            self.process.wait()


@dataclass
class _Running:
    """A call, script or stdio job in the loop: its execution, its steps and what they wait for."""

    id: int
    slot: int
    execution: Execution
    steps: Any  # Generator[Wait, None, Result]
    wait: Wait
    until: float  # an Await's deadline (time.monotonic())


class Driver:
    """The loop of one shard: jobs from the pool in, Results out, every job's pipes in one selector."""

    def __init__(self, sock: socket.socket, slots: list[int], first_uid: int, uid_lock: int, preload: list[str]):
        self.selector = selectors.DefaultSelector()
        self.sock = sock
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, _POOL)
        self.decoder = wire.Decoder[wire.ToDriver](wire.ToDriver, wire.SHARD_LIMIT)
        self.out = bytearray()  # to the pool, not yet taken by the socket
        self.writing = False  # whether the selector watches the pool's socket for room
        self.wake_r, self.wake_w = os.pipe()  # threads that finish an asserts job say so here
        os.set_blocking(self.wake_r, False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, _WAKE)
        self.free = sorted(slots, reverse=True)
        self.slot_count = len(slots)
        self.queue: deque[tuple[int, Job]] = deque()
        self.running: dict[int, _Running] = {}  # by the pool's job id
        self.threads = ThreadPoolExecutor(len(slots), thread_name_prefix="execalign-asserts")
        self.from_threads: list[tuple[int, int, Job, Result]] = []  # (id, slot, job, result), under `lock`
        self.retries: dict[int, int] = {}  # by job id: how many times a starved job was run again
        self.lock = threading.Lock()
        self.finished: tuple[list[int], list[Result]] = ([], [])
        self.held_since = 0.0  # when the oldest Result in `finished` was finished
        self.retry_at = 0.0
        self.client = ZygoteClient(preload, first_uid, uid_lock, self.selector)
        self._announce()

    def _announce(self) -> None:
        self._send(ShardReady(self.client.layers, self.client.process.pid, self.client.base))

    def _send(self, message: wire.FromDriver) -> None:
        self.out += wire.pack(message)
        self._flush()

    def _flush(self) -> None:
        try:
            while self.out:
                del self.out[: self.sock.send(self.out)]
        except BlockingIOError:
            pass
        except OSError:  # the pool is gone: nothing to tell it
            self.out.clear()
        if self.writing != bool(self.out):
            self.writing = bool(self.out)
            self.selector.modify(self.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if self.out else 0), _POOL)

    def serve(self) -> None:
        """Until the pool closes its socket."""
        while True:
            for key, events in self.selector.select(self._timeout()):
                if key.data is _POOL:
                    if events & selectors.EVENT_WRITE:
                        self._flush()
                    if events & selectors.EVENT_READ and not self._receive():
                        return
                elif key.data is _WAKE:
                    self._take_from_threads()
                elif key.data is self.client:
                    self.client.receive()
                else:
                    key.data.on_ready(key.fd, events)
            self._advance_all()
            if not self.client.alive and time.monotonic() >= self.retry_at:
                self._restart_zygote()
            self._start_jobs()
            self._answer()

    def _answer(self) -> None:
        """Send the finished jobs' Results: now if the shard needs more work soon, else with the next ones.

        While a job waits for each slot, the pool need not hear at once: Results go back together (at
        most `_HOLD` seconds late), one message and one wake-up of the pool for several jobs."""
        ids, results = self.finished
        if ids and (len(self.queue) < self.slot_count or time.monotonic() >= self.held_since + _HOLD):
            self.finished = ([], [])
            self._send(Results(ids, results))

    def _timeout(self) -> float | None:
        """Seconds until the nearest deadline of a job in the loop (None: no job waits on the clock)."""
        now = time.monotonic()
        deadlines = [r.execution.deadline if isinstance(r.wait, Pump) else r.until for r in self.running.values()]
        if not self.client.alive:
            deadlines.append(self.retry_at)
        if self.finished[0]:
            deadlines.append(self.held_since + _HOLD)
        return max(0.0, min(deadlines) - now) if deadlines else None

    def _receive(self) -> bool:
        """Take the pool's messages; False once it has closed the socket."""
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return True
            except OSError:
                data = b""
            if not data:
                return False
            for message in self.decoder.feed(data):
                self.queue.extend(zip(message.ids, message.jobs))

    def _start_jobs(self) -> None:
        while self.queue and self.free:
            job_id, job = self.queue.popleft()
            slot = self.free.pop()
            if job.mode == "asserts":  # its tests wait for the child's answers: a thread of its own
                self.threads.submit(self._run_on_thread, job_id, slot, job)
                continue
            try:
                execution = Execution(self.client, slot, job, self.selector)
                steps = execution.steps()
                wait = next(steps)
            except Exception as error:  # a bug of ours: reported as such, never as the code's failure
                self._finish(job_id, slot, job, judge_failure(job, f"{type(error).__name__}: {error}"))
                continue
            self.running[job_id] = _Running(job_id, slot, execution, steps, wait, self._until(wait))
            self._advance(self.running[job_id])

    @staticmethod
    def _until(wait: Wait) -> float:
        return time.monotonic() + wait.timeout if isinstance(wait, Await) else 0.0

    def _advance_all(self) -> None:
        for running in list(self.running.values()):
            self._advance(running)

    def _advance(self, running: _Running) -> None:
        """Resume the job's steps for as long as what they wait for is over."""
        execution = running.execution
        while True:
            wait = running.wait
            if isinstance(wait, Pump):
                if not wait.until() and execution.open_reads:
                    if execution.deadline <= time.monotonic():
                        execution.time_left()  # kills the job, and gives it a grace period to end
                    return
            elif not wait.event.is_set() and time.monotonic() < running.until:
                return
            try:
                running.wait = running.steps.send(None)
            except StopIteration as done:
                self._finish(running.id, running.slot, execution.job, done.value)
                return
            except Exception as error:  # a bug of ours
                running.steps.close()
                failure = judge_failure(execution.job, f"{type(error).__name__}: {error}")
                self._finish(running.id, running.slot, execution.job, failure)
                return
            running.until = self._until(running.wait)

    def _finish(self, job_id: int, slot: int, job: Job, result: Result) -> None:
        self.running.pop(job_id, None)
        self.free.append(slot)
        if result.status == "starved" and self.retries.get(job_id, 0) < STARVED_RETRIES:
            self.retries[job_id] = self.retries.get(job_id, 0) + 1
            self.queue.appendleft((job_id, job))  # the machine's doing, not the code's: run it again first
            return
        self.retries.pop(job_id, None)
        if not self.finished[0]:
            self.held_since = time.monotonic()
        self.finished[0].append(job_id)
        self.finished[1].append(result)

    def _run_on_thread(self, job_id: int, slot: int, job: Job) -> None:
        try:
            result = Execution(self.client, slot, job).run()
        except Exception as error:  # a bug of ours
            result = judge_failure(job, f"{type(error).__name__}: {error}")
        with self.lock:
            self.from_threads.append((job_id, slot, job, result))
        os.write(self.wake_w, b"\0")

    def _take_from_threads(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self.lock:
            done, self.from_threads = self.from_threads, []
        for job_id, slot, job, result in done:
            self._finish(job_id, slot, job, result)

    def _restart_zygote(self) -> None:
        try:
            self.client.start()
        except Exception as error:  # the machine's: jobs meanwhile end as infra_error
            print(f"execalign shard: cannot start a zygote: {error}", file=sys.stderr)
            self.retry_at = time.monotonic() + _RESTART_PAUSE
            return
        self._announce()

    def close(self) -> None:
        for running in list(self.running.values()):
            running.steps.close()
        self.client.close()


def main(fd: int, slots: str, first_uid: int, uid_lock: int, preload: str) -> None:
    """Serve the pool on socket `fd` with the slots `slots` ("3,4"), then exit."""
    sock = socket.socket(fileno=fd)
    driver = Driver(sock, [int(s) for s in slots.split(",")], first_uid, uid_lock, [m for m in preload.split(",") if m])
    try:
        driver.serve()
    finally:
        driver.close()
        sys.stdout.flush()
        os._exit(0)  # threads of jobs still waiting on a dead zygote do not hold the exit
