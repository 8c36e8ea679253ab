"""Read a DICOM Segmentation onto the grid of its image series, placing each frame by its own plane position."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autounet.dicom.headers import functional_group_value, read_full, text
from autounet.dicom.slices import GRID_TOLERANCE_FRACTION, ORIENTATION_ATOL
from autounet.errors import DatasetError
from autounet.io import Geometry
from autounet.typing import PathType


@dataclass
class SegmentMasks:
    """The segments of a Segmentation on an image grid: per segment number, its label and a mask ``(z, y, x)``."""

    names: dict[int, str]
    masks: dict[int, np.ndarray]
    notes: list[str] = field(default_factory=list)


def referenced_series_uids(dataset: Any) -> list[str]:
    """SeriesInstanceUIDs a Segmentation (ReferencedSeriesSequence) or an RTSTRUCT (RTReferencedSeriesSequence) names."""
    uids = [text(item, "SeriesInstanceUID") for item in dataset.get("ReferencedSeriesSequence", [])]
    for frame_ref in dataset.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame_ref.get("RTReferencedStudySequence", []):
            uids.extend(text(series, "SeriesInstanceUID") for series in study.get("RTReferencedSeriesSequence", []))
    return [uid for uid in uids if uid]


def read_seg_masks(path: PathType, geometry: Geometry, shape: tuple[int, int, int]) -> SegmentMasks:
    """Place every frame of a Segmentation on an image grid by its ImagePositionPatient.

    Parameters
    ----------
    path : str or Path
        A DICOM Segmentation (BINARY, FRACTIONAL or LABELMAP).
    geometry : Geometry
        The image series' geometry.
    shape : tuple of int
        The image's spatial shape ``(z, y, x)``.

    Returns
    -------
    SegmentMasks
        One boolean mask per segment (FRACTIONAL frames are thresholded at half the maximum value).

    Raises
    ------
    DatasetError
        If a frame does not lie on a slice of the grid (other orientation, pixel spacing or rows/columns, or a
        position between slices), naming the file and the fix.
    """
    path = Path(path)
    dataset = read_full(path)
    frames = dataset.pixel_array
    if frames.ndim == 2:
        frames = frames[None]
    seg_type = text(dataset, "SegmentationType").upper()
    shared = dataset.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in dataset else None
    names = {int(item.SegmentNumber): text(item, "SegmentLabel") or f"segment {int(item.SegmentNumber)}"
             for item in dataset.SegmentSequence if int(item.SegmentNumber) != 0}  # LABELMAP describes background as 0
    masks = {number: np.zeros(shape, dtype=bool) for number in names}
    to_index = np.linalg.inv(geometry.direction_matrix * np.asarray(geometry.spacing))  # world (z, y, x) -> index
    expected_orientation = np.concatenate([geometry.direction_matrix[::-1, 2], geometry.direction_matrix[::-1, 1]])
    threshold = 0.5 * float(dataset.get("MaximumFractionalValue", 1)) if seg_type == "FRACTIONAL" else 0
    for index, (frame, group) in enumerate(zip(frames, dataset.PerFrameFunctionalGroupsSequence)):
        position = np.asarray(_attribute(group, shared, "PlanePositionSequence", "ImagePositionPatient"), float)
        orientation = np.asarray(_attribute(group, shared, "PlaneOrientationSequence", "ImageOrientationPatient"), float)
        spacing = np.asarray(_attribute(group, shared, "PixelMeasuresSequence", "PixelSpacing"), float)
        where = f"{path}: frame {index + 1}"
        if frame.shape != shape[1:] or np.max(np.abs(orientation - expected_orientation)) > ORIENTATION_ATOL or \
                not np.allclose(spacing, geometry.spacing[1:], rtol=1e-3):
            raise DatasetError(
                f"{where} is not on the image grid ({frame.shape} pixels of {spacing.tolist()} mm, orientation "
                f"{orientation.round(4).tolist()}; the image has {shape[1:]} of {list(geometry.spacing[1:])} mm); pair the "
                "Segmentation with the series it was drawn on"
            )
        continuous = to_index @ (position[::-1] - np.asarray(geometry.origin))
        slice_index = int(round(continuous[0]))
        if np.max(np.abs(continuous - [slice_index, 0, 0])) > GRID_TOLERANCE_FRACTION or not 0 <= slice_index < shape[0]:
            raise DatasetError(
                f"{where} at {position.round(3).tolist()} mm lies on no slice of the image (index "
                f"{continuous.round(3).tolist()}); pair the Segmentation with the series it was drawn on"
            )
        if seg_type == "LABELMAP":
            for number in np.unique(frame):
                if int(number) in masks:
                    masks[int(number)][slice_index] |= frame == number
        else:
            number = int(_attribute(group, shared, "SegmentIdentificationSequence", "ReferencedSegmentNumber"))
            masks[number][slice_index] |= frame > threshold
    return SegmentMasks(names, masks)


def _attribute(group: Any, shared: Any, sequence: str, keyword: str) -> Any:
    value = functional_group_value(group, shared, sequence, keyword)
    if value is None:
        raise DatasetError(f"the Segmentation has no {keyword}; it cannot be placed on the image")
    return value