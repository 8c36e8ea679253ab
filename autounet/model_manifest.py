"""A sha256 manifest of a trained model's files: written when training or find-best changes the model, checked before
the model is used, naming the file that changed.

``<folder>/manifest.json``::

    {"format": "autounet-model-manifest", "format_version": 1, "autounet_version": "...", "written": "...",
     "files": {"plans.json": {"sha256": "...", "bytes": 1234},
               "3d_fullres/fold_0/checkpoint_final.pt": {"sha256": "...", "bytes": 123456789}, ...}}

Paths are relative POSIX paths inside the folder (no absolute paths, no ``..``): a manifest from elsewhere can never
make autounet read a file outside the folder. :func:`write_manifest` and :func:`verify_manifest` serve any folder (a
model package too); :func:`record_model_manifest` decides which files of a results folder belong to the trained model
(:func:`model_files`): the plans, the dataset description, the split, the find-best decisions and, per finished
fold, its final and best checkpoints and its JSON records and logs. Not the preprocessed data, not the validation
predictions, not ``checkpoint_latest.pt`` (a resume point, rewritten while a fold trains).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from autounet import __version__
from autounet.errors import AutounetError
from autounet.jsonio import read_json, write_json
from autounet.locks import folder_lock
from autounet.safe_names import name_problem
from autounet.typing import PathType

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "autounet-model-manifest"
MANIFEST_FORMAT_VERSION = 1
#: Files of a results folder's top level that belong to the trained model.
MODEL_TOP_FILES = ("plans.json", "dataset.json", "fingerprint.json", "splits.json", "inference.json",
                   "postprocessing.json")
#: Files of a finished fold (one with ``checkpoint_final.pt``) that belong to the model, besides its JSON records.
FOLD_FILES = ("checkpoint_final.pt", "checkpoint_best.pt", "training.log")
#: Read size while hashing (bounded memory for multi-gigabyte checkpoints).
_CHUNK_BYTES = 1 << 22


class ModelManifestError(AutounetError, ValueError):
    """A file of a model differs from its manifest, is missing or was added, or the manifest is unusable."""


def file_sha256(path: PathType) -> str:
    """Hex sha256 of a file's bytes, read in chunks.

    Parameters
    ----------
    path : str or Path
        The file.

    Examples
    --------
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> _ = open(os.path.join(folder, "a"), "wb").write(b"abc")
    >>> file_sha256(os.path.join(folder, "a"))[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def relative_problem(name: object) -> str | None:
    """Why ``name`` is not a relative POSIX path inside a folder (each part a safe name), or None when it is.

    Parameters
    ----------
    name : object
        A path as recorded in a manifest.

    Examples
    --------
    >>> relative_problem("3d_fullres/fold_0/checkpoint_final.pt") is None
    True
    >>> relative_problem("../../etc/passwd")
    "part '..' is a relative path component"
    >>> relative_problem("/etc/passwd")
    'is an absolute path'
    """
    if not isinstance(name, str) or not name:
        return "is not a non-empty text"
    if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path" if name.startswith("/") or name[1:2] == ":" else "contains a backslash"
    for part in name.split("/"):
        problem = name_problem(part)
        if problem is not None:
            return f"part {part!r} {problem}"
    return None


def write_manifest(folder: PathType, files: Iterable[str], extra: Mapping[str, Any] | None = None,
                   known: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Write ``folder/manifest.json`` with the sha256 and size of each of ``files`` (fsync'ed).

    Parameters
    ----------
    folder : str or Path
        The folder the files are in.
    files : iterable of str
        Relative POSIX paths inside ``folder``.
    extra : mapping, optional
        More top-level entries (e.g. what wrote the manifest); ``format``, ``format_version`` and ``files`` are
        reserved.
    known : mapping, optional
        Entries to record as they are instead of hashing the file again (``{"path": {"sha256": ..., "bytes": ...}}``).

    Returns
    -------
    Path
        The manifest file.

    Raises
    ------
    ModelManifestError
        If a path is not a relative path inside the folder.
    """
    folder = Path(folder)
    entries: dict[str, dict[str, Any]] = {}
    for name in sorted(set(files)):
        problem = relative_problem(name)
        if problem is not None:
            raise ModelManifestError(f"cannot record {name!r} in {folder / MANIFEST_FILE}: the path {problem}")
        if known is not None and name in known:
            entries[name] = {"sha256": str(known[name]["sha256"]), "bytes": int(known[name]["bytes"])}
            continue
        path = folder / name
        entries[name] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
    reserved = {"format", "format_version", "files"}
    data = {"format": MANIFEST_FORMAT, "format_version": MANIFEST_FORMAT_VERSION,
            **{k: v for k, v in (extra or {}).items() if k not in reserved}, "files": entries}
    path = folder / MANIFEST_FILE
    write_json(path, data, durable=True)
    return path


def read_manifest(folder: PathType) -> dict[str, Any]:
    """The parsed, checked manifest of ``folder``.

    Parameters
    ----------
    folder : str or Path
        The folder holding ``manifest.json``.

    Raises
    ------
    FileNotFoundError
        If there is none.
    ModelManifestError
        If it is not JSON, not a manifest, of a newer format, or records a path outside the folder.
    """
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest")
    try:
        data = read_json(path)
    except ValueError as err:
        raise ModelManifestError(str(err)) from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("files"), dict):
        raise ModelManifestError(f"{path}: not an autounet model manifest (expected \"format\": \"{MANIFEST_FORMAT}\" "
                                 "and a \"files\" object); delete it or restore the original")
    version = data.get("format_version")
    if not isinstance(version, int) or version > MANIFEST_FORMAT_VERSION:
        raise ModelManifestError(f"{path}: manifest format version {version!r} is not one this autounet reads "
                                 f"(up to {MANIFEST_FORMAT_VERSION}); upgrade autounet")
    for name, entry in data["files"].items():
        problem = relative_problem(name)
        if problem is not None:
            raise ModelManifestError(f"{path}: the recorded path {name!r} {problem}; the manifest is damaged or "
                                     "was made to point outside the folder: do not use this model")
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or not isinstance(entry.get("bytes"), int):
            raise ModelManifestError(f"{path}: the entry of {name} needs \"sha256\" (text) and \"bytes\" (integer)")
    return data


def verify_manifest(folder: PathType, files: Iterable[str] | None = None) -> None:
    """Check files of ``folder`` against its manifest; raise naming every file that changed, is missing or was added.

    Parameters
    ----------
    folder : str or Path
        The folder holding ``manifest.json``.
    files : iterable of str, optional
        Only these relative paths (the files about to be used; each must be recorded). Default: every recorded file,
        and every other file in the folder counts as added.

    Raises
    ------
    FileNotFoundError
        If the folder has no manifest.
    ModelManifestError
        Naming the files and what to do.
    """
    folder = Path(folder)
    recorded = read_manifest(folder)["files"]
    wanted = sorted(recorded) if files is None else sorted(set(files))
    changed, missing, added = [], [], []
    for name in wanted:
        path = folder / name
        if name not in recorded:
            added.append(name)
        elif not path.is_file():
            missing.append(name)
        elif path.stat().st_size != recorded[name]["bytes"] or file_sha256(path) != recorded[name]["sha256"]:
            changed.append(name)
    if files is None:
        present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        added = sorted(present - set(recorded) - {MANIFEST_FILE})
    if changed or missing or added:
        parts = [f"{what}: {', '.join(str(folder / n) for n in names[:5])}{' ...' if len(names) > 5 else ''}"
                 for what, names in (("changed since it was recorded", changed), ("missing", missing),
                                     ("not recorded (added afterwards)", added)) if names]
        raise ModelManifestError(
            f"{folder / MANIFEST_FILE} does not match the model's files ({'; '.join(parts)}). The model was edited, "
            "damaged or mixed with another after it was trained: restore the original files (or retrain), and use a "
            "model only from a source you trust"
        )


def model_files(results_dir: PathType) -> list[str]:
    """The files of a results folder that make up its trained model (relative POSIX paths, sorted).

    Parameters
    ----------
    results_dir : str or Path
        ``RESULTS/<dataset>`` (plans.json, configuration folders with fold folders).
    """
    root = Path(results_dir)
    found = [name for name in MODEL_TOP_FILES if (root / name).is_file()]
    for configuration in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "preprocessed"):
        for fold in sorted(configuration.glob("fold_*")):
            if not (fold / "checkpoint_final.pt").is_file():
                continue  # unfinished: its files still change
            names = [n for n in FOLD_FILES if (fold / n).is_file()] + sorted(p.name for p in fold.glob("*.json"))
            found += [f"{configuration.name}/{fold.name}/{name}" for name in names]
        decision = configuration / "crossval" / "postprocessing.json"
        if decision.is_file():
            found.append(f"{configuration.name}/crossval/postprocessing.json")
    for decision in sorted(root.glob("ensembles/*/postprocessing.json")):
        found.append(decision.relative_to(root).as_posix())
    return [name for name in found if relative_problem(name) is None]


def record_model_manifest(results_dir: PathType, updated: Iterable[str] | None = None) -> Path | None:
    """Write the manifest of a results folder's trained model (:func:`model_files`), or nothing if it has no plans.

    Parameters
    ----------
    results_dir : str or Path
        ``RESULTS/<dataset>``.
    updated : iterable of str, optional
        Path prefixes (``"3d_fullres/fold_0/"``, ``"plans.json"``) this run wrote or used: their files are hashed
        anew. Files outside them keep their recorded hashes, so a change made to them since is still reported rather
        than silently accepted. Default: hash every file.

    Returns
    -------
    Path or None
        The manifest file.
    """
    root = Path(results_dir)
    if not (root / "plans.json").is_file():
        return None
    with folder_lock(root, "autounet (recording the model manifest)", wait_seconds=120, lock_name=".manifest.lock"):
        try:
            previous = read_manifest(root)["files"] if updated is not None else {}
        except (FileNotFoundError, ModelManifestError):
            previous = {}
        prefixes = tuple(updated or ())
        known = {name: entry for name, entry in previous.items() if not name.startswith(prefixes)}
        extra = {"autounet_version": __version__, "written": time.strftime("%Y-%m-%d %H:%M:%S")}
        path = write_manifest(root, model_files(root), extra, known=known)
    logger.info("recorded the model's files in %s", path)
    return path


def check_model_files(results_dir: PathType, files: Iterable[PathType]) -> None:
    """Before a model is used: check the files about to be read against its manifest (if it has one).

    A model folder without ``manifest.json`` (trained by an older autounet, or assembled by hand) is used with a
    warning; ``checkpoint_latest.pt`` is never recorded (it changes while a fold trains) and is not checked.

    Parameters
    ----------
    results_dir : str or Path
        The model folder.
    files : iterable of path
        Files inside it (absolute or relative to it) that are about to be read.

    Raises
    ------
    ModelManifestError
        Naming every file that differs from its record, is missing, or is not recorded.
    """
    root = Path(results_dir)
    if not (root / MANIFEST_FILE).is_file():
        logger.warning("%s has no %s (trained by an older autounet or assembled by hand): its files cannot be "
                       "checked for changes", root, MANIFEST_FILE)
        return
    relative = []
    for path in files:
        path = Path(path) if Path(path).is_absolute() else root / path
        try:
            name = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue  # given from outside the model folder (e.g. an explicit post-processing file)
        if not name.endswith("checkpoint_latest.pt"):
            relative.append(name)
    verify_manifest(root, relative)
