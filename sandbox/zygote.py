"""The zygote: a warm process that the judge asks for jobs; one process per worker slot forks them.

Started by the judge (`sandbox.zygote.main(BASE_DIR, PRELOAD, FD, FIRST_UID)`)
before any job data exists, with a clean environment and the judge's socket as
FD; with root, the job of slot n runs as uid FIRST_UID + n (a block of uids the
judge holds for this pool alone: `isolation.claim_uid_block`). With root it
moves into new PID, network, mount and IPC namespaces (it is PID 1 there, with
its own /proc); otherwise it becomes a child subreaper. It pre-imports the
tracer and common modules, loads the seccomp filter that every process after
it inherits, makes the directory of this pool's slot cgroups (named by its uid
block), starts the janitor (`sandbox.janitor`), then serves the judge
(messages in `sandbox.wire`):

  Spawn(id, slot, limits) + 5 fds -> to the slot's process (`sandbox.slot`, forked
                                     on the slot's first job), which forks the
                                     child and replies Spawned, then Exited
  Kill(id, timeout)               -> to the slot's process running job `id`

Slot processes reply on the judge's socket themselves (one datagram per
message). The zygote never decodes a job's code: the judge sends that straight
to the child.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import os
import signal
import socket
import sys
import time

import msgspec

from . import isolation, janitor, wire
from .slot import Place, Slot, loop, wake_on_child_exit
from .wire import Hello, Spawn, SpawnFailed

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


class SlotProcess(msgspec.Struct):
    """The zygote's view of a slot's process: its pid, its end of their socket, the job it runs."""

    pid: int
    requests: socket.socket
    job: int = 0  # id of its latest job (the one a Kill can be for)


class Zygote:
    def __init__(self, sock: socket.socket, base: str, layers: isolation.Layers, first_uid: int):
        self.sock = sock
        self.base = base
        self.layers = layers
        self.decoder = wire.Decoder[wire.ToZygote](wire.ToZygote, wire.PACKET_LIMIT)
        self.slots: dict[int, SlotProcess] = {}
        os.mkdir(os.path.join(base, "trash"), 0o700)
        self.janitor_pid, janitor_fd = self._start_janitor()
        self.place = Place(
            base=base,
            layers=layers,
            first_uid=first_uid,
            cgroups=pool_cgroups(layers, first_uid),
            readable=isolation.readable_roots(),
            sys_path=[p for p in sys.path if p and os.path.isabs(p) and p != os.getcwd()],
            judge=sock.fileno(),
            janitor=janitor_fd,
        )

    def _start_janitor(self) -> tuple[int, int]:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(write_end)
                self.sock.close()
                isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
            finally:
                janitor.serve(read_end)
        os.close(read_end)
        os.set_blocking(write_end, False)
        return pid, write_end

    def send(self, message: wire.FromZygote) -> None:
        wire.send(self.sock, message)

    def serve(self) -> None:
        self.wake = wake_on_child_exit()
        self.sock.setblocking(False)
        loop(self.sock, self.wake, self._read_requests, self._reap)
        self._shutdown()

    def _read_requests(self) -> bool:
        while True:
            try:
                received = wire.receive(self.sock, self.decoder)
            except BlockingIOError:
                return True
            if received is None:
                return False
            request, data, fds = received
            try:
                if isinstance(request, Spawn):
                    self._spawn(request, data, fds)
                else:
                    slot = next((s for s in self.slots.values() if s.job == request.id), None)
                    if slot is not None:
                        slot.requests.send(data)
            finally:
                for fd in fds:
                    os.close(fd)

    def _spawn(self, request: Spawn, data: bytes, fds: list[int]) -> None:
        for attempt in range(2):
            try:
                slot = self.slots.get(request.slot) or self._start_slot(request.slot)
                slot.job = request.id
                socket.send_fds(slot.requests, [data], fds)
                return
            except OSError as error:  # its process died (a bug of ours): a fresh one, once
                self._drop_slot(request.slot)
                if attempt:
                    self.send(SpawnFailed(request.id, f"{type(error).__name__}: {error}"))

    def _start_slot(self, number: int) -> SlotProcess:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # the slot's process keeps the judge's socket, the janitor's pipe and its own socket
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            keep = {0, 1, 2, self.place.judge, self.place.janitor, theirs.fileno()}
            for fd in map(int, os.listdir("/proc/self/fd")):
                if fd not in keep:
                    try:
                        os.close(fd)  # the other slots' sockets, the wake pipe (its signal fd too), a job's pipes
                    except OSError:
                        pass
            Slot(number, self.place, theirs).serve()
        theirs.close()
        slot = self.slots[number] = SlotProcess(pid, ours)
        return slot

    def _drop_slot(self, number: int) -> None:
        slot = self.slots.pop(number, None)
        if slot is not None:
            slot.requests.close()
            try:
                os.kill(slot.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _reap(self) -> None:
        """Reap what ends here: a slot's process (a bug of ours), the janitor, orphans of dead slots."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for number, slot in list(self.slots.items()):
                if slot.pid == pid:
                    self._drop_slot(number)  # its next job gets a fresh one; the judge times this one out
            if pid == self.janitor_pid:
                self.janitor_pid = 0

    def _shutdown(self) -> None:
        for slot in self.slots.values():
            slot.requests.close()  # each slot's process kills its job and exits
        deadline = time.monotonic() + 3
        while any(_alive(s.pid) for s in self.slots.values()) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.005)
        for number in list(self.slots):
            self._drop_slot(number)
        self._reap()
        os.close(self.place.janitor)  # the janitor finishes what it was given, then exits
        if self.janitor_pid:
            os.waitpid(self.janitor_pid, 0)
        janitor.remove_tree(self.base)
        remove_cgroups(self.place.cgroups)


def _alive(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == 0
    except ChildProcessError:
        return False


def pool_cgroups(layers: isolation.Layers, first_uid: int) -> dict[str, str]:
    """The directories of a pool's slot cgroups, by controller: named by its uid block, which no live pool shares."""
    if first_uid < 0:
        return {}
    name = f"execalign-{(first_uid - isolation.UID_FIRST) // isolation.UID_BLOCK}"
    roots = {"memory": layers.memory_cgroup, "cpu": layers.cpu_cgroup, "cpuacct": layers.cpu_usage_cgroup}
    return {controller: os.path.join(root, name) for controller, root in roots.items() if root}


def remove_cgroups(cgroups: dict[str, str]) -> None:
    """Remove a pool's slot cgroups (each must be empty of processes) and their directories."""
    for directory in cgroups.values():
        try:
            slots = [e.path for e in os.scandir(directory) if e.is_dir()]
        except OSError:
            continue
        for path in [*slots, directory]:
            try:
                os.rmdir(path)
            except OSError:
                pass


def _malloc_trim() -> None:
    """Give the heap's free memory back to the system (glibc; elsewhere nothing happens)."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)


def main(base: str, preload_list: str, fd: int, first_uid: int) -> None:
    preload = [m for m in preload_list.split(",") if m]
    sock = socket.socket(fileno=fd)
    layers = isolation.detect()
    cgroups = pool_cgroups(layers, first_uid)
    remove_cgroups(cgroups)  # left by a pool of this uid block that died
    for directory in cgroups.values():
        os.makedirs(directory, exist_ok=True)
    if layers.namespaces:
        isolation.unshare(isolation.ZYGOTE_NAMESPACES)
        inner = os.fork()
        if inner:  # stays outside as the namespace's parent; mirrors the zygote's exit
            sock.close()
            _, status = os.waitpid(inner, 0)
            janitor.remove_tree(base)
            remove_cgroups(cgroups)
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
    if layers.seccomp:
        isolation.seccomp_enforce(isolation.seccomp_program())  # for the zygote and all it starts
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
