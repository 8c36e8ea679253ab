"""Crop to the non-zero region: shared by the fingerprint (to measure) and preprocessing (to apply)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def nonzero_mask(data: np.ndarray, fill_holes: bool = True) -> np.ndarray:
    """Voxels where any channel is non-zero, with enclosed holes filled.

    Parameters
    ----------
    data : ndarray of shape (C, *spatial)
    fill_holes : bool
        Fill holes fully enclosed by the mask (dark structures inside the body belong to it).

    Returns
    -------
    ndarray of bool, shape ``spatial``

    Examples
    --------
    >>> a = np.zeros((1, 1, 5, 5)); a[0, 0, 1:4, 1:4] = 1; a[0, 0, 2, 2] = 0
    >>> nonzero_mask(a)[0].astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    mask = np.any(data != 0, axis=0)
    if fill_holes and mask.any() and not mask.all():
        # Fill on the non-singleton axes only: in a (1, y, x) image every hole touches the array border
        # along z and would never count as enclosed.
        squeezed = mask.reshape([s for s in mask.shape if s > 1] or [1])
        mask = ndimage.binary_fill_holes(squeezed).reshape(mask.shape)
    return mask


def bounding_box(mask: np.ndarray) -> tuple[tuple[int, int], ...]:
    """Half-open ``(start, stop)`` per axis of the True voxels; the whole array if none is True.

    Holes do not change a bounding box, so callers that only need the box can skip filling them.

    Examples
    --------
    >>> m = np.zeros((4, 6), bool); m[1:3, 2:5] = True
    >>> bounding_box(m)
    ((1, 3), (2, 5))
    """
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(np.any(mask, axis=other)) if other else np.flatnonzero(mask)
        box.append((int(hits[0]), int(hits[-1]) + 1) if hits.size else (0, int(mask.shape[axis])))
    return tuple(box)


def crop_slices(box: tuple[tuple[int, int], ...]) -> tuple[slice, ...]:
    """``slice`` objects for a bounding box, to index spatial axes."""
    return tuple(slice(start, stop) for start, stop in box)


def box_shape(box: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    return tuple(stop - start for start, stop in box)
