"""``autounet import-dicom``: pair DICOM image series with their labels (DICOM-SEG, RTSTRUCT or label-map files) and
write an nnU-Net v2 layout dataset (NIfTI) that every stage reads, with a record of what was paired and what was not.

Labels are paired with series through the references they carry (a Segmentation's ReferencedSeriesSequence, an
RTSTRUCT's RTReferencedSeriesSequence), else through a unique frame of reference; label-map files (NIfTI, NRRD ...)
through their name (the case id, the series' folder name or its SeriesInstanceUID). The record,
``dicom_import.json``, lists every case with its source series and label, and every series or label left out with
the reason; ``autounet check`` reports the ones left out.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from autounet.dataset.check_case import geometry_mismatches
from autounet.dataset.importer import _check_output, _move_into_place
from autounet.dicom.cases import ChannelMap, read_dicom_channels
from autounet.dicom.discovery import DicomSeries, discover, list_files
from autounet.dicom.headers import read_header, text
from autounet.dicom.rtstruct import read_rtstruct_masks
from autounet.dicom.seg_reader import SegmentMasks, read_seg_masks, referenced_series_uids
from autounet.errors import AutounetError, DatasetError
from autounet.io import read_image, write_image
from autounet.io.formats import SUPPORTED_EXTENSIONS, file_extension, strip_extension
from autounet.jsonio import read_json, write_json
from autounet.safe_names import MAX_NAME_LENGTH, checked_name
from autounet.typing import PathType

logger = logging.getLogger(__name__)

RECORD_FILE = "dicom_import.json"
#: Per-case records inside the partial output, so a killed import resumes; removed when the dataset is complete.
_RECORDS_FOLDER = ".cases"
FILE_ENDING = ".nii.gz"
#: DICOM Modality -> dataset.json channel name (nnU-Net normalises "CT" by the dataset's HU statistics).
_CHANNEL_NAMES = {"CT": "CT", "MR": "MRI", "PT": "PET"}


@dataclass
class _Candidate:
    """A case being assembled: its series (channel order) and the label that pairs with it."""

    case_id: str
    series: tuple[DicomSeries, ...]
    label: Path | None = None
    label_kind: str = ""
    problem: str = ""


@dataclass
class DicomImportResult:
    """What :func:`import_dicom_dataset` wrote (``cases``) and what it left out (``unpaired``, ``mismatched``)."""

    output: Path
    labels: dict[str, int]
    channel_names: list[str]
    cases: list[dict[str, Any]] = field(default_factory=list)
    unpaired: list[dict[str, str]] = field(default_factory=list)
    mismatched: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def import_dicom_dataset(
    images: PathType,
    output: PathType,
    labels: PathType | None = None,
    *,
    name: str | None = None,
    label_names: Sequence[str] | None = None,
    dicom_channels: ChannelMap | None = None,
    resample: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> DicomImportResult:
    """Make a training dataset from DICOM studies and their labels.

    Parameters
    ----------
    images : str or Path
        Folder of DICOM studies (any depth; files that are not DICOM are ignored). Segmentations and RTSTRUCTs
        found here are used as labels too.
    output : str or Path
        Dataset folder to create (nnU-Net v2 layout: ``imagesTr/CASE_0000.nii.gz``, ``labelsTr/CASE.nii.gz``,
        ``dataset.json``, ``dicom_import.json``). Written beside as ``.NAME.partial`` and renamed when complete; a
        killed import resumes from the cases already written.
    labels : str or Path, optional
        Folder of DICOM-SEG / RTSTRUCT files and/or label maps (NIfTI, NRRD ...) named after the case, the series'
        folder or its SeriesInstanceUID.
    name : str, optional
        Dataset name (default: the output folder's name).
    label_names : sequence of str, optional
        Segments/ROIs to import, in label order (1, 2, ...), matched by name ignoring case; others are left out
        with a note. Default: every segment/ROI name found, in order of first appearance. For label-map files,
        the names of values 1, 2, ...
    dicom_channels : sequence of (name, pattern), optional
        Several series per study as channels (glob on SeriesDescription); recorded in dataset.json so
        ``autounet predict`` maps new studies the same way.
    resample : bool
        Resample irregular or gantry-tilted series onto a regular grid instead of leaving them out.
    overwrite : bool
        Replace an existing output folder.
    progress : bool
        Show a progress bar.

    Returns
    -------
    DicomImportResult

    Raises
    ------
    DatasetError
        If no case could be paired (the message lists why for each series), or the output exists.
    """
    images, output = Path(images), Path(output)
    _check_output(output, overwrite)
    found = discover(images)
    label_found = discover(labels) if labels is not None else None
    image_series = found.of_kind("image")
    if not image_series:
        raise DatasetError(f"{images}: no DICOM image series found; pass the folder that holds the studies")
    label_objects = found.of_kind("seg") + found.of_kind("rtstruct")
    label_files: list[Path] = []
    if label_found is not None:
        label_objects += label_found.of_kind("seg") + label_found.of_kind("rtstruct")
        label_files = [p for p in label_found.not_dicom if file_extension(p) in SUPPORTED_EXTENSIONS]
    result = DicomImportResult(output, {}, [])
    result.notes.extend(found.notes())
    candidates = _candidates(image_series, images, dicom_channels, result)
    _pair(candidates, label_objects, label_files, result)
    paired = [c for c in candidates if c.label is not None and not c.problem]
    for candidate in candidates:
        if candidate.label is None and not candidate.problem:
            result.unpaired.append({"series": ", ".join(s.uid for s in candidate.series), "folder": str(candidate.series[0].folder),
                                    "reason": "no Segmentation, RTSTRUCT or label file refers to this series"})
    names = _label_names(paired, label_names, result)
    result.labels = {"background": 0, **{n: i + 1 for i, n in enumerate(names)}}
    partial = output.parent / f".{output.name}.partial"
    for folder in ("imagesTr", "labelsTr"):
        (partial / folder).mkdir(parents=True, exist_ok=True)
    modalities: list[str] = []
    for candidate in tqdm(paired, desc="import-dicom", unit="case", disable=not progress):
        done = partial / _RECORDS_FOLDER / f"{candidate.case_id}.json"
        if done.is_file():  # written by an import that was killed: its files are complete (atomic writes)
            result.cases.append(read_json(done))
            modalities = modalities or [s.modality for s in candidate.series]
            continue
        try:
            entry = _write_case(candidate, partial, names, resample)
        except (AutounetError, OSError, ValueError) as err:
            result.mismatched.append({"case": candidate.case_id, "series": ", ".join(s.uid for s in candidate.series),
                                      "label": str(candidate.label), "reason": str(err)})
            for folder, suffix in (("imagesTr", "_0000"), ("labelsTr", "")):
                for stale in (partial / folder).glob(f"{candidate.case_id}{suffix}*{FILE_ENDING}"):
                    stale.unlink()
            continue
        write_json(done, entry)
        result.cases.append(entry)
        modalities = modalities or [s.modality for s in candidate.series]
    if not result.cases:
        shutil.rmtree(partial, ignore_errors=True)
        reasons = [f"{u['folder']}: {u['reason']}" for u in result.unpaired] + [f"{m['case']}: {m['reason']}" for m in result.mismatched]
        raise DatasetError(f"{images}: no series could be paired with a label:\n  " + "\n  ".join(reasons[:10])
                           + "\nput the Segmentations/RTSTRUCTs beside the studies or pass --labels")
    result.channel_names = [name_ for name_, _ in dicom_channels] if dicom_channels else [_CHANNEL_NAMES.get(modalities[0], modalities[0] or "image")]
    description: dict[str, Any] = {
        "name": name or output.name,
        "channel_names": {str(i): c for i, c in enumerate(result.channel_names)},
        "labels": result.labels,
        "numTraining": len(result.cases),
        "file_ending": FILE_ENDING,
        "description": f"imported from DICOM ({images}) by autounet import-dicom; see {RECORD_FILE}",
    }
    if dicom_channels:
        description["dicom_channels"] = {n: p for n, p in dicom_channels}
    _remove_unlisted(partial, {c["case"] for c in result.cases})
    shutil.rmtree(partial / _RECORDS_FOLDER, ignore_errors=True)
    write_json(partial / "dataset.json", description, indent=2)
    write_json(partial / RECORD_FILE, {"images": str(images), "labels": str(labels) if labels else None,
                                       "cases": result.cases, "unpaired": result.unpaired,
                                       "mismatched": result.mismatched, "notes": result.notes}, indent=2)
    _move_into_place(partial, output)
    return result


def _safe_id(text_: str) -> str:
    """A case id from a folder path: odd characters become ``_``.

    Examples
    --------
    >>> _safe_id("STS 002/CT/image")
    'STS_002_CT_image'
    """
    cleaned = re.sub(r"[^0-9A-Za-z._-]+", "_", text_).strip("._-")
    return checked_name(cleaned[: MAX_NAME_LENGTH - 10] or "case", "case id")


def _candidates(image_series: list[DicomSeries], root: Path, channels: ChannelMap | None, result: DicomImportResult) -> list[_Candidate]:
    groups: dict[str, list[DicomSeries]] = {}
    for series in image_series:
        key = (series.study_uid or series.uid) if channels else series.uid
        groups.setdefault(key, []).append(series)
    candidates = []
    for members in groups.values():
        relative = members[0].folder.relative_to(root) if members[0].folder.is_relative_to(root) else Path(members[0].folder.name)
        base = _safe_id(relative.as_posix()) if relative.parts else _safe_id(members[0].folder.name)
        if channels is None:
            candidates.append(_Candidate(base, (members[0],)))
            continue
        chosen: list[DicomSeries] = []
        for channel, pattern in channels:
            matches = [s for s in members if s.matches(pattern)]
            if len(matches) != 1:
                result.unpaired.append({"series": ", ".join(s.uid for s in members), "folder": str(members[0].folder),
                                        "reason": f"channel {channel} pattern {pattern!r} matches {len(matches)} series "
                                                  "of this study (needs exactly one)"})
                break
            chosen.append(matches[0])
        else:
            candidates.append(_Candidate(base, tuple(chosen)))
    seen: dict[str, int] = {}
    for candidate in candidates:  # several series in one folder: tell them apart by series number or UID
        seen[candidate.case_id] = seen.get(candidate.case_id, 0) + 1
    for candidate in candidates:
        if seen[candidate.case_id] > 1:
            suffix = candidate.series[0].series_number or candidate.series[0].uid
            candidate.case_id = _safe_id(f"{candidate.case_id}_{suffix}")
    return sorted(candidates, key=lambda c: c.case_id)


def _pair(candidates: list[_Candidate], objects: list[DicomSeries], files: list[Path], result: DicomImportResult) -> None:
    by_series = {s.uid: c for c in candidates for s in c.series}
    for obj in objects:
        for path in obj.files:
            header = read_header(path)
            refs = referenced_series_uids(header) if header is not None else []
            target = next((by_series[uid] for uid in refs if uid in by_series), None)
            if target is None:  # no usable reference: a unique frame of reference decides
                frame = obj.frame_of_reference_uid or _rtstruct_frame(header)
                same_frame = [c for c in candidates if frame and c.series[0].frame_of_reference_uid == frame]
                target = same_frame[0] if len(same_frame) == 1 else None
            if target is None:
                result.unpaired.append({"label": str(path), "reason": f"refers to series {refs or '?'} which is not among the "
                                        "image series (and no single series shares its frame of reference)"})
                continue
            _assign(target, path, obj.kind, result)
    for path in files:
        stem = strip_extension(path)
        target = next((c for c in candidates if stem in (c.case_id, c.series[0].uid, c.series[0].folder.name)), None)
        if target is None:
            result.unpaired.append({"label": str(path), "reason": "its name is no case id, series folder name or "
                                    "SeriesInstanceUID of the image series"})
            continue
        _assign(target, path, "labelmap", result)


def _rtstruct_frame(header: Any) -> str:
    if header is None:
        return ""
    frames = [text(item, "FrameOfReferenceUID") for item in header.get("ReferencedFrameOfReferenceSequence", [])]
    return frames[0] if len(frames) == 1 else ""


def _assign(candidate: _Candidate, path: Path, kind: str, result: DicomImportResult) -> None:
    if candidate.label is not None and candidate.label != path:
        candidate.problem = f"several labels refer to this series: {candidate.label} and {path}; keep one"
        result.mismatched.append({"case": candidate.case_id, "series": candidate.series[0].uid, "label": str(path),
                                  "reason": candidate.problem})
        return
    candidate.label, candidate.label_kind = path, kind


def _object_names(path: Path, kind: str) -> list[str]:
    header = read_header(path)
    if header is None:
        return []
    if kind == "seg":
        return [text(item, "SegmentLabel") or f"segment {int(item.SegmentNumber)}" for item in header.get("SegmentSequence", [])]
    return [text(item, "ROIName") or f"ROI {int(item.ROINumber)}" for item in header.get("StructureSetROISequence", [])]


def _label_names(paired: list[_Candidate], given: Sequence[str] | None, result: DicomImportResult) -> list[str]:
    if given:
        names = [str(n) for n in given]
    else:
        names = []
        for candidate in paired:
            if candidate.label_kind in ("seg", "rtstruct"):
                for found in _object_names(candidate.label, candidate.label_kind):  # type: ignore[arg-type]
                    if found.lower() not in [n.lower() for n in names]:
                        names.append(found)
        if not names:
            maximum = max((int(read_image(c.label).data.max()) for c in paired if c.label_kind == "labelmap"), default=1)  # type: ignore[arg-type]
            names = [f"label_{v}" for v in range(1, maximum + 1)]
    if any(not n.strip() for n in names):
        raise DatasetError(f"label names {names} include an empty name; pass --label-names")
    return names


def _write_case(candidate: _Candidate, partial: Path, names: list[str], resample: bool) -> dict[str, Any]:
    image_path = partial / "imagesTr" / f"{candidate.case_id}_0000{FILE_ENDING}"
    label_path = partial / "labelsTr" / f"{candidate.case_id}{FILE_ENDING}"
    image, reference = read_dicom_channels(candidate.series, resample=resample)
    shape = image.spatial_shape
    notes = list(reference.notes)
    assert candidate.label is not None
    if candidate.label_kind == "labelmap":
        label_image = read_image(candidate.label)
        mismatches = geometry_mismatches(image.geometry, label_image.geometry)
        if label_image.spatial_shape != shape or mismatches:
            raise DatasetError(f"{candidate.label}: not on the grid of {reference.series.describe()} (shape "
                               f"{label_image.spatial_shape} vs {shape}; {'; '.join(mismatches) or 'same geometry'}); "
                               "resample the label onto the series")
        label_map = label_image.data[0].astype(np.int64)
        if label_map.min() < 0 or label_map.max() > len(names):
            raise DatasetError(f"{candidate.label}: values {sorted(np.unique(label_map).tolist())[:8]} but the labels are "
                               f"0..{len(names)}; pass --label-names for every value")
    else:
        if candidate.label_kind == "seg":
            masks = read_seg_masks(candidate.label, image.geometry, shape)
        else:
            masks = read_rtstruct_masks(candidate.label, image.geometry, shape, reference.series.frame_of_reference_uid)
        notes.extend(masks.notes)
        label_map = _combine(masks, names, notes)
    for channel in range(image.num_channels):
        write_image(partial / "imagesTr" / f"{candidate.case_id}_{channel:04d}{FILE_ENDING}", image.data[channel], image.geometry)
    write_image(label_path, label_map.astype(np.uint8 if len(names) < 256 else np.uint16), image.geometry)
    assert image_path.is_file()
    return {
        "case": candidate.case_id,
        "series": [{"uid": s.uid, "description": s.description, "modality": s.modality, "folder": str(s.folder),
                    "files": len(s.files)} for s in candidate.series],
        "label": {"file": str(candidate.label), "kind": candidate.label_kind},
        "shape": list(shape),
        "voxels_per_label": {str(v): int(n) for v, n in enumerate(np.bincount(label_map.ravel(), minlength=len(names) + 1))},
        "notes": notes,
    }


def _combine(masks: SegmentMasks, names: list[str], notes: list[str]) -> np.ndarray:
    """One label map from segment masks, by name; where segments overlap the higher label value wins (noted)."""
    lookup = {n.lower(): i + 1 for i, n in enumerate(names)}
    shape = next(iter(masks.masks.values())).shape
    label_map = np.zeros(shape, dtype=np.int64)
    for number in sorted(masks.masks, key=lambda k: lookup.get(masks.names[k].lower(), 0)):
        value = lookup.get(masks.names[number].lower())
        if value is None:
            notes.append(f"segment {masks.names[number]!r} is not among the labels ({', '.join(names)}); left out")
            continue
        overlap = int(np.count_nonzero(label_map[masks.masks[number]]))
        if overlap:
            notes.append(f"segment {masks.names[number]!r} overlaps earlier labels in {overlap} voxel(s); they get label {value}")
        label_map[masks.masks[number]] = value
    return label_map


def _remove_unlisted(partial: Path, cases: set[str]) -> None:
    """Files of a resumed import whose case is no longer paired."""
    for folder in ("imagesTr", "labelsTr"):
        for path in list_files(partial / folder, recursive=False):
            case = strip_extension(path)
            case = case.rsplit("_", 1)[0] if folder == "imagesTr" else case
            if case not in cases:
                path.unlink()
