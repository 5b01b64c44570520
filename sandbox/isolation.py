"""Which isolation layers this machine allows, and the system calls that apply them.

Layers, strongest first (each used when the machine allows it; `detect()`
reports what is on and why anything is off, never silently):

- namespaces (root): the zygote lives in its own PID, network, mount and IPC
  namespace with a fresh /proc: jobs see no process of the host, have no
  network interface at all (not even loopback), share no System V IPC object
  with the host, and die with the zygote;
- a uid per worker slot (root): jobs run unprivileged and cannot signal or
  read one another; RLIMIT_NPROC bounds their processes;
- Landlock (Linux 5.13+): a job may read the Python installation and system
  libraries, write only its own directory; from ABI 4 TCP bind/connect are
  refused, from ABI 6 signals and abstract sockets stay inside the job;
- seccomp (libseccomp; loaded once by the zygote, so every process after it
  inherits it at no cost per job): kernel objects that would outlive a job or
  reach past it are refused (`SECCOMP_REFUSED`): keyrings, System V IPC, POSIX
  message queues, new user namespaces; clone3 answers ENOSYS (libc falls back
  to clone, whose flags the filter can see); a 32-bit system call kills;
- a memory cgroup and a cpu cgroup per slot (root, cgroup v1 controllers): each
  slot's process joins them once and forks its jobs inside, so everything a
  job holds counts against its budget (memfd and tmpfs pages included, its peak
  is the cgroup's) and all of a job's processes share one CPU share, however
  many it starts and whatever sessions or priorities they take
  (`cgroup_root()` says where);
- always: own session and process group, rlimits (address space, CPU, file
  size, open files, no core), a throwaway working directory, a clean
  environment, isolated `sys.path`.

Measured on this project's 2-core VM: an IPC namespace per job costs about
0.45 ms of CPU, a seccomp filter loaded per job about 0.1 ms (it is compiled
to machine code), a move into a cgroup through cgroup.procs waits for an RCU
grace period (ms); so IPC objects are refused instead, the filter is the
zygote's, and jobs are born in their slot's cgroups.
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
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
ZYGOTE_NAMESPACES = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC
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
PR_SET_PDEATHSIG, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 1, 22, 38, 36
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
    seccomp: bool = False
    memory_cgroup: str = ""  # where the slots' memory cgroups are made ("": none)
    cpu_cgroup: str = ""  # where the slots' cpu cgroups are made ("": none)
    cpu_usage_cgroup: str = ""  # where the slots' cpuacct cgroups are made: a job's CPU, its ended processes' too

    def describe(self) -> str:
        on = [
            name
            for name, flag in (
                ("namespaces (pid, net, mount, ipc)", self.namespaces),
                ("uid per slot", self.uid_per_slot),
                (f"landlock ABI {self.landlock_abi}", self.landlock_abi > 0),
                ("seccomp", self.seccomp),
                ("memory cgroup per slot", bool(self.memory_cgroup)),
                ("cpu cgroup per slot", bool(self.cpu_cgroup)),
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
    """None if a child can unshare PID, network, mount and IPC namespaces, else why not."""
    pid = os.fork()
    if pid == 0:
        try:
            unshare(ZYGOTE_NAMESPACES)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return None
    return "unshare(CLONE_NEWPID|CLONE_NEWNET|CLONE_NEWNS|CLONE_NEWIPC) refused"


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
    try:
        seccomp_program()
        seccomp = True
    except OSError as error:
        seccomp = False
        notes.append(f"no seccomp ({error}): jobs may use keyrings, System V IPC and user namespaces")
    memory, why = cgroup_root("memory") if root else ("", "not root")
    if not memory:
        notes.append(f"no memory cgroup ({why}): memory a job holds outside its address space (memfd) is not counted")
    cpu, why = cgroup_root("cpu") if root else ("", "not root")
    if not cpu:
        notes.append(f"no cpu cgroup ({why}): a job's processes each take a CPU share, and no timeout is `starved`")
    usage, why = cgroup_root("cpuacct") if cpu else ("", "no cpu cgroup")
    if cpu and not usage:
        notes.append(f"no cpuacct cgroup ({why}): no timeout is `starved` (a job's CPU cannot be counted whole)")
    return Layers(root, namespaces, root, abi, network, notes, seccomp, memory, cpu, usage)


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


# ---------------------------------------------------------------- seccomp

# system calls refused (EPERM) to the zygote and everything it starts: kernel objects that outlive a job or
# reach past it; keyrings are per uid, and a slot's uid serves one job after another
SECCOMP_REFUSED = (
    "keyctl",
    "add_key",
    "request_key",
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
)
_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_ACT_KILL_PROCESS = 0x80000000
_SCMP_FLTATR_ACT_BADARCH = 2
_SCMP_CMP_MASKED_EQ = 7
SECCOMP_MODE_FILTER = 2


def _scmp_errno(errno: int) -> int:
    return 0x00050000 | (errno & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_seccomp_program: bytes | None = None


def seccomp_program() -> bytes:
    """The jobs' seccomp filter as raw BPF, compiled once with libseccomp (OSError when there is none)."""
    global _seccomp_program
    if _seccomp_program is not None:
        return _seccomp_program
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        raise OSError("libseccomp.so.2 is not installed") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        raise OSError("seccomp_init failed")
    try:
        rules: list[tuple[str, int, list[_ArgCmp]]] = [(name, _scmp_errno(1), []) for name in SECCOMP_REFUSED]
        new_user = _ArgCmp(0, _SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)
        rules += [("unshare", _scmp_errno(1), [new_user]), ("clone", _scmp_errno(1), [new_user])]
        rules.append(("clone3", _scmp_errno(38), []))  # ENOSYS: libc falls back to clone
        if lib.seccomp_attr_set(ctx, _SCMP_FLTATR_ACT_BADARCH, _SCMP_ACT_KILL_PROCESS) != 0:
            raise OSError("seccomp_attr_set failed")
        for name, action, compare in rules:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                continue  # not a system call of this architecture
            array = (_ArgCmp * len(compare))(*compare) if compare else None
            if lib.seccomp_rule_add_array(ctx, action, number, len(compare), array) != 0:
                raise OSError(f"seccomp_rule_add({name}) failed")
        read_end, write_end = os.pipe()
        try:
            if lib.seccomp_export_bpf(ctx, write_end) != 0:
                raise OSError("seccomp_export_bpf failed")
            os.close(write_end)
            write_end = -1
            program = os.read(read_end, 1 << 16)
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)
    finally:
        lib.seccomp_release(ctx)
    _seccomp_program = program
    return program


def seccomp_enforce(program: bytes) -> None:
    """Load the filter into this process (and what it starts), for good."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"seccomp filter: {_errno_text()}")


# ---------------------------------------------------------------- cgroups

CGROUP_SLACK = 64 << 20  # above a job's memory budget in its cgroup: its copy-on-write pages, page tables


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup in the v1 hierarchy of `controller` (None without one)."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path
    return None


def _cgroup_mount(controller: str) -> str | None:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, more = left.split(), right.split()
            if more and more[0] == "cgroup" and controller in more[-1].split(","):
                return fields[4]
    return None


def cgroup_root(controller: str) -> tuple[str, str]:
    """Where this process may make cgroups of a v1 `controller` (its own cgroup there), or "" and why not."""
    try:
        mount, own = _cgroup_mount(controller), _own_cgroup(controller)
    except OSError as error:
        return "", str(error)
    if mount is None or own is None:
        return "", f"no cgroup v1 {controller} controller (cgroup v2 is not supported yet)"
    root = os.path.join(mount, own.lstrip("/"))
    if not os.access(root, os.W_OK):
        return "", f"{root} is not writable"
    return root, ""


def join_cgroup(directory: str) -> None:
    """Move this (single-threaded) process into a cgroup: by its `tasks` file, which moves the calling
    thread without the lock on every thread group that cgroup.procs takes (an RCU grace period)."""
    write_cgroup(directory, "tasks", 0)


def write_cgroup(directory: str, name: str, value: int | str) -> None:
    fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def read_cgroup(fd: int) -> int:
    """The number in a cgroup file opened once (`os.open`), read again from its start."""
    return int(os.pread(fd, 64, 0))


def oom_kills(fd: int) -> int:
    """How many processes the kernel killed in a memory cgroup (its memory.oom_control, opened once)."""
    for line in os.pread(fd, 256, 0).split(b"\n"):
        if line.startswith(b"oom_kill "):
            return int(line.split()[1])
    return 0
