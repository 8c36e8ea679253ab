"""Slices of one series as plain records; choose, sort and check them, and derive the volume's geometry.

Slices are sorted by their position along the slice normal (row cosine x column cosine), never by file name or
instance number. The geometry follows ITK's convention for DICOM (LPS world coordinates): array axis x runs along
the row cosine, y along the column cosine, z along the normal; :class:`~autounet.io.Geometry` stores it in
(z, y, x) order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autounet.dicom.headers import functional_group_value
from autounet.errors import ImageReadError
from autounet.io import Geometry

#: Two slices closer than this along the normal (mm) are at the same position (duplicates, or several echoes or
#: time points in one series); scanners write positions with 0.01 mm or finer resolution.
DUPLICATE_POSITION_MM = 1e-3
#: A slice may lie this fraction of the slice spacing away from its place on a regular grid (along the normal, or
#: sideways as a gantry tilt shows) before the series is called irregular: 1/10 of a voxel is invisible, and the
#: geometry proof of the written segmentation allows half a voxel.
GRID_TOLERANCE_FRACTION = 0.1
#: Direction cosines of two slices differing by less than this are the same orientation (headers hold 6+ digits).
ORIENTATION_ATOL = 1e-3
#: At most this many slices with another orientation are dropped as stray localizers; more is an error.
MAX_STRAY_SLICES = 2


@dataclass(frozen=True)
class SliceRecord:
    """One 2D frame of a series: where its pixels are, how to scale them, where they come from.

    ``position`` is ImagePositionPatient (LPS, mm, centre of the first pixel); ``row_cosine`` the direction of
    increasing column index and ``column_cosine`` that of increasing row index (ImageOrientationPatient);
    ``pixel_spacing`` is (between rows, between columns) in mm. ``frame`` is the frame index inside an enhanced
    multi-frame file, None for single-frame files.
    """

    path: Path
    frame: int | None
    position: tuple[float, float, float]
    row_cosine: tuple[float, float, float]
    column_cosine: tuple[float, float, float]
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int
    slope: float = 1.0
    intercept: float = 0.0
    instance_number: int = 0
    sop_instance_uid: str = ""
    is_localizer: bool = False

    @property
    def normal(self) -> np.ndarray:
        normal = np.cross(self.row_cosine, self.column_cosine)
        return normal / np.linalg.norm(normal)


@dataclass
class SliceStack:
    """The chosen slices in volume order with their geometry, and what was dropped or found on the way.

    ``regular`` is False when the slices are unevenly spaced or sheared (gantry tilt); then ``geometry`` is the
    regular grid the reader resamples onto, and ``offsets_mm`` holds each slice's in-plane offset from that grid's
    axis and ``depths_mm`` its position along the normal, both relative to the first slice.
    """

    slices: list[SliceRecord]
    geometry: Geometry
    notes: list[str] = field(default_factory=list)
    regular: bool = True
    problem: str = ""
    depths_mm: np.ndarray | None = None
    offsets_mm: np.ndarray | None = None


def records_from_header(path: Path, header: Any) -> list[SliceRecord]:
    """The frames of one file: one record for a classic image, one per frame for an enhanced multi-frame image.

    Raises
    ------
    ImageReadError
        If the file has no plane position, orientation or pixel spacing (not a cross-sectional image).
    """
    localizer = "LOCALIZER" in [str(v).upper() for v in _as_list(header.get("ImageType", []))]
    common = dict(rows=int(header.Rows), columns=int(header.Columns), sop_instance_uid=str(header.get("SOPInstanceUID", "")),
                  instance_number=_int(header.get("InstanceNumber")), is_localizer=localizer)
    if "PerFrameFunctionalGroupsSequence" in header:
        shared = header.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in header else None
        records = []
        for index, per_frame in enumerate(header.PerFrameFunctionalGroupsSequence):
            position = functional_group_value(per_frame, shared, "PlanePositionSequence", "ImagePositionPatient")
            orientation = functional_group_value(per_frame, shared, "PlaneOrientationSequence", "ImageOrientationPatient")
            spacing = functional_group_value(per_frame, shared, "PixelMeasuresSequence", "PixelSpacing")
            slope = functional_group_value(per_frame, shared, "PixelValueTransformationSequence", "RescaleSlope")
            intercept = functional_group_value(per_frame, shared, "PixelValueTransformationSequence", "RescaleIntercept")
            records.append(_record(path, index, position, orientation, spacing, slope, intercept, common))
        return records
    return [_record(path, None, header.get("ImagePositionPatient"), header.get("ImageOrientationPatient"),
                    header.get("PixelSpacing"), header.get("RescaleSlope"), header.get("RescaleIntercept"), common)]


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(value, str) else [value]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _record(path: Path, frame: int | None, position, orientation, spacing, slope, intercept, common: dict) -> SliceRecord:
    missing = [name for name, value in (("ImagePositionPatient", position), ("ImageOrientationPatient", orientation),
                                        ("PixelSpacing", spacing)) if value is None]
    if missing:
        raise ImageReadError(
            f"{path}: no {', '.join(missing)}, so the slice has no place in the patient (a secondary capture or a "
            "screenshot, not a cross-sectional image); export the original series from the scanner or PACS"
        )
    orientation = [float(v) for v in orientation]
    spacing_values = [float(v) for v in spacing]
    if len(orientation) != 6 or len(spacing_values) != 2 or min(spacing_values) <= 0 or len(list(position)) != 3:
        raise ImageReadError(
            f"{path}: unusable geometry (ImageOrientationPatient {orientation}, PixelSpacing {spacing_values}); "
            "re-export the series from the scanner or PACS"
        )
    row, column = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    if np.linalg.norm(np.cross(row, column)) < 0.5:
        raise ImageReadError(f"{path}: ImageOrientationPatient {orientation} has parallel row and column directions; "
                             "the header is damaged, re-export the series")
    row, column = row / np.linalg.norm(row), column / np.linalg.norm(column)
    return SliceRecord(
        path=path, frame=frame, position=tuple(float(v) for v in position),  # type: ignore[arg-type]
        row_cosine=tuple(row.tolist()), column_cosine=tuple(column.tolist()),  # type: ignore[arg-type]
        pixel_spacing=(spacing_values[0], spacing_values[1]),
        slope=1.0 if slope is None else float(slope), intercept=0.0 if intercept is None else float(intercept),
        **common,
    )


def build_stack(records: Sequence[SliceRecord], where: str) -> SliceStack:
    """Choose the slices of a volume, sort them along the normal and derive the geometry.

    Localizers, slices of another size and a few stray slices of another orientation are dropped with a note, and
    so are duplicate positions (the lowest instance number is kept).

    Parameters
    ----------
    records : sequence of SliceRecord
        Every frame of the series.
    where : str
        The series, for messages.

    Returns
    -------
    SliceStack
        ``regular`` tells whether the slices lie on a regular grid; if not, ``problem`` says why.

    Raises
    ------
    ImageReadError
        For one slice only, or slices of several orientations that are not a few strays.
    """
    notes: list[str] = []
    kept = [r for r in records if not r.is_localizer]
    if len(kept) < len(records):
        notes.append(f"{len(records) - len(kept)} localizer slice(s) dropped")
    kept = _keep_majority(kept, lambda r: (r.rows, r.columns), "of another size", notes)
    kept = _keep_one_orientation(kept, where, notes)
    if not kept:
        raise ImageReadError(f"{where}: only localizer slices; pass the series that holds the volume")
    normal = kept[0].normal
    depths = np.array([float(np.dot(r.position, normal)) for r in kept])
    order = sorted(range(len(kept)), key=lambda i: (depths[i], kept[i].instance_number))
    kept, depths = [kept[i] for i in order], depths[order]
    unique = [0]
    for i in range(1, len(kept)):
        if depths[i] - depths[unique[-1]] > DUPLICATE_POSITION_MM:
            unique.append(i)
    if len(unique) < len(kept):
        notes.append(f"{len(kept) - len(unique)} slice(s) at a duplicate position dropped (kept the first of each)")
        kept, depths = [kept[i] for i in unique], depths[unique]
    if len(kept) < 2:
        raise ImageReadError(
            f"{where}: one slice only, so there is no volume to segment; export the whole series (all slices), "
            "or use a 2D image format (PNG/TIFF) for a single image"
        )
    return _grid(kept, depths - depths[0], normal, notes)


def _keep_majority(records: list[SliceRecord], key, what: str, notes: list[str]) -> list[SliceRecord]:
    if not records:
        return records
    counts = Counter(key(r) for r in records)
    majority = counts.most_common(1)[0][0]
    kept = [r for r in records if key(r) == majority]
    if len(kept) < len(records):
        notes.append(f"{len(records) - len(kept)} slice(s) {what} dropped (kept {majority})")
    return kept


def _keep_one_orientation(records: list[SliceRecord], where: str, notes: list[str]) -> list[SliceRecord]:
    groups: list[list[SliceRecord]] = []
    for record in records:
        cosines = np.concatenate([record.row_cosine, record.column_cosine])
        for group in groups:
            first = np.concatenate([group[0].row_cosine, group[0].column_cosine])
            if np.max(np.abs(cosines - first)) < ORIENTATION_ATOL:
                group.append(record)
                break
        else:
            groups.append([record])
    if len(groups) <= 1:
        return records
    groups.sort(key=len, reverse=True)
    strays = sum(len(g) for g in groups[1:])
    if strays <= MAX_STRAY_SLICES and len(groups[0]) > strays:
        notes.append(f"{strays} slice(s) with another orientation dropped (probably localizers)")
        return groups[0]
    listing = ", ".join(
        f"{len(g)} slice(s) with orientation {[round(v, 3) for v in (*g[0].row_cosine, *g[0].column_cosine)]}" for g in groups[:4]
    )
    raise ImageReadError(
        f"{where}: inconsistent orientations in one series ({listing}); a volume needs parallel slices. Export "
        "each orientation as its own series, or remove the odd slices"
    )


def _grid(slices: list[SliceRecord], depths: np.ndarray, normal: np.ndarray, notes: list[str]) -> SliceStack:
    """Geometry of the slices and whether they lie on it (evenly spaced along the normal, not sheared)."""
    first = slices[0]
    count = len(slices)
    step = float(depths[-1] / (count - 1))
    row_spacing, column_spacing = first.pixel_spacing
    positions = np.array([r.position for r in slices]) - np.asarray(first.position)
    offsets = positions - np.outer(depths, normal)  # sideways displacement from the axis through the first slice
    matrix = np.column_stack([first.row_cosine, first.column_cosine, normal])  # world (x, y, z) per ITK axis
    tolerance = GRID_TOLERANCE_FRACTION * min(step, row_spacing, column_spacing)
    depth_error = float(np.max(np.abs(depths - step * np.arange(count))))
    shear = float(np.max(np.linalg.norm(offsets, axis=1)))
    problem = ""
    if shear > tolerance:
        tilt = np.degrees(np.arctan2(np.linalg.norm(offsets[-1]), depths[-1]))
        problem = (f"slices are sheared (gantry tilt of about {tilt:.1f} degrees: the last slice is "
                   f"{np.linalg.norm(offsets[-1]):.2f} mm sideways of the first)")
    elif depth_error > GRID_TOLERANCE_FRACTION * step:
        gaps = np.diff(depths)
        step = float(np.median(gaps))
        problem = (f"slice gaps are irregular ({gaps.min():.3f} to {gaps.max():.3f} mm; a slice is missing or the "
                   "series mixes spacings)")
    geometry = Geometry(
        spacing=(step, row_spacing, column_spacing),
        origin=tuple(reversed(first.position)),
        direction=tuple(matrix[::-1, ::-1].ravel()),
    )
    return SliceStack(slices, geometry, notes, regular=not problem, problem=problem, depths_mm=depths, offsets_mm=offsets)
