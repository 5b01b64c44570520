"""CPU time per process kind, from the OS's own accounting (Linux /proc, psutil).

A `Usage` snapshot holds, for the judge (this process: the pool's side), each
shard's driver process, each zygote process, each slot process (the zygote's
children that fork the jobs, one per slot: `sandbox.slot`), the janitor of each
zygote, the children the slot processes reaped (the jobs) and the scoring
processes of `rewards.scorers`: user + system CPU seconds and minor page faults.
`Usage.since(before)` gives the difference; `Spent.ceiling(jobs)` is the
projected ceiling `jobs / max CPU-seconds of any single process` (the judge, one
driver, one zygote, one slot process, one janitor or one scoring process: each
child is a process of its own and runs on whatever core is free). With root a
zygote moves into its own PID namespace, so the process its driver started only
waits for an inner one that does the work: both are counted, the inner one
found among the outer one's children. A zygote's other children are its slot
processes (each holds the judge's socket) and its janitor (no socket).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import psutil

import sandbox
from rewards import scorers


@dataclass(frozen=True)
class Counters:
    cpu: float  # seconds, user + system
    faults: int  # minor page faults
    reaped_cpu: float = 0.0  # of the children this process waited for
    reaped_faults: int = 0


def counters(pid: int) -> Counters:
    """From /proc/PID/stat: the process's own CPU and faults, and those of the children it reaped."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    # after the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
    minflt, cminflt = int(fields[7]), int(fields[8])
    utime, stime, cutime, cstime = (int(x) / tick for x in fields[11:15])
    return Counters(utime + stime, minflt, cutime + cstime, cminflt)


def _process_cpu(pid: int) -> Counters | None:
    """Like `counters`, with the process's CPU time at psutil's finer resolution where it has one."""
    try:
        base = counters(pid)
        times = psutil.Process(pid).cpu_times()
    except (OSError, psutil.Error):  # ended meanwhile
        return None
    return Counters(
        times.user + times.system, base.faults, times.children_user + times.children_system, base.reaped_faults
    )


def _own_cpu() -> Counters:
    own = _process_cpu(os.getpid())
    assert own is not None  # this process is running
    return own


def shard_pids(pool: sandbox.Pool) -> tuple[list[int], list[int], list[int], list[int]]:
    """The pool's driver processes, its zygote processes (with the inner ones of PID namespaces), the
    zygotes' slot processes and their janitors."""
    drivers, zygotes, slots, janitors = [], [], [], []
    for shard in pool.shards:
        drivers.append(shard.process.pid)
        zygotes.append(shard.zygote_pid)
        working = shard.zygote_pid
        try:
            if pool.layers.namespaces:
                inner = psutil.Process(shard.zygote_pid).children()
                zygotes += [p.pid for p in inner]
                working = inner[0].pid if inner else -1
            for child in psutil.Process(working).children() if working > 0 else []:
                (slots if _has_socket(child.pid) else janitors).append(child.pid)
        except psutil.Error:
            pass
    return drivers, zygotes, slots, janitors


def _has_socket(pid: int) -> bool:
    """Whether the process holds a socket (a slot process holds the judge's; the janitor holds none)."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:") for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def judge_threads() -> dict[str, float]:
    """CPU seconds of each thread of this process, by thread name (numbered names grouped)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), "other")
        group = name.rsplit("_", 1)[0] if name.startswith("execalign-sandbox") else name
        group = "main" if group == "MainThread" else group
        out[group] = out.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


@dataclass(frozen=True)
class Usage:
    judge: Counters
    drivers: dict[int, Counters]
    zygotes: dict[int, Counters]
    slots: dict[int, Counters]
    janitors: dict[int, Counters]
    scoring: dict[int, Counters]
    threads: dict[str, float] = field(default_factory=dict)

    @classmethod
    def now(cls, pool: sandbox.Pool, before: bool = False) -> Usage:
        """A snapshot; `before=True` for the one that starts a measurement (this process is read last, so
        the reading of the others is not counted as the judge's work; at the end it is read first)."""
        judge = None if before else (_own_cpu(), judge_threads())
        kinds = (*shard_pids(pool), scorers.shared_pids())
        others = [{pid: c for pid in pids if (c := _process_cpu(pid)) is not None} for pids in kinds]
        judge = judge or (_own_cpu(), judge_threads())
        return cls(judge[0], *others, judge[1])

    def since(self, before: Usage) -> Spent:
        def own(now: dict[int, Counters], then: dict[int, Counters]) -> dict[int, float]:
            return {pid: c.cpu - then[pid].cpu if pid in then else c.cpu for pid, c in now.items()}

        def total(now: dict[int, Counters], then: dict[int, Counters], field: str) -> float:
            return sum(getattr(c, field) for c in now.values()) - sum(getattr(c, field) for c in then.values())

        threads = {k: v - before.threads.get(k, 0.0) for k, v in self.threads.items()}
        return Spent(
            judge=self.judge.cpu - before.judge.cpu,
            judge_faults=self.judge.faults - before.judge.faults,
            drivers=own(self.drivers, before.drivers),
            zygotes=own(self.zygotes, before.zygotes),
            slots=own(self.slots, before.slots),
            janitors=own(self.janitors, before.janitors),
            scoring=own(self.scoring, before.scoring),
            zygote_faults=int(total(self.zygotes, before.zygotes, "faults")),
            children=total(self.slots, before.slots, "reaped_cpu") + total(self.zygotes, before.zygotes, "reaped_cpu"),
            children_faults=int(
                total(self.slots, before.slots, "reaped_faults") + total(self.zygotes, before.zygotes, "reaped_faults")
            ),
            threads={k: v for k, v in threads.items() if v > 0},
        )


@dataclass(frozen=True)
class Spent:
    """CPU seconds (and minor faults) spent between two snapshots, by process kind."""

    judge: float
    judge_faults: int
    drivers: dict[int, float]  # per driver process
    zygotes: dict[int, float]  # per zygote process
    slots: dict[int, float]  # per slot process (it forks its slot's jobs and reaps them)
    janitors: dict[int, float]  # per janitor process (removes what jobs leave on disk)
    scoring: dict[int, float]  # per scoring process (`rewards.scorers`)
    zygote_faults: int
    children: float  # every process the slot processes and zygotes reaped: the jobs and their leftovers
    children_faults: int
    threads: dict[str, float]  # the judge's, by thread name

    @property
    def driver(self) -> float:
        return sum(self.drivers.values())

    @property
    def zygote(self) -> float:
        return sum(self.zygotes.values())

    @property
    def slot(self) -> float:
        return sum(self.slots.values())

    @property
    def janitor(self) -> float:
        return sum(self.janitors.values())

    @property
    def scorer(self) -> float:
        return sum(self.scoring.values())

    @property
    def total(self) -> float:
        return self.judge + self.driver + self.zygote + self.slot + self.janitor + self.scorer + self.children

    @property
    def busiest(self) -> float:
        """CPU seconds of the busiest single process (the judge, a driver, a zygote, a slot process, a janitor or
        a scoring process)."""
        kinds = (self.drivers, self.zygotes, self.slots, self.janitors, self.scoring)
        return max([self.judge, *(cpu for kind in kinds for cpu in kind.values())])

    def ceiling(self, jobs: int) -> float:
        """Projected jobs/s if cores were unlimited: the busiest single process is the bottleneck."""
        return jobs / self.busiest if self.busiest > 0 else float("inf")

    def projected(self, jobs: int, cores: int) -> dict[str, float]:
        """Jobs/s on `cores` cores (a slot per core, `sandbox.shard_count` shards) from this CPU, bound by each
        term: all the CPU over the cores, and the single processes of each kind the work spreads over (the
        judge is one process whatever the cores; drivers and zygotes one per shard; slot processes one per
        core). A computation from the CPU measured here, not a measurement."""
        shards = sandbox.shard_count(cores, cores)

        def rate(processes: int, cpu: float) -> float:
            return processes * jobs / cpu if cpu > 0 else float("inf")

        return {
            "all its CPU over the cores": rate(cores, self.total),
            "the judge (one process)": rate(1, self.judge),
            f"one driver of {shards}": rate(shards, self.driver),
            f"one zygote of {shards}": rate(shards, self.zygote),
            f"one slot process of {cores}": rate(cores, self.slot),
        }
