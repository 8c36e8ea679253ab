"""Atomic writes of JSON, NumPy arrays and bytes: a file either exists complete or not at all."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from autounet.errors import DiskFullError
from autounet.typing import PathType


#: Error numbers of a full disk and of an exhausted quota.
_DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
#: When a writer fails without an error number (torch and SimpleITK raise RuntimeError) and less than this is free,
#: the disk is taken to be full: real writes need far more than a few megabytes of headroom.
NEARLY_FULL_BYTES = 16 * 1024**2


#: Permissions of a new file before the umask, as ``open()`` and every other tool create files (``rw-rw-rw-``).
NEW_FILE_MODE = 0o666


def current_umask() -> int:
    """The process's file-creation mask, read without changing it where the system allows (Linux ``/proc``).

    Examples
    --------
    >>> 0 <= current_umask() <= 0o777
    True
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # other systems: the only way to read it is to set it (and restore it at once)
    os.umask(mask)
    return mask


def fsync_path(path: PathType) -> None:
    """Flush a file's (or a folder's) data and metadata to the disk, so a power loss cannot undo a finished write.

    Parameters
    ----------
    path : str or Path
        A file, or a folder (after creating or renaming an entry in it). Folders cannot be opened on Windows,
        where the call does nothing for them.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except (IsADirectoryError, PermissionError):
        return  # Windows cannot open folders; renames there are journaled by NTFS
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: PathType, expected_bytes: int | None = None, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file lives in the same folder so the final ``os.replace`` is atomic. On error the
    temporary file is removed and any existing ``path`` is left untouched. The file gets the permissions any
    other tool would give it (``0o666`` minus the umask), not ``mkstemp``'s private ``0o600``.

    Parameters
    ----------
    path : str or Path
        The file to write.
    expected_bytes : int, optional
        About how large the file will be; named in the message if the disk fills up.
    durable : bool
        Flush the file to the disk before the rename and the folder after it (``fsync``), so that after a power
        loss ``path`` is either the old file or the complete new one, never an empty file that looks complete.
        For files whose loss costs hours (checkpoints, plans, manifests).

    Raises
    ------
    DiskFullError
        If the disk or quota is full (also when the writer raised a plain ``RuntimeError`` and the disk has less
        than :data:`NEARLY_FULL_BYTES` free); says where, how much is free and how much was needed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        if err.errno in _DISK_FULL_ERRNOS:
            raise _disk_full(path, None, expected_bytes) from err
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, NEW_FILE_MODE & ~current_umask())
        yield tmp
        if durable:
            fsync_path(tmp)
        os.replace(tmp, path)
        if durable:
            fsync_path(path.parent)
    except (OSError, RuntimeError) as err:
        if not isinstance(err, DiskFullError) and _is_disk_full(err, path, expected_bytes):
            raise _disk_full(path, tmp, expected_bytes) from err
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def _is_disk_full(err: BaseException, path: Path, expected_bytes: int | None) -> bool:
    if isinstance(err, OSError) and err.errno is not None:
        return err.errno in _DISK_FULL_ERRNOS
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return False
    return free < max(NEARLY_FULL_BYTES, expected_bytes or 0)


def _size(num_bytes: float) -> str:
    """``"12.3 MB"``, or ``"40 kB"`` below 0.1 MB.

    Examples
    --------
    >>> _size(12_345_678), _size(40_000)
    ('12.3 MB', '40 kB')
    """
    return f"{num_bytes / 1e6:,.1f} MB" if num_bytes >= 1e5 else f"{num_bytes / 1e3:,.0f} kB"


def _disk_full(path: Path, tmp: Path | None, expected_bytes: int | None) -> DiskFullError:
    """The error for a full disk: where, how much is free, how much the file needed."""
    try:
        free = f"{shutil.disk_usage(path.parent).free / 1e6:,.0f} MB free"
    except OSError:
        free = "free space unknown"
    written = tmp.stat().st_size if tmp is not None and tmp.exists() else 0
    if expected_bytes:
        needed = f"about {_size(max(expected_bytes, written))} needed for this file"
    else:
        needed = f"at least {_size(written)} needed for this file (written before the disk filled)"
    error = DiskFullError(
        f"disk full while writing {path} ({free} on the disk holding {path.parent}; {needed}); free some space or "
        "choose another output folder, then re-run: the files written before are complete and kept"
    )
    error.errno = errno.ENOSPC
    return error


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _to_jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: PathType, data: Any, indent: int = 1, durable: bool = False) -> None:
    """Write ``data`` as JSON atomically. NumPy scalars/arrays, tuples and paths are converted.

    Parameters
    ----------
    path : str or Path
        The file to write.
    data : object
        JSON-serialisable data.
    indent : int
        Indentation of the JSON text.
    durable : bool
        ``fsync`` the file and its folder (see :func:`atomic_path`).
    """
    with atomic_path(path, durable=durable) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(_to_jsonable(data), f, indent=indent, ensure_ascii=False)
            f.write("\n")


def read_json(path: PathType) -> Any:
    """Read a JSON file; a broken file raises ``ValueError`` naming it."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); fix or delete the file and re-run") from None


def save_npy(path: PathType, array: np.ndarray) -> None:
    """Save ``array`` as ``.npy`` atomically (no pickle: object arrays are refused)."""
    if array.dtype == object:
        raise TypeError("object arrays cannot be stored without pickle; convert to a numeric dtype")
    with atomic_path(path, expected_bytes=array.nbytes) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)


def save_npz(path: PathType, compress: bool = True, **arrays: np.ndarray) -> None:
    """Save named arrays as one ``.npz`` atomically; object arrays are refused (``np.savez`` would pickle them).

    ``compress=False`` writes faster (small arrays that are read often).

    Examples
    --------
    >>> import tempfile
    >>> save_npz(tempfile.mkdtemp() + "/x.npz", labels=np.array([[1, 2]]), ok=np.ones(2))
    """
    for name, array in arrays.items():
        if np.asarray(array).dtype == object:
            raise TypeError(f"array {name!r} is an object array, which cannot be stored without pickle; convert it "
                            "to a numeric dtype")
    with atomic_path(path, expected_bytes=sum(np.asarray(a).nbytes for a in arrays.values())) as tmp:
        with open(tmp, "wb") as f:
            save = np.savez_compressed if compress else np.savez
            save(f, **arrays)  # type: ignore[arg-type]  # numpy's stub mistakes the keys for allow_pickle
