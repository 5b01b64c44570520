"""CPU time per process kind, from the OS's own accounting (Linux /proc, psutil).

A `Usage` snapshot holds, for the judge (this process), each zygote process and
the children the zygotes reaped: user + system CPU seconds and minor page faults.
`Usage.since(before)` gives the difference; `Spent.ceiling(jobs)` is the
projected ceiling `jobs / max CPU-seconds of any single process` (the judge or
one zygote: each child is a process of its own and runs on whatever core is
free). With root the pool's zygote moves into its own PID namespace, so the
process the judge started only waits for an inner one that does the work: both
are counted, the inner one found among the outer one's children.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import psutil

import sandbox


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


def _process_cpu(pid: int) -> Counters:
    """Like `counters`, with the process's CPU time at psutil's finer resolution where it has one."""
    base = counters(pid)
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return base
    return Counters(
        times.user + times.system, base.faults, times.children_user + times.children_system, base.reaped_faults
    )


def zygote_pids(pool: sandbox.Pool) -> list[int]:
    """Every zygote process of the pool: the ones the judge started, and the inner ones in PID namespaces.

    Knows `pool.client` (one zygote) and, for a sharded pool, `pool.clients` or
    `pool.shards` (objects with a `process` or a `client.process`)."""
    clients = list(getattr(pool, "clients", None) or getattr(pool, "shards", None) or [pool.client])
    namespaces = bool(getattr(pool.layers, "namespaces", False))  # mypy reads Pool.layers as None
    pids = []
    for client in clients:
        process = getattr(client, "process", None) or client.client.process
        pids.append(process.pid)
        if namespaces:
            try:
                pids += [p.pid for p in psutil.Process(process.pid).children()]
            except psutil.Error:
                pass
    return pids


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
    zygotes: dict[int, Counters]
    threads: dict[str, float] = field(default_factory=dict)

    @classmethod
    def now(cls, pool: sandbox.Pool) -> Usage:
        return cls(
            _process_cpu(os.getpid()),
            {pid: _process_cpu(pid) for pid in zygote_pids(pool)},
            judge_threads(),
        )

    def since(self, before: Usage) -> Spent:
        zygotes = {
            pid: c.cpu - before.zygotes[pid].cpu if pid in before.zygotes else c.cpu for pid, c in self.zygotes.items()
        }
        reaped = sum(c.reaped_cpu for c in self.zygotes.values()) - sum(c.reaped_cpu for c in before.zygotes.values())
        faults = sum(c.reaped_faults for c in self.zygotes.values()) - sum(
            c.reaped_faults for c in before.zygotes.values()
        )
        zygote_faults = sum(c.faults for c in self.zygotes.values()) - sum(c.faults for c in before.zygotes.values())
        threads = {k: v - before.threads.get(k, 0.0) for k, v in self.threads.items()}
        return Spent(
            judge=self.judge.cpu - before.judge.cpu,
            judge_faults=self.judge.faults - before.judge.faults,
            zygotes=zygotes,
            zygote_faults=zygote_faults,
            children=reaped,
            children_faults=faults,
            threads={k: v for k, v in threads.items() if v > 0},
        )


@dataclass(frozen=True)
class Spent:
    """CPU seconds (and minor faults) spent between two snapshots, by process kind."""

    judge: float
    judge_faults: int
    zygotes: dict[int, float]  # per zygote process
    zygote_faults: int
    children: float  # every process the zygotes reaped: the jobs' children and their leftovers
    children_faults: int
    threads: dict[str, float]  # the judge's, by thread name

    @property
    def zygote(self) -> float:
        return sum(self.zygotes.values())

    @property
    def total(self) -> float:
        return self.judge + self.zygote + self.children

    @property
    def busiest(self) -> float:
        """CPU seconds of the busiest single process (the judge or one zygote)."""
        return max([self.judge, *self.zygotes.values()])

    def ceiling(self, jobs: int) -> float:
        """Projected jobs/s if cores were unlimited: the busiest single process is the bottleneck."""
        return jobs / self.busiest if self.busiest > 0 else float("inf")
