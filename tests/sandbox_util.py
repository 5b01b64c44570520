"""Helpers for sandbox tests: find what a task may have left behind."""

import psutil

from sandbox import Task
from sandbox.zygote import SLOT_UID_BASE


def task_processes(workers: int = 16) -> list:
    """Processes running as a sandbox slot uid (host view), i.e. anything a task left alive."""
    uids = range(SLOT_UID_BASE, SLOT_UID_BASE + workers)
    found = []
    for p in psutil.process_iter(["uids", "pid", "cmdline"]):
        try:
            if p.info["uids"] and p.info["uids"].real in uids:
                found.append(p.info)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def quick(pool):
    return pool.run(Task(mode="call", code="", call="1"))
