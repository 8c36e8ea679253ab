"""Rasterise the closed planar contours of a DICOM RTSTRUCT onto the grid of its image series.

Contours are placed by their own world coordinates and the frame of reference, never by the SOP instance UIDs
they reference (exports that crop or re-number a series keep positions but not UIDs). Inside means the pixel
centre is inside the polygon (:func:`skimage.draw.polygon`); several contours of one ROI on one slice combine by
even-odd (exclusive or), so an inner contour is a hole, as the RTSTRUCT standard intends.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage.draw import polygon

from autounet.dicom.headers import read_full, text
from autounet.dicom.seg_reader import SegmentMasks
from autounet.dicom.slices import GRID_TOLERANCE_FRACTION
from autounet.errors import DatasetError
from autounet.io import Geometry
from autounet.typing import PathType


def rtstruct_frame_of_reference(dataset) -> list[str]:
    """FrameOfReferenceUIDs an RTSTRUCT's structure set refers to."""
    return [text(item, "FrameOfReferenceUID") for item in dataset.get("ReferencedFrameOfReferenceSequence", [])]


def read_rtstruct_masks(path: PathType, geometry: Geometry, shape: tuple[int, int, int], frame_of_reference: str) -> SegmentMasks:
    """One mask ``(z, y, x)`` per ROI of an RTSTRUCT, on an image grid.

    Parameters
    ----------
    path : str or Path
        The RTSTRUCT file.
    geometry : Geometry
        The image series' geometry.
    shape : tuple of int
        The image's spatial shape.
    frame_of_reference : str
        The image series' FrameOfReferenceUID; every ROI must be in it.

    Returns
    -------
    SegmentMasks
        Keyed by ROI number, named by ROIName. ROIs without closed planar contours are left out with a note.

    Raises
    ------
    DatasetError
        If the structure set is in another frame of reference, or a contour lies between slices or off the grid.
    """
    path = Path(path)
    dataset = read_full(path)
    rois = {int(item.ROINumber): (text(item, "ROIName") or f"ROI {int(item.ROINumber)}", text(item, "ReferencedFrameOfReferenceUID"))
            for item in dataset.get("StructureSetROISequence", [])}
    to_index = np.linalg.inv(geometry.direction_matrix * np.asarray(geometry.spacing))  # world (z, y, x) -> index
    origin = np.asarray(geometry.origin)
    result = SegmentMasks({}, {})
    for roi_contour in dataset.get("ROIContourSequence", []):
        number = int(roi_contour.ReferencedROINumber)
        name, roi_frame = rois.get(number, (f"ROI {number}", ""))
        if roi_frame and frame_of_reference and roi_frame != frame_of_reference:
            raise DatasetError(
                f"{path}: ROI {name!r} is in frame of reference {roi_frame}, the image series in {frame_of_reference}; "
                "pair the RTSTRUCT with the series it was drawn on"
            )
        mask = np.zeros(shape, dtype=bool)
        skipped = 0
        for contour in roi_contour.get("ContourSequence", []):
            if text(contour, "ContourGeometricType").upper() != "CLOSED_PLANAR":
                skipped += 1
                continue
            points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
            index = (to_index @ (points[:, ::-1] - origin).T).T  # (n, 3) continuous (z, y, x) indices
            slice_index = int(round(float(np.mean(index[:, 0]))))
            if np.max(np.abs(index[:, 0] - slice_index)) > GRID_TOLERANCE_FRACTION or not 0 <= slice_index < shape[0]:
                raise DatasetError(
                    f"{path}: a contour of ROI {name!r} at z index {np.mean(index[:, 0]):.3f} lies on no slice of the image "
                    f"(0..{shape[0] - 1}); pair the RTSTRUCT with the series it was drawn on, or resample it"
                )
            rows, columns = polygon(index[:, 1], index[:, 2], shape=shape[1:])
            mask[slice_index, rows, columns] ^= True
        if skipped:
            result.notes.append(f"ROI {name!r}: {skipped} contour(s) that are not CLOSED_PLANAR ignored")
        if not mask.any() and not roi_contour.get("ContourSequence"):
            result.notes.append(f"ROI {name!r} has no contours")
        result.names[number] = name
        result.masks[number] = mask
    if not result.names:
        raise DatasetError(f"{path}: the RTSTRUCT holds no ROI contours; export the structure set with its contours")
    return result
