"""The preprocessed store: one folder per data identifier, plain ``.npy`` arrays, JSON properties, no pickle.

Layout (see ``docs/architecture.md``)::

    <case_id>.npy        float32 (C, *spatial)
    <case_id>_seg.npy    int8/int16/int32 (1, *spatial)
    <case_id>_fg.npz     sampled foreground coordinates per label, keys "1", "2", ...
    <case_id>.json       CaseProperties + "signature"; written last: a case is complete when it exists
    manifest.json        cases known complete, with their input signatures

Training reads random patches from ``np.load(..., mmap_mode="r")`` without loading whole cases.
"""

from __future__ import annotations

import difflib
import logging
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np

from autounet import locks
from autounet.errors import AutounetError, MissingStageError
from autounet.jsonio import read_json, save_npy, save_npz, write_json
from autounet.preprocessing.properties import CaseProperties
from autounet.safe_names import UnsafeNameError, checked_name, name_problem
from autounet.typing import PathType

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
#: Version of the store layout; readers refuse newer ones.
STORE_FORMAT_VERSION = 1


def case_files(folder: Path, case_id: str) -> dict[str, Path]:
    """Paths of one case's files, by role: ``data``, ``seg``, ``foreground``, ``properties``.

    Raises
    ------
    UnsafeNameError
        If ``case_id`` cannot be a file name (it would point outside ``folder``).
    """
    checked_name(case_id, "case id")
    return {
        "data": folder / f"{case_id}.npy",
        "seg": folder / f"{case_id}_seg.npy",
        "foreground": folder / f"{case_id}_fg.npz",
        "properties": folder / f"{case_id}.json",
    }


def write_case(
    folder: Path,
    data: np.ndarray,
    seg: np.ndarray,
    properties: CaseProperties,
    locations: dict[int, np.ndarray],
    signature: str,
) -> None:
    """Write one case atomically, properties last, so a case whose JSON exists is complete."""
    files = case_files(folder, properties.case_id)
    save_npy(files["data"], np.ascontiguousarray(data, dtype=np.float32))
    save_npy(files["seg"], np.ascontiguousarray(seg))
    save_npz(files["foreground"], compress=False, **{str(label): coords for label, coords in locations.items()})
    write_json(files["properties"], {**properties.to_dict(), "signature": signature})


def read_case_record(folder: Path, case_id: str) -> dict[str, Any] | None:
    """The stored properties JSON (with ``signature``) of a complete case, or None if missing or incomplete."""
    files = case_files(folder, case_id)
    if not all(path.is_file() for path in files.values()):
        return None
    try:
        record = read_json(files["properties"])
    except (ValueError, OSError):
        return None
    return record if isinstance(record, dict) else None


def remove_case(folder: Path, case_id: str) -> None:
    """Delete a case's files, properties first (so it stops counting as complete at once)."""
    files = case_files(folder, case_id)
    for role in ("properties", "data", "seg", "foreground"):
        files[role].unlink(missing_ok=True)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of ``folder``, or None if there is none or it is unreadable."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = read_json(path)
    except (ValueError, OSError):
        logger.warning("%s is unreadable; rebuilding it from the case files", path)
        return None
    if not (isinstance(manifest, dict) and isinstance(manifest.get("cases"), dict)):
        return None
    unsafe = [(case_id, name_problem(case_id)) for case_id in manifest["cases"] if name_problem(case_id) is not None]
    if unsafe:
        listed = "; ".join(f"{case_id!r} {problem}" for case_id, problem in unsafe[:5])
        raise UnsafeNameError(
            f"{path} names case(s) that cannot be file names ({listed}); the file was edited or does not come from "
            f"autounet. Delete {path} (and the folder's files if you do not trust them) and preprocess again"
        )
    return manifest


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    write_json(folder / MANIFEST_NAME, manifest, indent=1)


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the write lock of ``folder`` (:func:`autounet.locks.folder_lock`): a second writer fails at once, told who
    holds it, instead of mixing files; the operating system releases the lock even when the holder is killed."""
    with locks.folder_lock(folder, "autounet preprocess"):
        yield


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files a killed run left behind (``.<name>.<random>.tmp``)."""
    if folder.is_dir():
        for path in folder.glob(".*.tmp"):
            try:
                path.unlink()
            except OSError:
                pass


class PreprocessedCaseError(AutounetError, ValueError):
    """A file of the preprocessed store is damaged (truncated, deleted, hand-edited)."""


class PreprocessedStore:
    """Read access to one preprocessed folder; create it with :func:`open_preprocessed`.

    Attributes
    ----------
    folder : Path
    case_ids : tuple of str
        Complete cases, sorted.
    manifest : dict
        The parsed ``manifest.json`` (configuration, plans hash, per-case signatures).
    """

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest
        self.case_ids: tuple[str, ...] = tuple(sorted(manifest["cases"]))
        self._properties: dict[str, CaseProperties] = {}  # small and immutable: read each file once

    def __repr__(self) -> str:
        return f"PreprocessedStore({str(self.folder)!r}, {len(self.case_ids)} cases)"

    def __len__(self) -> int:
        return len(self.case_ids)

    def __contains__(self, case_id: object) -> bool:
        return case_id in self.manifest["cases"]

    @property
    def is_complete(self) -> bool:
        """True when the last run finished every case of the dataset."""
        return bool(self.manifest.get("complete", False))

    @property
    def data_identifier(self) -> str:
        return str(self.manifest.get("data_identifier", self.folder.name))

    def _files(self, case_id: str) -> dict[str, Path]:
        if case_id not in self.manifest["cases"]:
            close = difflib.get_close_matches(str(case_id), list(self.case_ids), n=1)
            hint = f' Did you mean "{close[0]}"?' if close else ""
            raise KeyError(f'no preprocessed case "{case_id}" in {self.folder} ({len(self.case_ids)} cases).{hint}')
        return case_files(self.folder, case_id)

    def load(self, case_id: str, mmap: bool = True) -> tuple[np.ndarray, np.ndarray, CaseProperties]:
        """Image, label map and properties of one case.

        Parameters
        ----------
        case_id : str
        mmap : bool
            Memory-map the arrays (read-only; slicing a patch reads only that patch from disk).

        Returns
        -------
        data : ndarray of float32, shape (C, z, y, x)
        seg : ndarray of int8/int16/int32, shape (1, z, y, x)
        properties : CaseProperties
        """
        files = self._files(case_id)
        mode: Literal["r"] | None = "r" if mmap else None
        arrays = []
        for role in ("data", "seg"):
            try:
                arrays.append(np.load(files[role], mmap_mode=mode, allow_pickle=False))
            except (OSError, ValueError, EOFError) as err:
                raise self._damaged(case_id, files[role], err) from None
        data, seg = arrays
        if data.ndim != seg.ndim or data.shape[1:] != seg.shape[1:]:
            raise self._damaged(case_id, files["seg"], f"shape {seg.shape} does not fit the image {data.shape}")
        return data, seg, self.properties(case_id)

    def properties(self, case_id: str) -> CaseProperties:
        """The :class:`CaseProperties` of one case."""
        if case_id not in self._properties:
            path = self._files(case_id)["properties"]
            try:
                self._properties[case_id] = CaseProperties.from_dict(read_json(path))
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise self._damaged(case_id, path, err) from None
        return self._properties[case_id]

    def _damaged(self, case_id: str, path: Path, err: object) -> PreprocessedCaseError:
        """The error for an unreadable stored file: a case without its JSON is recomputed by the next run."""
        detail = f"missing entry {err}" if isinstance(err, KeyError) else str(err)
        if isinstance(err, FileNotFoundError):
            detail = "the file is missing"
        return PreprocessedCaseError(
            f"{path}: preprocessed case {case_id} is damaged or incomplete ({detail}); delete "
            f"{case_files(self.folder, case_id)['properties']} and re-run \"autounet preprocess\" (or "
            "\"autounet train DATASET ...\"), which recomputes the case"
        )

    def foreground_locations(self, case_id: str) -> dict[int, np.ndarray]:
        """Sampled foreground voxel coordinates per label: ``{label: ndarray of int32, shape (N, 3)}``.

        Coordinates index the spatial axes of the stored arrays (z, y, x); 2D data is stored as (C, 1, y, x),
        so its coordinates have z = 0. Labels declared but absent in the case have ``N = 0``.
        """
        path = self._files(case_id)["foreground"]
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {int(key): npz[key] for key in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise self._damaged(case_id, path, err) from None


def open_preprocessed(folder: PathType) -> PreprocessedStore:
    """Open a folder written by :func:`~autounet.preprocessing.preprocess_dataset`.

    Parameters
    ----------
    folder : str or Path
        ``<output>/<data_identifier>`` (the paths ``preprocess_dataset`` returns).

    Returns
    -------
    PreprocessedStore

    Raises
    ------
    MissingStageError
        If the folder has no ``manifest.json``.

    Examples
    --------
    >>> store = open_preprocessed("out/preprocessed/3d_fullres")  # doctest: +SKIP
    >>> data, seg, properties = store.load(store.case_ids[0])       # doctest: +SKIP
    >>> patch = np.asarray(data[:, 10:50, 20:76, 5:45])              # reads only the patch  # doctest: +SKIP
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise MissingStageError(
            f"{folder}: no preprocessed data (manifest.json missing); run \"autounet preprocess\" first"
        )
    version = int(manifest.get("format_version", STORE_FORMAT_VERSION))
    if version > STORE_FORMAT_VERSION:
        raise MissingStageError(
            f"{folder}: store format {version} is newer than this autounet reads ({STORE_FORMAT_VERSION}); "
            "upgrade autounet or preprocess again"
        )
    if not manifest.get("complete", False):
        logger.warning(
            "%s: the last preprocessing run did not finish (%d cases ready); re-run \"autounet preprocess\"",
            folder, len(manifest["cases"]),
        )
    return PreprocessedStore(folder, manifest)



def require_complete(store: PreprocessedStore) -> None:
    """Refuse a store whose last preprocessing run did not finish (killed, or some cases failed).

    Training on it would freeze the partial case list into ``splits.json`` and leave the missing cases out of every
    fold for good.

    Parameters
    ----------
    store : PreprocessedStore
        From :func:`open_preprocessed`.

    Raises
    ------
    MissingStageError
        Naming the folder, how many cases are there and the command that completes it.
    """
    expected = store.manifest.get("num_training_cases")
    if store.is_complete and (not isinstance(expected, int) or len(store) >= expected):
        return
    dataset = store.manifest.get("dataset") or "DATASET"
    counted = f"{len(store)} of {expected} cases" if isinstance(expected, int) else f"{len(store)} cases"
    raise MissingStageError(
        f"{store.folder}: the preprocessed data is incomplete ({counted}; the last preprocessing was interrupted or "
        f"some cases failed). Complete it first: \"autounet train {dataset} ...\" preprocesses the missing cases (or "
        "run \"autounet preprocess\" again and fix the cases it names); training on a partial store would leave the "
        "missing cases out of every fold"
    )
