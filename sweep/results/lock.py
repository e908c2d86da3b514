"""The lock of a local results folder: one sweep run writes it at a time.

An exclusive ``flock`` on ``.lock`` is held for the whole run, so the kernel frees it when the process
dies however it dies (a dead run's lock is taken over). The file also names its holder, for the message
another run prints; a lock file naming a live process on this host (written without ``flock``, on file
systems that have none) is respected too.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from collections.abc import Callable


class LockError(Exception):
    """Why the folder cannot be locked (the message a user reads after the folder's name)."""


def take_lock(lock: str, reason: Callable[[BaseException], str], holder: int | None = None) -> int:
    """Lock ``lock`` (a path) for this process; returns the open descriptor that holds it. The file names
    ``holder`` (a process id: the sweep run this process keeps the dataset for; default this process)."""
    pid = holder or os.getpid()
    me = {"pid": pid, "host": socket.gethostname(), "started": time.time(), "start_ticks": _start_ticks(pid)}
    for _ in range(10):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as e:
            raise LockError(f"cannot write here: {reason(e)}") from None
        mine = False
        try:
            mine = _try_flock(fd)
            if mine and not _same_file(lock, fd):
                os.close(fd)  # its holder removed it between our open and flock: lock the new one
                continue
            other = _read_lock(fd)
            for _ in range(10):  # a holder that has just taken the lock writes its name at once
                if mine or other:
                    break
                time.sleep(0.02)
                other = _read_lock(fd)
            if not mine or _holder_alive(other, me["host"], pid):
                raise LockError(f"in use by another sweep run (pid {other.get('pid', '?')} on "
                                f"{other.get('host', '?')}); wait for it to finish, or remove {lock} "
                                "if that run is gone")
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        except OSError as e:
            if mine:  # ours (its last holder is gone): leave no empty lock file behind
                try:
                    os.unlink(lock)
                except OSError:
                    pass
            os.close(fd)
            raise LockError(f"cannot write the lock file: {reason(e)}") from None
        except BaseException:
            os.close(fd)
            raise
        return fd
    raise LockError(f"cannot take {lock}: it keeps being replaced by another process")


def _try_flock(fd: int) -> bool:
    """True if this process now holds an exclusive lock on ``fd``; False if another holds one.
    Where the file system has no ``flock``, the holder named in the file decides (see :func:`take_lock`)."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            return True
        raise
    return True


def _same_file(path: str, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _read_lock(fd: int) -> dict:
    try:
        doc = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name (state first); empty if unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _start_ticks(pid: int) -> int | None:
    """When a process started (clock ticks since boot), to tell a live holder from a reused pid."""
    fields = _stat(pid)
    try:
        return int(fields[19])
    except (ValueError, IndexError):
        return None


def _holder_alive(other: dict, host: str, me: int) -> bool:
    """Whether the run named in a lock file still runs: same host, pid alive, not this run (``me``), and
    (when recorded) started when the holder did."""
    try:
        pid = int(other.get("pid", 0) or 0)
    except (TypeError, ValueError):
        return False
    if other.get("host") != host or pid == me or not _alive(pid):
        return False
    ticks = other.get("start_ticks")
    return ticks is None or _start_ticks(pid) in (None, ticks)


def _alive(pid: int) -> bool:
    """A process that runs: a zombie (dead, not yet reaped by its parent) does not."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _stat(pid)[:1] != ["Z"]
