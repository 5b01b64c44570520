"""Removing what jobs leave on disk, without recursion and away from the zygote's loop.

After a job, the zygote renames the job's working directory into the pool's
trash (one rename, however much is in it) and gives the slot a fresh one; the
janitor, a process of its own started by the zygote, removes the trash.
`remove_tree` walks a tree of any depth and size with one open directory at a
time (it climbs back with ".."), so neither a 5000-deep chain of directories
(past PATH_MAX and Python's recursion limit) nor millions of files can make it
fail, recurse, or hold the zygote: a slot is ready for its next job as soon as
its directory has been renamed.
"""

from __future__ import annotations

import os
import stat

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: str) -> None:
    """Remove `path` and everything under it (never follows a symlink; errors are skipped, not raised)."""
    parent, name = os.path.split(os.path.abspath(path))
    try:
        parent_fd = os.open(parent, _OPEN_DIR)
    except OSError:
        return
    try:
        _remove(parent_fd, name)
    finally:
        os.close(parent_fd)


def _open_dir(name: str, dir_fd: int) -> int | None:
    try:
        return os.open(name, _OPEN_DIR, dir_fd=dir_fd)
    except PermissionError:  # a job made it unreadable (it runs as this user without root)
        try:
            os.chmod(name, stat.S_IRWXU, dir_fd=dir_fd, follow_symlinks=False)
            return os.open(name, _OPEN_DIR, dir_fd=dir_fd)
        except OSError:
            return None
    except OSError:
        return None


def _remove(top_fd: int, top: str) -> None:
    fd = _open_dir(top, top_fd)
    if fd is None:
        try:
            os.unlink(top, dir_fd=top_fd)
        except OSError:
            pass
        return
    # one entry per directory entered: its name and the subdirectories still to remove in it
    path: list[tuple[str, list[str]]] = [(top, _clear(fd))]
    while path:
        name, pending = path[-1]
        if pending:
            sub = pending.pop()
            child = _open_dir(sub, fd)
            if child is not None:
                os.close(fd)
                fd = child
                path.append((sub, _clear(fd)))
            continue
        path.pop()
        if not path:
            os.close(fd)
            _rmdir(top_fd, name)
            return
        try:
            up = os.open("..", _OPEN_DIR, dir_fd=fd)
        except OSError:
            os.close(fd)
            return
        os.close(fd)
        fd = up
        _rmdir(fd, name)


def _clear(fd: int) -> list[str]:
    """Unlink every non-directory in the directory `fd`; return its subdirectories."""
    subdirectories = []
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        subdirectories.append(entry.name)
                    else:
                        os.unlink(entry.name, dir_fd=fd)
                except OSError:
                    pass
    except OSError:
        pass
    return subdirectories


def _rmdir(dir_fd: int, name: str) -> None:
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except OSError:
        pass


def serve(read_fd: int) -> None:
    """The janitor's loop: remove each path read (one per line) until the pipe closes; never returns."""
    pending = b""
    try:
        while True:
            data = os.read(read_fd, 1 << 16)
            if not data:
                break
            pending += data
            *paths, pending = pending.split(b"\n")
            for path in paths:
                remove_tree(os.fsdecode(path))
    finally:
        os._exit(0)
