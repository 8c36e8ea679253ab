"""Find the DICOM series in folders or file lists: group files by SeriesInstanceUID, note what is not DICOM."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autounet.dicom.headers import object_kind, read_header, text
from autounet.errors import ImageReadError
from autounet.typing import PathType

#: Files never looked at: hidden files and operating-system clutter.
_SKIPPED_NAMES = frozenset({"thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class DicomSeries:
    """The files of one DICOM series, as found on disk (headers are read again when the series is decoded).

    Parameters
    ----------
    uid : str
        SeriesInstanceUID.
    files : tuple of Path
        Its files, in file-name order (never used as slice order).
    kind : {"image", "seg", "rtstruct", "other"}
        What the series holds.
    description, modality, study_uid, frame_of_reference_uid, patient_id : str
        From the first file's header, for messages and channel mapping (never used as paths).
    folder : Path
        The folder the files were found in (their common parent).
    """

    uid: str
    files: tuple[Path, ...]
    kind: str
    description: str = ""
    modality: str = ""
    study_uid: str = ""
    frame_of_reference_uid: str = ""
    patient_id: str = ""
    series_number: str = ""
    folder: Path = Path(".")

    def describe(self) -> str:
        """``series 1.2.3 "T2 AX" (MR, 24 files in /data/study)`` for messages."""
        label = f' "{self.description}"' if self.description else ""
        return f"series {self.uid}{label} ({self.modality or '?'}, {len(self.files)} file(s) in {self.folder})"

    def matches(self, pattern: str) -> bool:
        """True if the SeriesDescription (or, when empty, the series number or UID) matches a glob, ignoring case."""
        pattern = pattern.lower()
        names = [self.description, self.series_number, self.uid]
        return any(name and fnmatch.fnmatchcase(name.lower(), pattern) for name in names)


@dataclass
class Discovery:
    """What a folder holds: DICOM series in order of first appearance, and files that are not DICOM."""

    series: list[DicomSeries] = field(default_factory=list)
    not_dicom: list[Path] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[DicomSeries]:
        return [s for s in self.series if s.kind == kind]

    def notes(self) -> list[str]:
        """Human-readable notes (ignored files) for reports."""
        if not self.not_dicom:
            return []
        shown = ", ".join(p.name for p in self.not_dicom[:5]) + (" ..." if len(self.not_dicom) > 5 else "")
        return [f"{len(self.not_dicom)} file(s) that are not DICOM were ignored: {shown}"]


def list_files(source: PathType | Sequence[PathType], recursive: bool = True) -> list[Path]:
    """Visible files of a folder (recursively), or the given files, sorted by path."""
    if isinstance(source, (str, Path)):
        root = Path(source)
        if root.is_file():
            return [root]
        if not root.is_dir():
            raise ImageReadError(f"{root}: DICOM folder not found; pass the folder that holds the series")
        walker = root.rglob("*") if recursive else root.iterdir()
        return sorted(
            p for p in walker
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
            and p.name.lower() not in _SKIPPED_NAMES
        )
    return sorted(Path(p) for p in source)


def discover(source: PathType | Sequence[PathType], recursive: bool = True) -> Discovery:
    """Group the DICOM files of a folder (or of a file list) by SeriesInstanceUID.

    Parameters
    ----------
    source : str, Path or sequence of them
        A folder (searched recursively by default) or explicit files.
    recursive : bool
        Also look into sub-folders.

    Returns
    -------
    Discovery
        Series in order of their first file; files that are not readable DICOM are listed in ``not_dicom``.
    """
    found = Discovery()
    groups: dict[str, list[tuple[Path, Any]]] = {}
    for path in list_files(source, recursive):
        header = read_header(path)
        if header is None or "SeriesInstanceUID" not in header:
            found.not_dicom.append(path)
            continue
        groups.setdefault(str(header.SeriesInstanceUID), []).append((path, header))
    for uid, members in groups.items():
        found.series.append(_series(uid, members))
    return found


def _series(uid: str, members: list[tuple[Path, Any]]) -> DicomSeries:
    files = tuple(path for path, _ in members)
    kinds = [object_kind(header) for _, header in members]
    kind = max(set(kinds), key=kinds.count)
    first = members[0][1]
    parents = {p.parent for p in files}
    folder = parents.pop() if len(parents) == 1 else Path(*_common_parts([p.parent for p in files]))
    return DicomSeries(
        uid=uid,
        files=files,
        kind=kind,
        description=text(first, "SeriesDescription").strip(),
        modality=text(first, "Modality").strip(),
        study_uid=text(first, "StudyInstanceUID"),
        frame_of_reference_uid=text(first, "FrameOfReferenceUID"),
        patient_id=text(first, "PatientID"),
        series_number=text(first, "SeriesNumber"),
        folder=folder,
    )


def _common_parts(folders: Iterable[Path]) -> tuple[str, ...]:
    parts = [f.parts for f in folders]
    common: list[str] = []
    for column in zip(*parts):
        if len(set(column)) != 1:
            break
        common.append(column[0])
    return tuple(common) or (".",)


def pick_image_series(found: Discovery, where: str, series_uid: str | None = None) -> DicomSeries:
    """The one image series of a folder, or the one with ``series_uid``; a clear error when it is ambiguous.

    Parameters
    ----------
    found : Discovery
        From :func:`discover`.
    where : str
        The folder or files, for messages.
    series_uid : str, optional
        The SeriesInstanceUID to pick.

    Raises
    ------
    ImageReadError
        If there is no image series, the UID is not there, or several image series and no UID.
    """
    images = found.of_kind("image")
    if series_uid is not None:
        chosen = [s for s in found.series if s.uid == series_uid]
        if not chosen:
            raise ImageReadError(
                f"{where}: no series {series_uid}; found {_listing(found.series) or 'no DICOM series'}"
            )
        return chosen[0]
    if not images:
        others = f" (found {_listing(found.series)})" if found.series else ""
        ignored = f"; {len(found.not_dicom)} file(s) are not DICOM" if found.not_dicom else ""
        raise ImageReadError(
            f"{where}: no DICOM image series{others}{ignored}; pass a folder that holds the slices of one series "
            "(export it from the PACS as DICOM files)"
        )
    if len(images) > 1:
        raise ImageReadError(
            f"{where}: {len(images)} image series in one folder and no way to pick one: {_listing(images)}; put each "
            "series in its own folder, pick one by its SeriesInstanceUID (series_uid), or map them to channels "
            "(--dicom-channels NAME=PATTERN,...)"
        )
    return images[0]


def _listing(series: Sequence[DicomSeries]) -> str:
    return "; ".join(s.describe() for s in series[:6]) + (" ..." if len(series) > 6 else "")
