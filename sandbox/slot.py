"""A worker slot's process: it forks that slot's jobs, one at a time, and cleans up after each.

The zygote forks one `Slot` process per worker slot, the first time the slot
is used, and hands it the slot's `Spawn` and `Kill` requests. The slot process
joins the slot's cpu and cpuacct cgroups once (a move in the cpu controller waits
for the kernel), makes the slot's directory and Landlock rules, becomes the subreaper
of its jobs, and then for each `Spawn`: forks the child, which joins the
slot's memory cgroup (a fast move; the slot process stays out of it, so the
kernel's OOM killer never picks it), isolates itself and runs the job
(`become_child`); replies `Spawned` on the judge's socket, and when the child
ends kills whatever the job left, moves the job's working directory to the
janitor if the job wrote in it, and replies `Exited` with the wait status, CPU
time and peak memory.

A slot's directory `slotN` holds its Landlock rule and stays; the job's working
directory is `slotN/work`, swapped for a fresh one after any job that wrote in it.
"""

from __future__ import annotations

import fcntl
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec

from . import isolation, janitor, wire
from .wire import CHILD_FDS, CONTROL_FD, RESULT_FD, SETUP_FAILED, Exited, Kill, Spawn, Spawned, SpawnFailed


class Child(msgspec.Struct):
    """A forked process running job `id`."""

    id: int
    pid: int
    run_time: float = 0.0  # measured when the judge has the job killed for its wall time
    wait_time: float = 0.0
    memory_start: int = 0  # what the slot's memory cgroup held when the job started
    cpu_start: int = 0  # the slot's cpuacct usage (ns) when the job started


class Place(msgspec.Struct, frozen=True):
    """What a slot process needs from the zygote: the pool's directories and layers, the judge's socket."""

    base: str
    layers: isolation.Layers
    first_uid: int
    cgroups: dict[str, str]  # controller -> directory of this pool's slot cgroups
    readable: list[str]  # what a job may read (Landlock)
    sys_path: list[str]
    judge: int  # the judge's socket (shared with the zygote: one message per datagram)
    janitor: int  # the janitor's pipe (one path per line, each line written whole)


class Slot:
    """The process serving worker slot `number`; `serve` never returns."""

    def __init__(self, number: int, place: Place, requests: socket.socket):
        self.number = number
        self.place = place
        self.layers = place.layers
        self.requests = requests
        self.judge = socket.socket(fileno=place.judge)
        self.decoder = wire.Decoder[wire.ToZygote](wire.ToZygote, wire.PACKET_LIMIT)
        self.uid = place.first_uid + number if self.layers.uid_per_slot else None
        self.directory = os.path.join(place.base, f"slot{number}")
        self.work = os.path.join(self.directory, "work")
        self.trash = os.path.join(place.base, "trash")
        self.trashed = 0
        self.to_janitor: list[bytes] = []  # paths the janitor's pipe had no room for yet
        self.child: Child | None = None
        self.cgroup = ""
        self.tasks = self.peak = self.usage = self.oom = -1  # the memory cgroup's files, open once
        self.cpu_usage: int | None = None  # the cpuacct cgroup's usage file, open once
        self.oom_kills = 0
        self.memory_limit = 0
        self.ruleset = -1
        self.broken = ""  # why the slot could not be set up

    # ------------------------------------------------------------ setting up

    def start(self) -> None:
        """In the new slot process: its cgroups, its directory and rules."""
        isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1)  # what a job leaves comes back to this process
        for controller, directory in self.place.cgroups.items():
            path = os.path.join(directory, f"slot{self.number}")
            os.makedirs(path, exist_ok=True)
            if controller == "memory":
                self._open_memory_cgroup(path)  # each child joins it (this process stays out: never its OOM victim)
            else:
                isolation.join_cgroup(path)  # every job forked from here is born in it
            if controller == "cpuacct":  # counts the CPU of every process born here, ended ones too
                self.cpu_usage = os.open(os.path.join(path, "cpuacct.usage"), os.O_RDONLY | os.O_CLOEXEC)
        os.makedirs(self.directory, 0o711 if self.uid is not None else 0o700, exist_ok=True)  # a job owns `work` only
        self._clear_work()  # after a slot process that died: what its last job left
        if self.layers.landlock_abi:
            devices = ["/dev/null", "/dev/zero", "/dev/urandom"]
            self.ruleset = isolation.landlock_ruleset(
                self.layers.landlock_abi, self.place.readable, [self.directory], devices
            )

    def _open_memory_cgroup(self, path: str) -> None:
        self.cgroup = path
        flags = os.O_CLOEXEC
        self.tasks = os.open(os.path.join(path, "tasks"), os.O_WRONLY | flags)
        self.peak = os.open(os.path.join(path, "memory.max_usage_in_bytes"), os.O_RDWR | flags)
        self.usage = os.open(os.path.join(path, "memory.usage_in_bytes"), os.O_RDONLY | flags)
        self.oom = os.open(os.path.join(path, "memory.oom_control"), os.O_RDONLY | flags)
        with open(os.path.join(path, "memory.limit_in_bytes")) as f:
            self.memory_limit = int(f.read())

    def _new_work(self) -> None:
        os.mkdir(self.work, 0o700)
        if self.uid is not None:
            os.chown(self.work, self.uid, self.uid)

    def _set_memory_limit(self, limit: int) -> None:
        """The cgroup's limit (and its memory+swap limit), set in the order the kernel accepts."""
        if limit == self.memory_limit:
            return
        swap_first = limit > self.memory_limit
        for name in ("memory.memsw.limit_in_bytes", "memory.limit_in_bytes")[:: 1 if swap_first else -1]:
            try:
                isolation.write_cgroup(self.cgroup, name, limit)
            except FileNotFoundError:  # no swap accounting
                pass
            except OSError:  # below what the slot still holds (a previous job's files): the rlimit stays the budget
                return
        self.memory_limit = limit

    # ------------------------------------------------------------ serving

    def send(self, message: wire.FromZygote) -> None:
        wire.send(self.judge, message)

    def serve(self) -> None:
        try:
            wake = wake_on_child_exit()
            try:
                self.start()
            except Exception as error:  # every job of this slot says so, rather than wait for an answer
                self.broken = f"the slot could not be set up: {type(error).__name__}: {error}"
            loop(self.requests, wake, self._read_requests, self._tick)
            self._shutdown()
        finally:
            os._exit(0)

    def _tick(self) -> None:
        self._reap()
        self._feed_janitor()

    def _read_requests(self) -> bool:
        try:
            received = wire.receive(self.requests, self.decoder)
        except BlockingIOError:
            return True
        if received is None:
            return False
        request, _, fds = received
        if isinstance(request, Spawn):
            self._spawn(request, fds)
        else:
            self._kill(request)
        return True

    def _spawn(self, request: Spawn, fds: list[int]) -> None:
        try:
            if len(fds) != len(CHILD_FDS):
                raise ValueError(f"expected {len(CHILD_FDS)} file descriptors, got {len(fds)}")
            if self.child is not None:
                raise RuntimeError(f"slot {self.number} is busy")
            if self.broken:
                raise RuntimeError(self.broken)
            start = 0
            cpu_start = isolation.read_cgroup(self.cpu_usage) if self.cpu_usage is not None else 0
            if self.cgroup:
                self._set_memory_limit(request.limits.memory + isolation.CGROUP_SLACK)
                os.pwrite(self.peak, b"0", 0)  # the peak starts again from what the slot holds now
                self.oom_kills, start = isolation.oom_kills(self.oom), isolation.read_cgroup(self.usage)
            pid = os.fork()
        except Exception as error:
            for fd in fds:
                os.close(fd)
            self.send(SpawnFailed(request.id, f"{type(error).__name__}: {error}"))
            return
        if pid == 0:
            become_child(request, fds, self)
        for fd in fds:
            os.close(fd)
        self.child = Child(request.id, pid, memory_start=start, cpu_start=cpu_start)
        self.send(Spawned(request.id, pid))

    def _kill(self, request: Kill) -> None:
        child = self.child
        if child is None or child.id != request.id:
            return
        if request.timeout and not child.run_time and self.place.cgroups.get("cpu") and self.cpu_usage is not None:
            child.run_time, child.wait_time = self._schedule_times(child)
        _kill_group(child.pid)

    def _schedule_times(self, child: Child) -> tuple[float, float]:
        """Seconds the job ran, and its live processes waited runnable for a CPU (kernel schedstat).

        Measured only with cpu and cpuacct cgroups per slot: there a job's processes share one
        CPU share, so no priority or session it takes makes it wait longer, and the time it ran
        is its cgroup's whole CPU usage, so processes that ran and ended (reaped by anyone, or
        never zombies) count: a job cannot hide its own CPU to read as starved."""
        assert self.cpu_usage is not None
        ran = (isolation.read_cgroup(self.cpu_usage) - child.cpu_start) / 1e9
        wait = 0
        for pid in {child.pid, *self._job_pids()}:
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for task in tasks:
                try:
                    with open(f"/proc/{pid}/task/{task}/schedstat", "rb") as f:
                        wait += int(f.read().split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        return ran, wait / 1e9

    def _job_pids(self) -> list[int]:
        """Every process of the job: its uid's in our PID namespace, else this process's other children."""
        if self.uid is not None and self.layers.namespaces:  # in our PID namespace: a short /proc
            return _pids_of_uid(self.uid)
        import psutil  # only here (no PID namespace): every module the zygote holds makes each fork dearer

        try:
            return [p.pid for p in psutil.Process().children(recursive=True)]
        except psutil.Error:
            return []

    def _reap(self) -> None:
        while True:
            try:  # WNOWAIT: the dead child stays a zombie, so its pid (and group id) cannot be reused yet
                dead = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if dead is None or dead.si_pid == 0:
                return
            child = self.child if self.child is not None and self.child.pid == dead.si_pid else None
            leftovers = self._kill_leftovers(child) if child is not None else 0
            _, status, usage = os.wait4(dead.si_pid, 0)
            if child is None:
                continue  # a leftover of the job, now reaped
            self.child = None
            peak, oom_killed = usage.ru_maxrss * 1024, False
            if self.cgroup:
                peak = max(peak, isolation.read_cgroup(self.peak) - child.memory_start)
                oom_killed = isolation.oom_kills(self.oom) > self.oom_kills
            self._clear_work()
            cpu = usage.ru_utime + usage.ru_stime
            self.send(Exited(child.id, status, cpu, peak, leftovers, child.run_time, child.wait_time, oom_killed))

    def _kill_leftovers(self, child: Child) -> int:
        """Kill what the job started: its process group, then every other process of the job."""
        killed = 0
        _kill_group(child.pid)
        for attempt in range(50):
            victims = [p for p in self._job_pids() if p != child.pid]
            if not victims:
                break
            for pid in set(victims):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except (ProcessLookupError, PermissionError):
                    pass
            for pid in victims:  # those that were our children (adopted as subreaper)
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            time.sleep(0.001 * attempt)
        return killed

    def _clear_work(self) -> None:
        """Give the slot a fresh `work` if the job left anything, or none is there (the old one goes to the janitor).

        With a uid per slot the job can write nothing but `work`; without, it may
        also have left entries beside it, which go too."""
        leave: list[str] = []
        if self.uid is None:
            with os.scandir(self.directory) as entries:
                leave = [e.name for e in entries if e.name != "work" or not e.is_dir(follow_symlinks=False)]
        if "work" not in leave:
            try:
                with os.scandir(self.work) as entries:
                    if next(entries, None) is not None:
                        leave.append("work")
            except OSError:
                leave.append("work")
        for name in leave:
            self.trashed += 1
            path = os.path.join(self.directory, name)
            target = os.path.join(self.trash, f"{self.number}-{self.trashed}")
            try:
                os.rename(path, target)
            except OSError:  # without root, a job can make its directory unmovable: removed here instead
                janitor.remove_tree(path)
                continue
            self.to_janitor.append(os.fsencode(target) + b"\n")
        if not os.path.lexists(self.work):
            self._new_work()

    def _feed_janitor(self) -> None:
        while self.to_janitor:
            try:
                os.write(self.place.janitor, self.to_janitor[0])
            except BlockingIOError:  # the janitor is busy: the rest waits for the next round
                return
            except OSError:
                self.to_janitor.clear()  # no janitor: the trash stays until the pool closes
                return
            self.to_janitor.pop(0)

    def _shutdown(self) -> None:
        if self.child is not None:
            _kill_group(self.child.pid)
        deadline = time.monotonic() + 2
        while self.child is not None and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.005)


def wake_on_child_exit() -> int:
    """A pipe that a SIGCHLD makes readable (its read end): the event loops wait on it."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    return wake_r


def loop(requests: socket.socket, wake: int, read: Callable[[], bool], tick: Callable[[], None]) -> None:
    """Serve `requests` (`read` handles what came, False once they end) and child exits; `tick` after each wake."""
    selector = selectors.DefaultSelector()
    selector.register(requests, selectors.EVENT_READ)
    selector.register(wake, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select(timeout=1.0):
            if key.fileobj is requests:
                if not read():
                    return
            else:
                try:
                    while os.read(wake, 4096):
                        pass
                except BlockingIOError:
                    pass
        tick()


def become_child(request: Spawn, fds: list[int], slot: Slot) -> None:
    """In the forked child: isolate, then run the job. Never returns."""
    directory, uid = slot.work, slot.uid
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        if slot.tasks >= 0:  # by its `tasks` file: see `isolation.join_cgroup`
            os.write(slot.tasks, b"0")  # all this job holds counts in its slot's memory cgroup
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
        os.closerange(max(CHILD_FDS) + 1, 1 << 16)  # the sockets, pipes, cgroup files and rulesets
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        sys.path[:] = slot.place.sys_path
        from . import child

        wire.write(RESULT_FD, wire.SetupDone())  # isolation is in place, the code starts now
    except BaseException as error:
        try:
            os.write(2, f"execalign sandbox setup failed: {type(error).__name__}: {error}\n".encode())
        finally:
            os._exit(SETUP_FAILED)
    child.run(CONTROL_FD, RESULT_FD)


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
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
