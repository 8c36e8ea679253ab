"""``manifest.json`` of a model folder: a versioned list of its files with their sha256 and size.

The format is the one of trained model folders (``{"format": "autounet-model-manifest", "format_version": 1,
"files": {"rel/path": {"sha256": ..., "bytes": ...}}, ...}``); a model package adds its own facts (labels,
channels, configurations, folds, cross-validation Dice) as further top-level keys. Reading checks the format and its
version first, so a manifest written by a newer autounet is refused with a message instead of misread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from autounet.errors import AutounetError
from autounet.jsonio import read_json, write_json
from autounet.model_manifest import file_sha256
from autounet.safe_names import name_problem
from autounet.typing import PathType

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "autounet-model-manifest"
#: Versions of the manifest layout this autounet reads; bump when the meaning of a key changes.
MANIFEST_FORMAT_VERSION = 1
KNOWN_FORMAT_VERSIONS = (1,)


class ManifestError(AutounetError, ValueError):
    """A manifest is missing, of an unknown format, or does not match the files beside it."""


#: Hex sha256 of a file, read in chunks: the same function that hashes trained model folders.
sha256_file = file_sha256


def relative_path_problem(relative: str) -> str | None:
    """Why ``relative`` cannot name a file inside a model folder, or None when it can.

    Parameters
    ----------
    relative : str
        A ``/``-separated path such as ``"3d_fullres/fold_0/checkpoint_final.pt"``.

    Examples
    --------
    >>> relative_path_problem("3d_fullres/fold_0/checkpoint_final.pt") is None
    True
    >>> relative_path_problem("../etc/passwd")
    "has the component '..', which is a relative path component"
    >>> relative_path_problem("/etc/passwd")
    'is an absolute path'
    """
    if not isinstance(relative, str) or not relative:
        return "is empty"
    if relative.startswith("/") or (len(relative) > 1 and relative[1] == ":"):
        return "is an absolute path"
    if "\\" in relative:
        return "contains a backslash"
    for part in relative.split("/"):
        if not part:
            return "has an empty component"
        problem = name_problem(part)
        if problem is not None:
            return f"has the component {part!r}, which {problem}"
    return None


def write_manifest(folder: PathType, files: Iterable[str], extra: Mapping[str, Any] | None = None) -> Path:
    """Hash ``files`` (paths relative to ``folder``) and write ``folder/manifest.json``.

    Parameters
    ----------
    folder : str or Path
        The model folder.
    files : iterable of str
        ``/``-separated paths of the files to list, relative to ``folder``.
    extra : mapping, optional
        Further top-level keys (must not be ``format``, ``format_version`` or ``files``).

    Returns
    -------
    Path
        The manifest written.
    """
    folder = Path(folder)
    listed: dict[str, dict[str, Any]] = {}
    for relative in sorted(files):
        problem = relative_path_problem(relative)
        if problem is not None:
            raise ManifestError(f"{folder}: file name {relative!r} {problem}; it cannot be listed in a manifest")
        path = folder / relative
        listed[relative] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    data: dict[str, Any] = {"format": MANIFEST_FORMAT, "format_version": MANIFEST_FORMAT_VERSION}
    for key, value in (extra or {}).items():
        if key in ("format", "format_version", "files"):
            raise ValueError(f"extra manifest key {key!r} is reserved")
        data[key] = value
    data["files"] = listed
    write_json(folder / MANIFEST_FILE, data)
    return folder / MANIFEST_FILE


def check_manifest_data(data: Any, source: str) -> dict[str, Any]:
    """``data`` when it is a manifest this autounet understands, else a :class:`ManifestError`.

    Parameters
    ----------
    data : object
        The parsed JSON.
    source : str
        Where it was read from, for messages.
    """
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ManifestError(
            f"{source}: not an autounet model manifest (expected \"format\": \"{MANIFEST_FORMAT}\"); the file was not "
            "written by autounet export-model, or it was changed"
        )
    version = data.get("format_version")
    if version not in KNOWN_FORMAT_VERSIONS:
        raise ManifestError(
            f"{source}: manifest format_version {version!r} is unknown to this autounet (it reads "
            f"{', '.join(map(str, KNOWN_FORMAT_VERSIONS))}); the model was packaged by a newer autounet: update "
            "autounet (pip install -U autounet) or ask for a package in an older format"
        )
    files = data.get("files")
    if not isinstance(files, dict) or not files:
        raise ManifestError(f"{source}: the manifest lists no files; re-export the model")
    for relative, entry in files.items():
        problem = relative_path_problem(relative)
        if problem is not None:
            raise ManifestError(f"{source}: listed file {relative!r} {problem}; the package is unsafe and is refused")
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or len(entry["sha256"]) != 64
            or not isinstance(entry.get("bytes"), int)
            or entry["bytes"] < 0
        ):
            raise ManifestError(f"{source}: entry of {relative!r} needs a 64-character sha256 and a byte count; re-export")
    return data


def read_manifest(folder: PathType) -> dict[str, Any]:
    """The manifest of ``folder``, checked for format and version (not yet against the files).

    Parameters
    ----------
    folder : str or Path
        Folder holding ``manifest.json``.
    """
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(f"{path}: no manifest; export the model with \"autounet export-model\"")
    return check_manifest_data(read_json(path), str(path))


def verify_manifest(folder: PathType) -> dict[str, Any]:
    """Check every file listed in ``folder/manifest.json`` against its size and sha256.

    Parameters
    ----------
    folder : str or Path
        Folder holding ``manifest.json`` and the files it lists.

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    ManifestError
        Naming the first missing, resized or changed file.
    """
    folder = Path(folder)
    data = read_manifest(folder)
    for relative, entry in data["files"].items():
        path = folder / relative
        if path.is_symlink() or not path.is_file():
            raise ManifestError(f"{path}: listed in {MANIFEST_FILE} but missing (or not a regular file); re-export")
        if path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            raise ManifestError(
                f"{path}: does not match its checksum in {MANIFEST_FILE}; the file was changed or damaged after "
                "export. Do not use this model: get the original package again"
            )
    return data
