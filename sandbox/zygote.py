"""The zygote: a warm process that forks one isolated child per job.

Started by the judge (`sandbox.zygote.main(BASE_DIR, PRELOAD, FD, FIRST_UID)`)
before any job data exists, with a clean environment and the judge's socket as
FD; with root, the job of slot n runs as uid FIRST_UID + n (a block of uids the
judge holds for this pool alone: `isolation.claim_uid_block`). With
root it moves into new PID, network and mount namespaces (it is PID 1 there,
with its own /proc); otherwise it becomes a child subreaper. It pre-imports the
tracer and common modules, then serves the judge (messages in `sandbox.wire`):

  Spawn(id, slot, limits) + 5 fds -> forks a child, replies Spawned
  Kill(id)                        -> SIGKILL to the job's process group
  (child ends)                    -> kills whatever the job left, removes its
                                     directory, replies Exited with the wait
                                     status and the child's CPU time and peak RSS

The forked child puts the pipe ends at `wire.CHILD_FDS`, isolates itself, writes
`SetupDone` and runs `sandbox.child`. The zygote never decodes a job's code: the
judge sends that straight to the child.
"""

from __future__ import annotations

import ctypes
import fcntl
import gc
import importlib
import os
import selectors
import shutil
import signal
import socket
import sys
import time
from typing import Any

import msgspec

from . import isolation, wire
from .wire import CHILD_FDS, CONTROL_FD, RESULT_FD, SETUP_FAILED, Exited, Hello, Spawn, Spawned, SpawnFailed

# Modules imported once in the zygote. Each adds to every fork's cost (page tables),
# so only what most generated code uses; others are imported by the job itself.
DEFAULT_PRELOAD = (
    "collections",
    "itertools",
    "functools",
    "math",
    "re",
    "string",
    "heapq",
    "bisect",
    "json",
    "random",
    "copy",
    "operator",
    "typing",
)


# A job's environment, set once in the zygote (each child adds its HOME and TMPDIR).
JOB_ENVIRONMENT = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class Child(msgspec.Struct):
    """A forked process running job `id` in slot `slot`."""

    id: int
    slot: int
    pid: int
    directory: str


class Slot(msgspec.Struct):
    """A worker slot: its uid (root), its working directory (emptied after every job), its Landlock rules."""

    uid: int | None
    directory: str
    ruleset: int  # -1 without Landlock


class Zygote:
    def __init__(self, sock: socket.socket, base: str, layers: isolation.Layers, first_uid: int):
        self.sock = sock
        self.base = base
        self.layers = layers
        self.first_uid = first_uid
        self.children: dict[int, Child] = {}  # by pid
        self.by_id: dict[int, Child] = {}
        self.slots: dict[int, Slot] = {}
        self.decoder = wire.Decoder[wire.ToZygote](wire.ToZygote, wire.PACKET_LIMIT)
        self.readable = isolation.readable_roots()
        self.sys_path = [p for p in sys.path if p and os.path.isabs(p) and p != os.getcwd()]

    def send(self, message: wire.FromZygote) -> None:
        self.sock.sendall(wire.pack(message))

    def serve(self) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.wake = (wake_r, wake_w)
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        selector.register(wake_r, selectors.EVENT_READ)
        self.sock.setblocking(False)
        while True:
            for key, _ in selector.select(timeout=1.0):
                if key.fileobj is self.sock:
                    if not self._read_requests():
                        self._shutdown()
                        return
                else:
                    try:
                        while os.read(wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
            self._reap()

    def _read_requests(self) -> bool:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, wire.PACKET_LIMIT + 4, len(CHILD_FDS))
            except BlockingIOError:
                return True
            if not data:
                return False
            request = self.decoder.unpack(data)
            if isinstance(request, Spawn):
                self._spawn(request, fds)
            else:
                child = self.by_id.get(request.id)
                if child is not None:
                    self._kill_group(child.pid)

    def _slot(self, number: int) -> Slot:
        slot = self.slots.get(number)
        if slot is None:
            uid = self.first_uid + number if self.layers.uid_per_slot else None
            directory = os.path.join(self.base, f"slot{number}")
            os.mkdir(directory, 0o700)
            if uid is not None:
                os.chown(directory, uid, uid)
            ruleset = -1
            if self.layers.landlock_abi:
                ruleset = isolation.landlock_ruleset(
                    self.layers.landlock_abi, self.readable, [directory], ["/dev/null", "/dev/zero", "/dev/urandom"]
                )
            slot = self.slots[number] = Slot(uid, directory, ruleset)
        return slot

    def _spawn(self, request: Spawn, fds: list[int]) -> None:
        try:
            if len(fds) != len(CHILD_FDS):
                raise ValueError(f"expected {len(CHILD_FDS)} file descriptors, got {len(fds)}")
            slot = self._slot(request.slot)
            if request.slot in {c.slot for c in self.children.values()}:
                raise RuntimeError(f"slot {request.slot} is busy")
            pid = os.fork()
        except Exception as error:
            for fd in fds:
                os.close(fd)
            self.send(SpawnFailed(request.id, f"{type(error).__name__}: {error}"))
            return
        if pid == 0:
            self._become_child(request, fds, slot)
        for fd in fds:
            os.close(fd)
        child = Child(request.id, request.slot, pid, slot.directory)
        self.children[pid] = child
        self.by_id[request.id] = child
        self.send(Spawned(request.id, pid))

    def _become_child(self, request: Spawn, fds: list[int], slot: Slot) -> None:
        """In the forked child: isolate, then run the job. Never returns."""
        directory, uid = slot.directory, slot.uid
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds]  # above every target below
            for target, fd in zip(CHILD_FDS, high):
                os.dup2(fd, target, inheritable=target not in (CONTROL_FD, RESULT_FD))
            os.chdir(directory)
            os.environ["HOME"] = os.environ["TMPDIR"] = directory  # the rest is JOB_ENVIRONMENT, set by the zygote
            if "tempfile" in sys.modules:
                tempfile: Any = sys.modules["tempfile"]
                tempfile.tempdir = directory
            limits = request.limits
            isolation.apply_rlimits(
                limits.memory,
                limits.cpu_time,
                limits.file_size,
                limits.open_files,
                limits.processes if uid is not None else None,
            )
            if slot.ruleset >= 0:
                isolation.landlock_enforce(slot.ruleset)
            os.closerange(max(CHILD_FDS) + 1, 1 << 16)  # the zygote's socket, pipes and rulesets
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            sys.path[:] = self.sys_path
            from . import child

            wire.write(RESULT_FD, wire.SetupDone())  # isolation is in place, the code starts now
        except BaseException as error:
            try:
                os.write(2, f"execalign sandbox setup failed: {type(error).__name__}: {error}\n".encode())
            finally:
                os._exit(SETUP_FAILED)
        child.run(CONTROL_FD, RESULT_FD)

    def _kill_group(self, pid: int) -> None:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _reap(self) -> None:
        while True:
            try:  # WNOWAIT: the dead child stays a zombie, so its pid (and group id) cannot be reused yet
                dead = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if dead is None or dead.si_pid == 0:
                return
            child = self.children.get(dead.si_pid)
            leftovers = self._kill_leftovers(child) if child is not None else 0
            pid, status, usage = os.wait4(dead.si_pid, 0)
            if child is None:
                continue  # a leftover of some job, now reaped
            del self.children[pid], self.by_id[child.id]
            _empty(child.directory)
            self.send(Exited(child.id, status, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, leftovers))

    def _kill_leftovers(self, child: Child) -> int:
        """Kill what the job started: its process group, then any process of its uid, then orphans."""
        killed = 0
        self._kill_group(child.pid)
        uid = self.first_uid + child.slot if self.layers.uid_per_slot else None
        for attempt in range(50):
            if uid is not None and self.layers.namespaces:  # in our PID namespace: a short /proc
                victims = [p for p in _pids_of_uid(uid) if p not in self.children]
            else:
                victims = self._orphans()
            if not victims:
                break
            for pid in set(victims):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except (ProcessLookupError, PermissionError):
                    pass
            self._reap_orphans()
            time.sleep(0.001 * attempt)
        return killed

    def _orphans(self) -> list[int]:
        """Children of the zygote that are not running jobs (leftovers it adopted as subreaper)."""
        import psutil  # only here (no PID namespace): every module the zygote holds makes each fork dearer

        try:
            pids = [p.pid for p in psutil.Process().children()]
        except psutil.Error:
            return []
        return [p for p in pids if p not in self.children]

    def _reap_orphans(self) -> None:
        for pid in self._orphans():
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass

    def _shutdown(self) -> None:
        for child in list(self.children.values()):
            self._kill_group(child.pid)
        deadline = time.monotonic() + 2
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.005)
        shutil.rmtree(self.base, ignore_errors=True)


def _empty(directory: str) -> None:
    """Remove everything a job left in its slot directory (and give the directory back to its owner)."""
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass


def _pids_of_uid(uid: int) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    pids.append(int(name))
            except OSError:
                pass
    return pids


def _malloc_trim() -> None:
    """Give the heap's free memory back to the system (glibc; elsewhere nothing happens)."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)


def main(base: str, preload_list: str, fd: int, first_uid: int) -> None:
    preload = [m for m in preload_list.split(",") if m]
    sock = socket.socket(fileno=fd)
    layers = isolation.detect()
    if layers.namespaces:
        isolation.unshare(isolation.CLONE_NEWPID | isolation.CLONE_NEWNET | isolation.CLONE_NEWNS)
        inner = os.fork()
        if inner:  # stays outside as the namespace's parent; mirrors the zygote's exit
            sock.close()
            _, status = os.waitpid(inner, 0)
            shutil.rmtree(base, ignore_errors=True)
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
        isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        isolation.mount_private_proc()
        for covered in isolation.expose_to_jobs(isolation.readable_roots()):
            layers.notes.append(f"{covered} is hidden from jobs; only the Python installation in it is bound back")
    else:
        try:
            isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1)
        except OSError:
            layers.notes.append("not a child subreaper: processes that escape their child's group may outlive it")
    import tracer
    import tracer.backends.settrace

    if tracer.env.HAS_MONITORING:
        import tracer.backends.sysmon
    from . import child  # noqa: F401

    for module in preload:
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    zygote = Zygote(sock, base, layers, first_uid)
    os.environ.clear()
    os.environ.update(JOB_ENVIRONMENT)
    gc.collect()
    gc.freeze()  # children's collections never walk the shared heap: fewer copy-on-write faults per child
    _malloc_trim()  # what start-up freed goes back to the system: fewer pages for each fork to map
    zygote.send(Hello(layers, os.getpid()))
    zygote.serve()
