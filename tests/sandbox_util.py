"""Helpers for sandbox tests: find what a job may have left behind."""

import psutil

from sandbox import Job


def job_processes(pool) -> list:
    """Processes running as one of the pool's job uids (host view), i.e. anything a job left alive."""
    uids = pool.uids
    found = []
    for p in psutil.process_iter(["uids", "pid", "cmdline"]):
        try:
            if p.info["uids"] and p.info["uids"].real in uids:
                found.append(p.info)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def quick(pool):
    return pool.run(Job(mode="call", code="", call="1"))
