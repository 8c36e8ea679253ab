"""Open a model package safely: refuse unsafe entries and zip bombs before extracting, verify every checksum.

A package may come from anyone. Nothing in it becomes a path unchecked (no absolute paths, no ``..``, no
backslashes, no symbolic links), the uncompressed size is bounded in total and per entry ratio before a byte is
written, every file is extracted into a new private folder (mode 0700) with its sha256 checked against the manifest,
and files the manifest does not list are refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from autounet.packaging.export import PACKAGE_KIND, PackageError
from autounet.packaging.manifest import (
    MANIFEST_FILE,
    ManifestError,
    check_manifest_data,
    relative_path_problem,
    sha256_file,
)
from autounet.typing import PathType

#: Largest manifest accepted (it lists files, it is never large).
MAX_MANIFEST_BYTES = 4 * 1024**2
_COPY_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class PackageLimits:
    """Bounds that make a zip bomb fail before it fills the disk.

    Parameters
    ----------
    max_total_bytes : int
        Largest sum of the uncompressed sizes (default 16 GiB: five folds of a large 3D network with optimizer
        state are a few GiB).
    max_ratio : float
        Largest uncompressed/compressed ratio of one entry above ``ratio_min_bytes`` (network weights compress
        about 1.1:1, JSON about 10:1; a bomb about 1000:1).
    ratio_min_bytes : int
        Entries smaller than this are not ratio-checked (small JSON files compress well and harm no one).
    max_entries : int
        Largest number of entries.
    """

    max_total_bytes: int = 16 * 1024**3
    max_ratio: float = 200.0
    ratio_min_bytes: int = 1024**2
    max_entries: int = 10_000


@dataclass(frozen=True)
class OpenedPackage:
    """A verified package extracted into ``folder``; ``manifest`` is its parsed ``manifest.json``."""

    package: Path
    folder: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""

    def predictor_options(self) -> dict[str, Any]:
        """``configurations``, ``folds`` and ``checkpoint`` recorded at export, for ``Predictor.from_model_folder``."""
        return {
            "configurations": list(self.manifest.get("configurations") or []) or None,
            "folds": list(self.manifest.get("folds") or []) or None,
            "checkpoint": self.manifest.get("checkpoint") or "final",
        }


def is_package(path: PathType) -> bool:
    """True for a file ending in ``.zip`` (a model package; a folder is a model folder).

    Parameters
    ----------
    path : str or Path
        Candidate path.
    """
    path = Path(path)
    return path.suffix.lower() == ".zip" and not path.is_dir()


def open_package(package: PathType, target_root: PathType | None = None, limits: PackageLimits = PackageLimits()) -> OpenedPackage:
    """Check ``package`` and extract it into a new private folder inside ``target_root``.

    Parameters
    ----------
    package : str or Path
        A ``.zip`` written by :func:`~autounet.packaging.export.export_model`.
    target_root : str or Path, optional
        Where the private folder (mode 0700) is created; default the system's temporary folder. The caller removes
        ``OpenedPackage.folder`` when done (or uses :func:`opened_package`).
    limits : PackageLimits
        Zip-bomb bounds.

    Returns
    -------
    OpenedPackage

    Raises
    ------
    PackageError
        Naming the package and the problem: not a zip, unknown manifest format or version, an unsafe entry name,
        a symbolic link, an encrypted entry, too large in total or per entry ratio, a file missing from or not
        listed in the manifest, or a checksum that does not match (tampered or damaged).
    """
    package = Path(package)
    if not package.is_file():
        raise FileNotFoundError(f"{package}: model package not found; pass the .zip written by autounet export-model")
    try:
        archive = zipfile.ZipFile(package)
    except (zipfile.BadZipFile, OSError) as err:
        raise PackageError(f"{package}: not a readable zip file ({err}); pass a package written by autounet export-model") from None
    with archive:
        entries = _checked_entries(package, archive, limits)
        manifest = _read_manifest(package, archive, entries)
        listed = manifest["files"]
        unlisted = sorted(set(entries) - set(listed) - {MANIFEST_FILE})
        if unlisted:
            raise PackageError(f"{package}: holds {unlisted[0]!r}, which its manifest does not list; the package was "
                               "changed after export and is refused")
        missing = sorted(set(listed) - set(entries))
        if missing:
            raise PackageError(f"{package}: {missing[0]!r} is listed in the manifest but not in the zip; re-export")
        if target_root is not None:
            Path(target_root).mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="autounet-model-", dir=target_root))  # mode 0700
        try:
            for relative, expected in listed.items():
                _extract_verified(package, archive, entries[relative], folder, relative, expected)
            _write_private(folder / MANIFEST_FILE, archive, entries[MANIFEST_FILE])
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return OpenedPackage(package, folder, manifest, sha256_file(package))


@contextmanager
def opened_package(package: PathType, target_root: PathType | None = None, limits: PackageLimits = PackageLimits()) -> Iterator[OpenedPackage]:
    """:func:`open_package` for a ``with`` block; the extracted folder is removed afterwards.

    Parameters
    ----------
    package, target_root, limits
        As in :func:`open_package`.
    """
    opened = open_package(package, target_root, limits)
    try:
        yield opened
    finally:
        shutil.rmtree(opened.folder, ignore_errors=True)


def _checked_entries(package: Path, archive: zipfile.ZipFile, limits: PackageLimits) -> dict[str, zipfile.ZipInfo]:
    """Every file entry by name, after the checks that need no decompression."""
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise PackageError(f"{package}: {len(infos)} entries (at most {limits.max_entries}); not a model package")
    entries: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        if info.is_dir():
            problem = relative_path_problem(name.rstrip("/"))
            if problem is not None:
                raise PackageError(f"{package}: entry {name!r} {problem}; the package is unsafe and is refused")
            continue
        problem = relative_path_problem(name)
        if problem is not None:
            raise PackageError(f"{package}: entry {name!r} {problem}; the package is unsafe and is refused")
        file_type = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip tool recorded no Unix type
        if file_type and file_type != stat.S_IFREG:
            raise PackageError(f"{package}: entry {name!r} is a symbolic link or special file; packages hold regular "
                               "files only, so it is refused")
        if info.flag_bits & 0x1:
            raise PackageError(f"{package}: entry {name!r} is encrypted; packages are not encrypted, so it is refused")
        if name in entries:
            raise PackageError(f"{package}: entry {name!r} is there twice; the package is refused")
        if info.file_size >= limits.ratio_min_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise PackageError(
                f"{package}: entry {name!r} expands {info.file_size / max(info.compress_size, 1):,.0f}-fold "
                f"(at most {limits.max_ratio:,.0f}); this looks like a zip bomb and is refused"
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise PackageError(
                f"{package}: more than {_size(limits.max_total_bytes)} uncompressed (limit); this looks like a zip bomb "
                "and is refused (raise the limit only for a package you trust)"
            )
        entries[name] = info
    if MANIFEST_FILE not in entries:
        raise PackageError(f"{package}: no {MANIFEST_FILE}; not a package written by autounet export-model")
    return entries


def _read_manifest(package: Path, archive: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo]) -> dict[str, Any]:
    info = entries[MANIFEST_FILE]
    if info.file_size > MAX_MANIFEST_BYTES:
        raise PackageError(f"{package}: {MANIFEST_FILE} is {_size(info.file_size)}; a manifest is never that large")
    try:
        data = json.loads(archive.read(info).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as err:
        raise PackageError(f"{package}: {MANIFEST_FILE} is not readable JSON ({err}); re-export the model") from None
    try:
        manifest = check_manifest_data(data, f"{package}: {MANIFEST_FILE}")
    except ManifestError as err:
        raise PackageError(str(err)) from None
    if manifest.get("kind") != PACKAGE_KIND:
        raise PackageError(f"{package}: the manifest is not one of a model package (kind {manifest.get('kind')!r}); "
                           "export the model with autounet export-model")
    return manifest


def _extract_verified(
    package: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, folder: Path, relative: str, expected: dict
) -> None:
    if info.file_size != expected["bytes"]:
        raise PackageError(f"{package}: {relative!r} has {info.file_size} bytes but the manifest says {expected['bytes']}; "
                           "the package was changed after export and is refused")
    digest = _write_private(folder / relative, archive, info, limit=expected["bytes"])
    if digest != expected["sha256"]:
        raise PackageError(f"{package}: {relative!r} does not match its sha256 in the manifest; the package was "
                           "tampered with or damaged. Do not use it: get the original package again")


def _write_private(target: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int | None = None) -> str:
    """Decompress one entry into a new file (mode 0600, never following links), counting bytes; return its sha256."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    limit = info.file_size if limit is None else limit
    digest = hashlib.sha256()
    written = 0
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out, archive.open(info) as source:
            while True:
                chunk = source.read(_COPY_CHUNK_BYTES)
                if not chunk:
                    break
                written += len(chunk)
                if written > limit:
                    raise PackageError(f"{info.filename!r} expands beyond its declared size; the package is refused")
                digest.update(chunk)
                out.write(chunk)
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise PackageError(f"{info.filename!r} cannot be decompressed ({err}); the package is damaged") from None
    return digest.hexdigest()


def _size(num_bytes: float) -> str:
    return f"{num_bytes / 1e9:,.1f} GB" if num_bytes >= 1e8 else f"{num_bytes / 1e6:,.1f} MB"
