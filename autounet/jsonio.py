"""Atomic writes of JSON, NumPy arrays and bytes: a file either exists complete or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from autounet.typing import PathType


@contextmanager
def atomic_path(path: PathType) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file lives in the same folder so the final ``os.replace`` is atomic. On error the
    temporary file is removed and any existing ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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


def write_json(path: PathType, data: Any, indent: int = 1) -> None:
    """Write ``data`` as JSON atomically. NumPy scalars/arrays, tuples and paths are converted."""
    with atomic_path(path) as tmp:
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
    with atomic_path(path) as tmp:
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
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            save = np.savez_compressed if compress else np.savez
            save(f, **arrays)  # type: ignore[arg-type]  # numpy's stub mistakes the keys for allow_pickle
