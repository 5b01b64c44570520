"""The zygote: a warm process that forks one isolated child per job.

Started by the judge (`sandbox.zygote.main(BASE_DIR, PRELOAD, FD, FIRST_UID)`)
before any job data exists, with a clean environment and the judge's socket as
FD; with root, the job of slot n runs as uid FIRST_UID + n (a block of uids the
judge holds for this pool alone: `isolation.claim_uid_block`). With
root it moves into new PID, network, mount and IPC namespaces (it is PID 1
there, with its own /proc); otherwise it becomes a child subreaper. It
pre-imports the tracer and common modules, compiles the jobs' seccomp filter,
makes a memory cgroup per slot where it can, starts the janitor
(`sandbox.janitor`), then serves the judge (messages in `sandbox.wire`):

  Spawn(id, slot, limits) + 5 fds -> forks a child, replies Spawned
  Kill(id, timeout)               -> SIGKILL to the job's process group (for a
                                     timeout, first how long its processes ran
                                     and waited for a CPU)
  (child ends)                    -> kills whatever the job left, renames its
                                     directory into the trash if it is not
                                     empty, replies Exited with the wait status,
                                     CPU time and peak memory

The forked child joins its slot's cgroup, puts the pipe ends at
`wire.CHILD_FDS`, isolates itself, loads the seccomp filter, writes `SetupDone`
and runs `sandbox.child`. The zygote never decodes a job's code: the judge sends
that straight to the child. A job's working directory is `slotN/work`: the slot
directory holds the slot's Landlock rule and stays; `work` is swapped for a
fresh one after any job that wrote in it.
"""

from __future__ import annotations

import fcntl
import gc
import importlib
import os
import select
import selectors
import signal
import socket
import sys
import time
from typing import Any

import msgspec
import psutil

from . import isolation, janitor, wire
from .wire import CHILD_FDS, CONTROL_FD, RESULT_FD, SETUP_FAILED, Exited, Hello, Kill, Spawn, Spawned, SpawnFailed

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


class Child(msgspec.Struct):
    """A forked process running job `id` in slot `slot`."""

    id: int
    slot: int
    pid: int
    started: float  # time.monotonic() at the fork
    run_time: float = 0.0  # measured when the judge has the job killed for its wall time
    wait_time: float = 0.0


class Slot(msgspec.Struct):
    """A worker slot: its uid (root), its directory (with the job's `work` in it), its Landlock rules, its cgroup."""

    uid: int | None
    directory: str
    ruleset: int  # -1 without Landlock
    cgroup: str = ""  # its memory cgroup ("" without one)
    procs: int = -1  # the cgroup's `tasks`, open for writing: a child joins it by writing "0"
    peak: int = -1  # the cgroup's memory.max_usage_in_bytes, open for reading and resetting
    oom: int = -1  # the cgroup's memory.oom_control, open for reading its count of OOM kills
    oom_kills: int = 0  # that count when the slot's current job started
    memory_limit: int = 0  # the cgroup's limit as last set (as found when the cgroup was made)

    @property
    def work(self) -> str:
        return os.path.join(self.directory, "work")


class Zygote:
    def __init__(self, sock: socket.socket, base: str, layers: isolation.Layers, first_uid: int, cgroups: str):
        self.sock = sock
        self.base = base
        self.layers = layers
        self.first_uid = first_uid
        self.cgroups = cgroups  # the directory of this pool's slot cgroups ("" without)
        self.seccomp = isolation.seccomp_program() if layers.seccomp else b""
        self.children: dict[int, Child] = {}  # by pid
        self.by_id: dict[int, Child] = {}
        self.slots: dict[int, Slot] = {}
        self.decoder = wire.Decoder[wire.ToZygote](wire.ToZygote, wire.PACKET_LIMIT)
        self.readable = isolation.readable_roots()
        self.sys_path = [p for p in sys.path if p and os.path.isabs(p) and p != os.getcwd()]
        self.trash = os.path.join(base, "trash")
        os.mkdir(self.trash, 0o700)
        self.trashed = 0
        self.to_janitor: list[bytes] = []  # paths the janitor's pipe had no room for yet
        self.janitor_pid, self.janitor_fd = self._start_janitor()

    def _start_janitor(self) -> tuple[int, int]:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(write_end)
                self.sock.close()
                signal.set_wakeup_fd(-1)
                isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
            finally:
                janitor.serve(read_end)
        os.close(read_end)
        os.set_blocking(write_end, False)
        return pid, write_end

    def send(self, message: wire.FromZygote) -> None:
        data = wire.pack(message)
        while True:
            try:
                self.sock.send(data)
                return
            except BlockingIOError:  # the judge is slow to read: wait for room, never drop a message
                select.select([], [self.sock], [], 1.0)

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
            self._feed_janitor()

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
                self._kill(request)

    def _kill(self, request: Kill) -> None:
        child = self.by_id.get(request.id)
        if child is None:
            return
        if request.timeout and not child.run_time:
            child.run_time, child.wait_time = self._schedule_times(child)
        self._kill_group(child.pid)

    def _schedule_times(self, child: Child) -> tuple[float, float]:
        """Seconds the job's live processes ran, and waited runnable for a CPU (kernel schedstat)."""
        run = wait = 0
        for pid in {child.pid, *self._job_pids(child)}:
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for task in tasks:
                try:
                    with open(f"/proc/{pid}/task/{task}/schedstat", "rb") as f:
                        ran, waited, _ = f.read().split()
                except (OSError, ValueError):
                    continue
                run, wait = run + int(ran), wait + int(waited)
        return run / 1e9, wait / 1e9

    def _slot(self, number: int) -> Slot:
        slot = self.slots.get(number)
        if slot is None:
            uid = self.first_uid + number if self.layers.uid_per_slot else None
            directory = os.path.join(self.base, f"slot{number}")
            os.mkdir(directory, 0o711 if uid is not None else 0o700)  # with a uid, the job owns `work` only
            ruleset = -1
            if self.layers.landlock_abi:
                ruleset = isolation.landlock_ruleset(
                    self.layers.landlock_abi, self.readable, [directory], ["/dev/null", "/dev/zero", "/dev/urandom"]
                )
            slot = Slot(uid, directory, ruleset)
            self._new_work(slot)
            if self.cgroups:
                slot.cgroup = os.path.join(self.cgroups, f"slot{number}")
                os.makedirs(slot.cgroup, exist_ok=True)
                # `tasks`, not cgroup.procs: moving the calling (single) thread takes no lock on every
                # thread group, whose writer waits for an RCU grace period (~15 ms on a busy machine)
                slot.procs = os.open(os.path.join(slot.cgroup, "tasks"), os.O_WRONLY | os.O_CLOEXEC)
                slot.peak = os.open(os.path.join(slot.cgroup, "memory.max_usage_in_bytes"), os.O_RDWR | os.O_CLOEXEC)
                slot.oom = os.open(os.path.join(slot.cgroup, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
                with open(os.path.join(slot.cgroup, "memory.limit_in_bytes")) as f:
                    slot.memory_limit = int(f.read())
            self.slots[number] = slot
        return slot

    def _new_work(self, slot: Slot) -> None:
        os.mkdir(slot.work, 0o700)
        if slot.uid is not None:
            os.chown(slot.work, slot.uid, slot.uid)

    def _set_memory_limit(self, slot: Slot, limit: int) -> None:
        """The slot cgroup's limit (and its memory+swap limit, set in the order the kernel accepts)."""
        if limit == slot.memory_limit:
            return
        swap_first = limit > slot.memory_limit
        for name in ("memory.memsw.limit_in_bytes", "memory.limit_in_bytes")[:: 1 if swap_first else -1]:
            try:
                isolation.write_cgroup(slot.cgroup, name, limit)
            except FileNotFoundError:  # no swap accounting
                pass
            except OSError:  # below what the slot still holds (a previous job's files): the rlimit stays the budget
                return
        slot.memory_limit = limit

    def _spawn(self, request: Spawn, fds: list[int]) -> None:
        try:
            if len(fds) != len(CHILD_FDS):
                raise ValueError(f"expected {len(CHILD_FDS)} file descriptors, got {len(fds)}")
            slot = self._slot(request.slot)
            if request.slot in {c.slot for c in self.children.values()}:
                raise RuntimeError(f"slot {request.slot} is busy")
            if slot.cgroup:
                self._set_memory_limit(slot, request.limits.memory + isolation.CGROUP_SLACK)
                os.pwrite(slot.peak, b"0", 0)  # the peak starts again from what the slot holds now
                slot.oom_kills = isolation.oom_kills(slot.oom)
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
        child = Child(request.id, request.slot, pid, time.monotonic())
        self.children[pid] = child
        self.by_id[request.id] = child
        self.send(Spawned(request.id, pid))

    def _become_child(self, request: Spawn, fds: list[int], slot: Slot) -> None:
        """In the forked child: isolate, then run the job. Never returns."""
        directory, uid = slot.work, slot.uid
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()
            if slot.procs >= 0:
                os.write(slot.procs, b"0")  # everything this job holds counts in its slot's memory cgroup
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds]  # above every target below
            for target, fd in zip(CHILD_FDS, high):
                os.dup2(fd, target, inheritable=target not in (CONTROL_FD, RESULT_FD))
            os.chdir(directory)
            os.environ.clear()
            os.environ.update(
                {
                    "PATH": "/usr/bin:/bin",
                    "HOME": directory,
                    "TMPDIR": directory,
                    "LANG": "C.UTF-8",
                    "PYTHONHASHSEED": "0",
                    "OMP_NUM_THREADS": "1",
                    "OPENBLAS_NUM_THREADS": "1",
                    "MKL_NUM_THREADS": "1",
                }
            )
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
            if self.seccomp:
                isolation.seccomp_enforce(self.seccomp)
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
            if pid == self.janitor_pid:
                self.janitor_pid, self.janitor_fd = self._start_janitor()  # it never should; the trash waits
                continue
            if child is None:
                continue  # a leftover of some job, now reaped
            del self.children[pid], self.by_id[child.id]
            slot = self.slots[child.slot]
            peak, oom_killed = usage.ru_maxrss * 1024, False
            if slot.peak >= 0:
                peak = max(peak, isolation.read_cgroup(slot.peak))
                oom_killed = isolation.oom_kills(slot.oom) > slot.oom_kills
            self._clear_work(slot)
            cpu = usage.ru_utime + usage.ru_stime
            self.send(Exited(child.id, status, cpu, peak, leftovers, child.run_time, child.wait_time, oom_killed))

    def _clear_work(self, slot: Slot) -> None:
        """Give the slot a fresh `work` if the job left anything (the old one goes to the janitor).

        With a uid per slot the job can write nothing but `work`; without, it may
        also have left entries beside it, which go too."""
        leave: list[str] = []
        if slot.uid is None:
            with os.scandir(slot.directory) as entries:
                leave = [e.name for e in entries if e.name != "work" or not e.is_dir(follow_symlinks=False)]
        if "work" not in leave:
            try:
                with os.scandir(slot.work) as entries:
                    if next(entries, None) is not None:
                        leave.append("work")
            except OSError:
                leave.append("work")
        for name in leave:
            self.trashed += 1
            path, target = os.path.join(slot.directory, name), os.path.join(self.trash, str(self.trashed))
            try:
                os.rename(path, target)
            except OSError:  # without root, a job can make its directory unmovable: removed here instead
                janitor.remove_tree(path)
                continue
            self.to_janitor.append(os.fsencode(target) + b"\n")
        if not os.path.lexists(slot.work):
            self._new_work(slot)

    def _feed_janitor(self) -> None:
        while self.to_janitor:
            try:
                os.write(self.janitor_fd, self.to_janitor[0])
            except BlockingIOError:  # the janitor is busy: the rest waits for the next round
                return
            except OSError:
                self.to_janitor.clear()  # no janitor: the trash stays until the pool closes
                return
            self.to_janitor.pop(0)

    def _job_pids(self, child: Child) -> list[int]:
        """The processes of the job (its uid in our PID namespace, else its descendants and our orphans)."""
        uid = self.first_uid + child.slot if self.layers.uid_per_slot else None
        if uid is not None and self.layers.namespaces:  # in our PID namespace: a short /proc
            return [p for p in _pids_of_uid(uid) if p not in self.children or p == child.pid]
        try:
            descendants = [p.pid for p in psutil.Process(child.pid).children(recursive=True)]
        except psutil.Error:
            descendants = []
        return descendants + self._orphans()

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
        try:
            pids = [p.pid for p in psutil.Process().children()]
        except psutil.Error:
            return []
        return [p for p in pids if p not in self.children and p != self.janitor_pid]

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
        os.close(self.janitor_fd)  # the janitor finishes what it was given, then exits
        try:
            os.waitpid(self.janitor_pid, 0)
        except ChildProcessError:
            pass
        janitor.remove_tree(self.base)
        remove_cgroups(self.cgroups)


def cgroups_of_pool(first_uid: int, root: str) -> str:
    """The directory of a pool's slot cgroups: named by its uid block, which no live pool shares."""
    return os.path.join(root, f"execalign-{(first_uid - isolation.UID_FIRST) // isolation.UID_BLOCK}")


def remove_cgroups(directory: str) -> None:
    """Remove a pool's slot cgroups (each must be empty of processes) and their directory."""
    if not directory:
        return
    try:
        slots = [e.path for e in os.scandir(directory) if e.is_dir()]
    except OSError:
        return
    for path in [*slots, directory]:
        try:
            os.rmdir(path)
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


def main(base: str, preload_list: str, fd: int, first_uid: int) -> None:
    preload = [m for m in preload_list.split(",") if m]
    sock = socket.socket(fileno=fd)
    layers = isolation.detect()
    cgroups = cgroups_of_pool(first_uid, layers.memory_cgroup) if layers.memory_cgroup and first_uid >= 0 else ""
    if cgroups:
        remove_cgroups(cgroups)  # left by a pool of this uid block that died
        os.makedirs(cgroups, exist_ok=True)
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
    zygote = Zygote(sock, base, layers, first_uid, cgroups)
    gc.collect()
    gc.freeze()  # children's collections never walk the shared heap: fewer copy-on-write faults per child
    zygote.send(Hello(layers, os.getpid()))
    zygote.serve()
