"""The pool's end of one shard: its driver process and the jobs sent to it that are not answered yet.

A shard is a driver process (`sandbox.driver`) with the zygote it owns and a
few of the pool's slots. The pool hands it `Jobs` batches, at most `capacity`
jobs at a time (one running and three waiting per slot), and reads its `Results`
(`receive`). A driver that dies takes only its shard down: the pool answers the
shard's jobs in flight as infra_error and `start`s a new driver.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from concurrent.futures import Future

from . import wire
from .isolation import Layers
from .job import Job, Result
from .wire import Jobs, ShardReady

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_STARTER = (
    "import sys; from sandbox.driver import main; "
    "main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])"
)


class Shard:
    """One driver process and the pool's jobs on it (`in_flight`: id -> future and job)."""

    def __init__(self, number: int, slots: range, first_uid: int, uid_lock: int, preload: tuple[str, ...]):
        self.number = number
        self.slots = slots
        self.capacity = 4 * len(slots)  # jobs it holds at once: some queued in the driver, so Results can batch
        self.first_uid = first_uid
        self.uid_lock = uid_lock
        self.preload = preload
        self.in_flight: dict[int, tuple[Future[Result], Job]] = {}
        self.ready = False  # its driver said ShardReady: it takes jobs
        self.layers: Layers | None = None
        self.zygote_pid = -1  # the zygote process its driver started (host view)
        self.base = ""  # the directory of its slots' working directories (in the zygote's mount namespace)
        self.failures = 0  # starts in a row that ended before the driver was ready
        self.start()

    def start(self) -> None:
        """Start a driver (not ready until its ShardReady is received)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-P",  # not the current directory on sys.path: a `sandbox` folder there is not ours
                "-c",
                _STARTER,
                str(theirs.fileno()),
                ",".join(map(str, self.slots)),
                str(self.first_uid),
                str(self.uid_lock),
                ",".join(self.preload),
            ],
            pass_fds=[theirs.fileno()] + ([self.uid_lock] if self.uid_lock >= 0 else []),
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C reaches the pool's process only
        )
        theirs.close()
        self.sock = ours
        self.decoder = wire.Decoder[wire.FromDriver](wire.FromDriver, wire.SHARD_LIMIT)
        self.ready = False

    @property
    def room(self) -> int:
        """How many more jobs it takes now."""
        return self.capacity - len(self.in_flight) if self.ready else 0

    def send(self, ids: list[int], jobs: list[Job]) -> None:
        try:
            self.sock.sendall(wire.pack(Jobs(ids, jobs)), socket.MSG_NOSIGNAL)
        except OSError:  # the driver is gone: the pool finds its socket closed and answers these jobs
            pass

    def receive(self) -> list[wire.FromDriver] | None:
        """What the driver sent (one read: call when the socket is readable); None once it is gone."""
        try:
            data = self.sock.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            return None
        messages = list(self.decoder.feed(data))
        for message in messages:
            if isinstance(message, ShardReady):
                self.ready, self.failures = True, 0
                self.layers, self.zygote_pid, self.base = message.layers, message.zygote, message.base
        return messages

    def wait_ready(self, timeout: float) -> None:
        """Block until the driver is ready (at the pool's start); raise if it exits or takes too long."""
        self.sock.settimeout(timeout)
        try:
            while not self.ready:
                if self.receive() is None:
                    raise RuntimeError(
                        f"shard {self.number}'s driver exited while starting (status {self.process.wait()}; "
                        "see its stderr)"
                    )
        except TimeoutError:
            raise RuntimeError(f"shard {self.number}'s driver did not start in {timeout:g} s") from None
        finally:
            self.sock.settimeout(None)

    def stop(self) -> int:
        """Close the socket (the driver stops its zygote and exits) and wait for the driver: its exit status."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.ready = False
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()  # its own session: this reaches nothing else; its zygote sees the socket close
            return self.process.wait()
