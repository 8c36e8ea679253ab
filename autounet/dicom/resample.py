"""Resample unevenly spaced or sheared (gantry-tilted) slices onto a regular grid, only when the user asks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from autounet.io import Geometry

if TYPE_CHECKING:
    from autounet.dicom.slices import SliceStack


def regularise(data: np.ndarray, stack: "SliceStack") -> tuple[np.ndarray, Geometry]:
    """Resample slices ``(n, y, x)`` onto the regular grid ``stack.geometry`` describes.

    Each slice is first moved sideways onto the axis through the first slice (undoing a gantry tilt's shear,
    linear interpolation in the plane), then the volume is interpolated linearly along the normal at evenly
    spaced depths (``stack.geometry.spacing[0]`` apart, from the first to the last slice).

    Parameters
    ----------
    data : ndarray of shape (n, y, x)
        The slices in volume order, as decoded.
    stack : SliceStack
        From :func:`~autounet.dicom.slices.build_stack` with ``regular`` False.

    Returns
    -------
    data : ndarray of shape (m, y, x), float32
    geometry : Geometry
        The regular grid (same origin, orientation and in-plane spacing).
    """
    assert stack.depths_mm is not None and stack.offsets_mm is not None
    geometry = stack.geometry
    first = stack.slices[0]
    row_spacing, column_spacing = first.pixel_spacing
    moved = np.empty(data.shape, dtype=np.float32)
    for index, offset in enumerate(stack.offsets_mm):
        shift_rows = float(np.dot(offset, first.column_cosine)) / row_spacing
        shift_columns = float(np.dot(offset, first.row_cosine)) / column_spacing
        if abs(shift_rows) < 1e-6 and abs(shift_columns) < 1e-6:
            moved[index] = data[index]
        else:
            moved[index] = ndimage.shift(data[index].astype(np.float32), (shift_rows, shift_columns), order=1, mode="nearest")
    step = geometry.spacing[0]
    depths = stack.depths_mm
    count = int(round(depths[-1] / step)) + 1
    targets = np.clip(np.arange(count) * step, depths[0], depths[-1])
    upper = np.clip(np.searchsorted(depths, targets, side="right"), 1, len(depths) - 1)
    lower = upper - 1
    weight = ((targets - depths[lower]) / (depths[upper] - depths[lower])).astype(np.float32)[:, None, None]
    out = moved[lower] * (1 - weight) + moved[upper] * weight
    return out.astype(np.float32, copy=False), geometry
