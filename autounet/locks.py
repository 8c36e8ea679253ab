"""One writer per folder: an exclusive lock that names its holder and recovers from a crashed one.

``preprocess`` (per preprocessed folder), ``train`` (per fold folder) and ``predict`` (per output folder) hold
:func:`folder_lock` while they write, so a second run on the same folder stops at once, saying who holds the folder
(command, pid, host, start time), instead of mixing its files with the first run's.

The lock is ``flock`` on ``<folder>/.autounet.lock``: the operating system releases it when the holder exits, even
when it is killed, so a crash never leaves a folder locked on the machine it ran on. The file also holds a JSON record
of the holder, which names it in the message and is removed on release. Where ``flock`` is not available (Windows,
some network file systems) the record alone is the lock: a record whose process is dead on this host is stale and
taken over; a record from another host cannot be checked from here, so the message says how to remove it by hand.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from autounet.errors import AutounetError
from autounet.typing import PathType

logger = logging.getLogger(__name__)

LOCK_FILE = ".autounet.lock"
#: ``flock`` errors that mean the file system does not support it (then the holder record alone is the lock).
_FLOCK_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
#: Seconds between attempts while waiting for a lock.
_POLL_SECONDS = 0.05

#: Locks this process holds, per (lock file, thread): nested calls in one thread (the CLI and the library function it
#: calls) share the lock instead of refusing each other.
_held: dict[tuple[str, int], int] = {}
_held_guard = threading.Lock()


class FolderLockedError(AutounetError, RuntimeError):
    """Another run is writing into the folder (the message names it and what to do)."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds a folder: the command, its process id, host and start time."""

    command: str
    pid: int
    host: str
    started: str
    process_start: str | None = None  # the kernel's start tick of ``pid`` (Linux), to detect a reused pid

    def describe(self) -> str:
        return f'"{self.command}" (pid {self.pid} on {self.host}, started {self.started})'

    def is_dead_here(self) -> bool:
        """True when the holder ran on this host and its process is gone (or its pid now belongs to another)."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except (PermissionError, OSError):
            return False  # alive, owned by someone else
        current = _process_start(self.pid)
        return self.process_start is not None and current is not None and current != self.process_start


def _process_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22), or None off Linux."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _me(command: str) -> LockHolder:
    return LockHolder(command, os.getpid(), socket.gethostname(), time.strftime("%Y-%m-%d %H:%M:%S"),
                      _process_start(os.getpid()))


def read_holder(lock_file: PathType) -> LockHolder | None:
    """The holder recorded in a lock file, or None when there is no usable record.

    Parameters
    ----------
    lock_file : str or Path
        ``<folder>/.autounet.lock``.
    """
    try:
        data = json.loads(Path(lock_file).read_text(encoding="utf-8"))
        return LockHolder(str(data["command"]), int(data["pid"]), str(data["host"]), str(data["started"]),
                          data.get("process_start"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextmanager
def folder_lock(folder: PathType, command: str, wait_seconds: float = 0.0, lock_name: str = LOCK_FILE) -> Iterator[Path]:
    """Hold the exclusive write lock of ``folder`` (created if missing) for the duration of the ``with`` block.

    Parameters
    ----------
    folder : str or Path
        The folder this run writes into.
    command : str
        What holds it, for the message another run gets, e.g. ``"autounet train 3d_fullres fold 0"``.
    wait_seconds : float
        How long to wait for another holder to finish before giving up (0: give up at once).
    lock_name : str
        The lock file's name inside ``folder`` (several locks per folder need different names).

    Yields
    ------
    Path
        The lock file.

    Raises
    ------
    FolderLockedError
        If another run holds the folder, naming it (command, pid, host, start time) and what to do.

    Examples
    --------
    >>> import tempfile
    >>> with folder_lock(tempfile.mkdtemp(), "autounet predict") as lock_file:
    ...     read_holder(lock_file).command
    'autounet predict'
    """
    folder = Path(folder)
    created = [folder, *(parent for parent in folder.parents)]
    created = created[: next((i for i, p in enumerate(created) if p.exists()), len(created))]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / lock_name
    key = (os.path.abspath(path), threading.get_ident())
    with _held_guard:
        nested = key in _held
        if nested:
            _held[key] += 1
    if nested:  # this thread holds it already (a CLI command and the library function it calls)
        try:
            yield path
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    release = _acquire(path, _me(command), wait_seconds)
    with _held_guard:
        _held[key] = 1
    try:
        yield path
    finally:
        with _held_guard:
            del _held[key]
        release()
        for made in created:  # the folders the lock made, deepest first, as long as the run left them empty
            try:
                made.rmdir()
            except OSError:
                break


def _acquire(path: Path, me: LockHolder, wait_seconds: float):
    """Take the lock (waiting up to ``wait_seconds``); return the function that releases it."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return _try_flock(path, me)
        except _Unsupported:
            return _acquire_record_only(path, me, deadline)
        except FolderLockedError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(_POLL_SECONDS)


class _Unsupported(Exception):
    """``flock`` is not available here."""


def _try_flock(path: Path, me: LockHolder):
    try:
        import fcntl
    except ImportError:
        raise _Unsupported() from None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in _FLOCK_UNSUPPORTED:
                raise _Unsupported() from None
            raise _locked_error(path, read_holder(path), alive=True) from None
        try:
            same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same_file = False
        if not same_file:  # the previous holder removed the file between our open and our lock: take the new one
            os.close(fd)
            continue
        previous = read_holder(path)
        if previous is not None and previous.host != me.host:
            # flock may be local to each machine on a network file system: a holder elsewhere cannot be ruled out
            os.close(fd)
            raise _locked_error(path, previous, alive=False)
        if previous is not None:
            logger.warning("%s: taking over the lock of %s, which ended without releasing it", path.parent,
                           previous.describe())
        _write_record(fd, me)
        return lambda: _release_flock(path, fd)


def _release_flock(path: Path, fd: int) -> None:
    try:
        path.unlink()  # while still holding it: a waiting run then locks a new file (the inode check above)
    except OSError:
        pass
    os.close(fd)


def _write_record(fd: int, me: LockHolder) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(asdict(me)) + "\n").encode("utf-8"), 0)


def _acquire_record_only(path: Path, me: LockHolder, deadline: float):
    """The lock without ``flock``: the holder record, created exclusively; a dead holder on this host is stale."""
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            holder = read_holder(path)
            if holder is not None and holder.is_dead_here():
                logger.warning("%s: removing the stale lock of %s (the process is gone)", path.parent, holder.describe())
                _remove_if_unchanged(path, holder)
                continue
            if time.monotonic() >= deadline:
                here = holder is not None and holder.host == socket.gethostname()
                raise _locked_error(path, holder, alive=here) from None
            time.sleep(_POLL_SECONDS)
            continue
        _write_record(fd, me)
        os.close(fd)
        return lambda: _remove_if_unchanged(path, me)


def _remove_if_unchanged(path: Path, holder: LockHolder) -> None:
    """Delete the lock file if it still names ``holder`` (never another run's fresh lock)."""
    if read_holder(path) == holder:
        try:
            path.unlink()
        except OSError:
            pass


def _locked_error(path: Path, holder: LockHolder | None, alive: bool) -> FolderLockedError:
    """The refusal; ``alive`` says the holder is known to be running (else the message says how to clear the lock)."""
    folder = path.parent
    who = holder.describe() if holder is not None else "(not named: its record is unreadable)"
    hint = "" if alive else (
        f"; if that run is no longer alive (this machine cannot check it), delete {path} and run again")
    return FolderLockedError(
        f"{folder} is being written by another autounet run {who}; wait for it to finish or use another folder"
        f"{hint}"
    )
