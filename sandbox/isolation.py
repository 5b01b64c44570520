"""Which isolation layers this machine allows, and the system calls that apply them.

Layers, strongest first (each used when the machine allows it; `detect()`
reports what is on and why anything is off, never silently):

- namespaces (root): the zygote lives in its own PID, network and mount
  namespace with a fresh /proc: jobs see no process of the host, have no
  network interface at all (not even loopback), and die with the zygote;
- a uid per worker slot (root): jobs run unprivileged and cannot signal or
  read one another; RLIMIT_NPROC bounds their processes;
- Landlock (Linux 5.13+): a job may read the Python installation and system
  libraries, write only its own directory; from ABI 4 TCP bind/connect are
  refused, from ABI 6 signals and abstract sockets stay inside the job;
- always: own session and process group, rlimits (address space, CPU, file
  size, open files, no core), a throwaway working directory, a clean
  environment, isolated `sys.path`.
seccomp is not used: the namespaces and Landlock already cut the network and the
filesystem, and a BPF filter from Python would add cost to every job.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import resource
import stat
import sys
from collections.abc import Iterable

import msgspec

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1,
    2,
    4,
    8,
    32,
    4096,
    0x4000,
    0x40000,
)
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 1, 38, 36
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class Layers(msgspec.Struct, frozen=True):
    """What this machine allows; `notes` says why a layer is off."""

    root: bool
    namespaces: bool
    uid_per_slot: bool
    landlock_abi: int
    network: str  # how the network is cut
    notes: list[str]

    def describe(self) -> str:
        on = [
            name
            for name, flag in (
                ("namespaces (pid, net, mount)", self.namespaces),
                ("uid per slot", self.uid_per_slot),
                (f"landlock ABI {self.landlock_abi}", self.landlock_abi > 0),
            )
            if flag
        ]
        return (
            f"sandbox layers: {', '.join(on) or 'rlimits and process groups only'}; network: {self.network}"
            + "".join(f"\n  - {n}" for n in self.notes)
        )


def _errno_text() -> str:
    return os.strerror(ctypes.get_errno())


def unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), f"unshare: {_errno_text()}")


def prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}): {_errno_text()}")


def mount_private_proc() -> None:
    """In a new mount namespace: stop mount propagation, mount a /proc of our PID namespace."""
    if _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), f"mount --make-rprivate /: {_errno_text()}")
    if _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
        raise OSError(ctypes.get_errno(), f"mount proc: {_errno_text()}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    def enc(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    if _libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        raise OSError(ctypes.get_errno(), f"mount {source} on {target}: {_errno_text()}")


def _hidden_ancestor(path: str) -> str | None:
    """The first ancestor of `path` that other users cannot search (e.g. /root), if any."""
    current = "/"
    for part in os.path.normpath(path).strip("/").split("/")[:-1]:
        current = os.path.join(current, part)
        if not os.stat(current).st_mode & stat.S_IXOTH:
            return current
    return None


def expose_to_jobs(paths: Iterable[str]) -> list[str]:
    """Make `paths` reachable by unprivileged job uids (in our own mount namespace only).

    When Python lives under a directory others cannot search (pyenv under
    /root), that directory is covered with an empty tmpfs and the paths are bound
    back read-only: jobs reach Python, and nothing else that was there.
    Returns the directories covered.
    """
    groups: dict[str, list[str]] = {}
    for path in paths:
        hidden = _hidden_ancestor(path)
        if hidden is not None:
            groups.setdefault(hidden, []).append(path)
    for hidden, inside in groups.items():
        handles = {path: os.open(path, os.O_PATH) for path in inside}
        _mount("tmpfs", hidden, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
        for path, fd in handles.items():
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                os.makedirs(path, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "a").close()
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, None)
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
            os.close(fd)
    return sorted(groups)


def landlock_abi() -> int:
    if not sys.platform.startswith("linux"):
        return 0
    abi = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(abi), 0)


def _probe_namespaces() -> str | None:
    """None if a child can unshare PID, network and mount namespaces, else why not."""
    pid = os.fork()
    if pid == 0:
        try:
            unshare(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return None if os.waitstatus_to_exitcode(status) == 0 else "unshare(CLONE_NEWPID|CLONE_NEWNET|CLONE_NEWNS) refused"


def detect() -> Layers:
    root = os.geteuid() == 0
    notes: list[str] = []
    namespaces = False
    if not sys.platform.startswith("linux"):
        notes.append("not Linux: only rlimits and process groups")
    elif root:
        why = _probe_namespaces()
        namespaces = why is None
        if why:
            notes.append(f"no namespaces: {why}")
    else:
        notes.append("not root: no namespaces and no uid per slot; jobs run as this user")
    abi = landlock_abi()
    if abi == 0:
        notes.append("no Landlock: jobs can read (and, as this user, write) files outside their directory")
    if namespaces:
        network = "network namespace with no interface"
    elif abi >= 4:
        network = "Landlock refuses TCP bind/connect (UDP and Unix sockets are not covered)"
    else:
        network = "NOT cut: no network namespace and no Landlock ABI 4"
        notes.append("network is reachable from jobs")
    return Layers(root, namespaces, root, abi, network, notes)


# ---------------------------------------------------------------- uids

UID_FIRST = 200_000  # above the uids distributions hand out (and the 61000+ of execalign 0.1)
UID_BLOCK = 1024  # uids of one pool: first uid of its block + slot number
UID_BLOCKS = 256
LOCK_DIR = "/run/execalign"


def claim_uid_block() -> tuple[int, int]:
    """A block of job uids that no other pool on this host holds: (its first uid, the fd of its lock).

    Each block has a lock file in LOCK_DIR, held with flock while the fd stays
    open (the judge holds it, and the zygote inherits it); the kernel releases it
    when the last holder exits, however it exits."""
    os.makedirs(LOCK_DIR, mode=0o755, exist_ok=True)
    for block in range(UID_BLOCKS):
        fd = os.open(os.path.join(LOCK_DIR, f"uids-{block}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return UID_FIRST + block * UID_BLOCK, fd
    raise RuntimeError(f"all {UID_BLOCKS} blocks of sandbox uids are held by other pools on this host")


# ---------------------------------------------------------------- Landlock

_FS_READ = (1 << 0) | (1 << 2) | (1 << 3)  # execute, read file, read dir
_FS_FILE = (1 << 0) | (1 << 1) | (1 << 2)  # execute, write, read: for the device files a job may use
_FILE_RIGHTS = _FS_FILE | (1 << 14) | (1 << 15)  # the only rights a rule on a non-directory may carry


def _fs_handled(abi: int) -> int:
    handled = (1 << 13) - 1  # ABI 1: execute ... make_sym
    if abi >= 2:
        handled |= 1 << 13  # refer
    if abi >= 3:
        handled |= 1 << 14  # truncate
    if abi >= 5:
        handled |= 1 << 15  # ioctl_dev
    return handled


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_ruleset(abi: int, read: Iterable[str], write: Iterable[str], files: Iterable[str] = ()) -> int:
    """A ruleset fd allowing reads of `read`, everything under `write`, use of the device `files`.

    Built once per worker slot by the zygote; a child enforces it with one call
    (`landlock_enforce`) instead of opening every path again."""
    handled = _fs_handled(abi)
    attr = _RulesetAttr(handled, 0b11 if abi >= 4 else 0, 0b11 if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), f"landlock_create_ruleset: {_errno_text()}")
    try:
        for paths, access in ((read, _FS_READ), (write, handled), (files, _FS_FILE & handled)):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    allowed = access if stat.S_ISDIR(os.fstat(fd).st_mode) else access & _FILE_RIGHTS
                    rule = _PathBeneath(allowed, fd)
                    if (
                        _libc.syscall(
                            SYS_LANDLOCK_ADD_RULE,
                            ctypes.c_int(ruleset),
                            ctypes.c_int(1),
                            ctypes.byref(rule),
                            ctypes.c_uint32(0),
                        )
                        != 0
                    ):
                        raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}: {_errno_text()}")
                finally:
                    os.close(fd)
    except BaseException:
        os.close(ruleset)
        raise
    return int(ruleset)


def landlock_enforce(ruleset: int) -> None:
    """Restrict this process (and what it starts) to the ruleset, for good."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    if _libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
        raise OSError(ctypes.get_errno(), f"landlock_restrict_self: {_errno_text()}")


def readable_roots(extra: Iterable[str] = ()) -> list[str]:
    """What a job may read: the Python installation, system libraries, our own packages."""
    roots = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        "/usr",
        "/lib",
        "/lib64",
        "/etc/ld.so.cache",
        "/etc/localtime",
        "/usr/share/zoneinfo",
        *extra,
    }
    for name in ("tracer", "sandbox", "rewards"):
        module = sys.modules.get(name)
        for path in getattr(module, "__path__", []):
            roots.add(path)
    return sorted(r for r in roots if r and os.path.exists(r))


# ---------------------------------------------------------------- rlimits


def _vm_size() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def apply_rlimits(memory: int, cpu_time: float, file_size: int, open_files: int, processes: int | None) -> None:
    """Memory is a budget above the current address-space size (Python's own mappings stay usable)."""
    cpu = max(1, int(cpu_time + 0.999))
    limits = [
        (resource.RLIMIT_AS, _vm_size() + memory),
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, file_size),
        (resource.RLIMIT_NOFILE, open_files),
        (resource.RLIMIT_CORE, 0),
    ]
    if processes is not None:
        limits.append((resource.RLIMIT_NPROC, processes))
    for kind, soft, *hard in limits:
        resource.setrlimit(kind, (soft, hard[0] if hard else soft))
