"""Prove a written Segmentation is in the right place: each segment's centroid computed from the file's own frame
geometry (plane positions, orientation, pixel spacing, read back with pydicom) must equal the centroid computed from
the label map in the source geometry, within half a voxel, with the same number of voxels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from autounet.dicom.headers import functional_group_value
from autounet.errors import AutounetError
from autounet.io import Geometry

#: Largest allowed centroid difference, in voxels along each axis of the source grid (the issue's criterion).
MAX_CENTROID_ERROR_VOXELS = 0.5


class GeometryProofError(AutounetError, ValueError):
    """A written Segmentation does not put a segment where the label map has it; the file is not kept."""


@dataclass(frozen=True)
class SegmentCheck:
    """One segment's proof: centroids in LPS world coordinates (x, y, z mm), voxel counts and the error in voxels."""

    segment_number: int
    label_value: int
    voxels_expected: int
    voxels_written: int
    centroid_expected_mm: tuple[float, float, float] | None
    centroid_written_mm: tuple[float, float, float] | None
    error_voxels: float

    @property
    def ok(self) -> bool:
        return self.voxels_expected == self.voxels_written and self.error_voxels <= MAX_CENTROID_ERROR_VOXELS

    def to_dict(self) -> dict[str, Any]:
        return {"segment_number": self.segment_number, "label_value": self.label_value,
                "voxels_expected": self.voxels_expected, "voxels_written": self.voxels_written,
                "centroid_expected_mm": self.centroid_expected_mm, "centroid_written_mm": self.centroid_written_mm,
                "error_voxels": round(self.error_voxels, 4)}


def label_map_centroids(label_map: np.ndarray, geometry: Geometry, values: Mapping[int, int]) -> dict[int, tuple[int, np.ndarray | None]]:
    """Voxel count and world centroid (LPS x, y, z in mm) of each label value in a label map.

    Parameters
    ----------
    label_map : ndarray of shape (z, y, x)
        Label values on the grid ``geometry`` describes.
    geometry : Geometry
        The source geometry (array order; world components in (z, y, x) order as everywhere in autounet).
    values : mapping of int to int
        Segment number -> label value.

    Returns
    -------
    dict
        Segment number -> (voxel count, centroid or None when empty).
    """
    result: dict[int, tuple[int, np.ndarray | None]] = {}
    for segment, value in values.items():
        mask = label_map == value  # one boolean volume at a time: bounded memory for large CT
        per_axis = [np.count_nonzero(mask, axis=tuple(a for a in range(3) if a != axis)) for axis in range(3)]
        count = int(per_axis[0].sum())
        if count == 0:
            result[segment] = (0, None)
            continue
        mean_index = np.array([float(per_axis[axis] @ np.arange(label_map.shape[axis])) / count for axis in range(3)])
        world_zyx = geometry.index_to_world(mean_index)
        result[segment] = (count, world_zyx[::-1].copy())  # -> (x, y, z)
    return result


def seg_centroids(dataset: Any) -> dict[int, tuple[int, np.ndarray | None]]:
    """Voxel count and world centroid (LPS x, y, z mm) of each segment, from a Segmentation's own frame geometry.

    Only the file's attributes are used: per-frame ImagePositionPatient, the (shared or per-frame)
    ImageOrientationPatient and PixelSpacing, and for BINARY/FRACTIONAL the per-frame referenced segment number
    (LABELMAP frames hold segment numbers as pixel values).

    Parameters
    ----------
    dataset : pydicom.Dataset
        A Segmentation read back with pydicom (pixel data included).
    """
    frames = dataset.pixel_array
    if frames.ndim == 2:
        frames = frames[None]
    labelmap = str(dataset.get("SegmentationType", "")).upper() == "LABELMAP"
    shared = dataset.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in dataset else None
    numbers = [int(item.SegmentNumber) for item in dataset.SegmentSequence]
    totals = {n: [0, np.zeros(3)] for n in numbers}
    rows, columns = frames.shape[1:]
    row_index, column_index = np.arange(rows, dtype=np.float64), np.arange(columns, dtype=np.float64)
    for frame, group in zip(frames, dataset.PerFrameFunctionalGroupsSequence):
        position = np.asarray(_attribute(group, shared, "PlanePositionSequence", "ImagePositionPatient"), dtype=float)
        orientation = np.asarray(_attribute(group, shared, "PlaneOrientationSequence", "ImageOrientationPatient"), dtype=float)
        spacing = np.asarray(_attribute(group, shared, "PixelMeasuresSequence", "PixelSpacing"), dtype=float)
        row_cosine, column_cosine = orientation[:3], orientation[3:]
        if labelmap:
            present = [n for n in np.unique(frame) if int(n) in totals]
            masks = [(int(n), frame == n) for n in present]
        else:
            number = _attribute(group, shared, "SegmentIdentificationSequence", "ReferencedSegmentNumber")
            masks = [(int(number), frame > 0)]
        for number, mask in masks:
            count = int(np.count_nonzero(mask))
            if not count:
                continue
            sum_rows = float(mask.sum(axis=1) @ row_index)
            sum_columns = float(mask.sum(axis=0) @ column_index)
            world_sum = (count * position + sum_columns * spacing[1] * row_cosine + sum_rows * spacing[0] * column_cosine)
            totals[number][0] += count
            totals[number][1] += world_sum
    return {n: (int(c), (s / c) if c else None) for n, (c, s) in totals.items()}


def _attribute(group: Any, shared: Any, sequence: str, keyword: str) -> Any:
    value = functional_group_value(group, shared, sequence, keyword)
    if value is None:
        raise GeometryProofError(f"the Segmentation has no {keyword} in {sequence}; it cannot be placed in the patient")
    return value


def prove_seg_geometry(dataset: Any, label_map: np.ndarray, geometry: Geometry, values: Mapping[int, int],
                       where: str = "segmentation") -> list[SegmentCheck]:
    """Compare every segment of a written Segmentation with the label map it was made from.

    Parameters
    ----------
    dataset : pydicom.Dataset
        The Segmentation as read back from disk.
    label_map : ndarray of shape (z, y, x)
        The label map in the source geometry.
    geometry : Geometry
        The source geometry.
    values : mapping of int to int
        Segment number -> label value.
    where : str
        The file, for the message.

    Returns
    -------
    list of SegmentCheck
        One per segment, all ``ok``.

    Raises
    ------
    GeometryProofError
        If any segment has another voxel count, or its centroid is more than half a voxel away along any axis.
    """
    expected = label_map_centroids(label_map, geometry, values)
    written = seg_centroids(dataset)
    to_voxels = np.linalg.inv(geometry.direction_matrix[::-1, ::-1] * np.asarray(geometry.spacing)[::-1])  # world xyz -> index xyz
    checks = []
    for number, value in values.items():
        count_expected, centre_expected = expected[number]
        count_written, centre_written = written.get(number, (0, None))
        error = 0.0
        if centre_expected is not None and centre_written is not None:
            error = float(np.max(np.abs(to_voxels @ (centre_written - centre_expected))))
        elif (centre_expected is None) != (centre_written is None):
            error = float("inf")
        checks.append(SegmentCheck(number, value, count_expected, count_written,
                                   None if centre_expected is None else tuple(round(float(v), 4) for v in centre_expected),
                                   None if centre_written is None else tuple(round(float(v), 4) for v in centre_written),
                                   error))
    failed = [c for c in checks if not c.ok]
    if failed:
        detail = "; ".join(
            f"segment {c.segment_number} (label {c.label_value}): {c.voxels_written} voxels written, {c.voxels_expected} "
            f"expected, centroid {c.centroid_written_mm} mm instead of {c.centroid_expected_mm} mm "
            f"({c.error_voxels:.2f} voxels off)" for c in failed)
        raise GeometryProofError(
            f"{where}: the geometry proof failed, so the file was not written: {detail}. The segmentation would be "
            "misplaced in a viewer; please report this with the series (autounet bug or an unusual series)"
        )
    return checks
