"""Fast resampling: the spline of :func:`scipy.ndimage.zoom` evaluated one axis at a time, in float32.

A tensor-product B-spline is separable, so resampling a 3D volume with a cubic spline needs 4 taps per
axis (12 multiply-adds per voxel) instead of the 64 that ``ndimage.zoom`` spends, and the prefilter is
the same 1D recursive filter. The coordinates, the edge handling (``mode="nearest"``, with the 12-voxel
pre-padding SciPy applies before prefiltering) and the half-voxel grid (``grid_mode=True``) are those of
the reference, so results agree to float32 rounding. Label maps are interpolated one label at a time
inside each label's bounding box, and the largest label (usually background) is never interpolated: linear
and spline weights sum to one, so its value is ``1 - sum(others)``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

#: Voxels of edge padding before the spline prefilter, as ``scipy.ndimage`` does for ``mode="nearest"``
#: (``_prepad_for_spline_filter``); the filter's boundary influence decays as 0.268**12 < 2e-7.
SPLINE_PAD = 12

#: Interpolated label values closer than this count as a tie (float32 sums of up to 8 products carry ~1e-6
#: of rounding); ties go to the smaller label value, like an arg-max over labels in ascending order.
TIE_TOLERANCE = 1e-5

SUPPORTED_ORDERS = (0, 1, 3)


def source_coordinates(n_in: int, n_out: int) -> np.ndarray:
    """Input coordinate sampled by each output voxel (voxel centres aligned, SciPy's ``grid_mode=True``).

    Examples
    --------
    >>> source_coordinates(2, 4)
    array([-0.25,  0.25,  0.75,  1.25])
    """
    return (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Input index per output voxel for nearest-neighbour resampling (SciPy's order 0: round half up).

    Examples
    --------
    >>> nearest_indices(3, 6)
    array([0, 0, 1, 1, 2, 2])
    """
    return np.clip(np.floor(source_coordinates(n_in, n_out) + 0.5).astype(np.intp), 0, n_in - 1)


def axis_weights(n_in: int, n_out: int, order: int, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Input indices and weights, each of shape (taps, n_out), to resample one axis.

    Parameters
    ----------
    n_in, n_out : int
        Axis length before and after.
    order : {0, 1, 3}
        Nearest, linear or cubic B-spline (the latter on prefiltered coefficients).
    pad : int
        Voxels of padding on each side of the input (indices are shifted by it).

    Examples
    --------
    >>> idx, w = axis_weights(2, 4, 1)
    >>> idx
    array([[0, 0, 0, 0],
           [1, 1, 1, 1]])
    >>> w
    array([[1.  , 0.75, 0.25, 0.  ],
           [0.  , 0.25, 0.75, 1.  ]], dtype=float32)
    """
    if order == 0:
        return nearest_indices(n_in, n_out)[None] + pad, np.ones((1, n_out), dtype=np.float32)
    x = source_coordinates(n_in, n_out)
    if order == 1:
        x = np.clip(x, 0, n_in - 1)  # "nearest" edges: beyond the last centre the value stays constant
        start = np.minimum(np.floor(x), max(n_in - 2, 0))
        t = x - start
        index = np.stack([start, start + 1]).astype(np.intp)
        weights = np.stack([1 - t, t])
        return np.minimum(index, n_in - 1) + pad, weights.astype(np.float32)
    if order == 3:
        x = x + pad
        start = np.floor(x)
        t = x - start
        index = np.stack([start - 1, start, start + 1, start + 2]).astype(np.intp)
        weights = np.stack(
            [(1 - t) ** 3, 3 * t**3 - 6 * t**2 + 4, -3 * t**3 + 3 * t**2 + 3 * t + 1, t**3]
        ) / 6.0
        return np.clip(index, 0, n_in + 2 * pad - 1), weights.astype(np.float32)
    raise ValueError(f"interpolation order {order} is not supported by the separable backend; use one of {SUPPORTED_ORDERS}")


def _apply_axis(array: np.ndarray, axis: int, index: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_k weights[k] * array.take(index[k], axis)`` with one temporary buffer."""
    if index.shape[0] == 1:
        return np.take(array, index[0], axis=axis)
    shape = [1] * array.ndim
    shape[axis] = -1
    out = np.take(array, index[0], axis=axis)
    out *= weights[0].reshape(shape)
    buffer = np.empty_like(out)
    for k in range(1, index.shape[0]):
        np.take(array, index[k], axis=axis, out=buffer)
        buffer *= weights[k].reshape(shape)
        out += buffer
    return out


def resample(array: np.ndarray, new_shape: Sequence[int], orders: Sequence[int]) -> np.ndarray:
    """Resample a spatial array with an interpolation order per axis, like ``ndimage.zoom`` per axis.

    Parameters
    ----------
    array : ndarray, shape ``spatial``
    new_shape : sequence of int
    orders : sequence of {0, 1, 3}
        Order per axis.

    Returns
    -------
    ndarray of float32, shape ``new_shape`` (not clipped: a cubic spline may overshoot slightly)

    Examples
    --------
    >>> resample(np.array([[0.0, 1.0]]), (1, 4), (1, 1))
    array([[0.  , 0.25, 0.75, 1.  ]], dtype=float32)
    """
    new_shape = tuple(int(s) for s in new_shape)
    coefficients = np.asarray(array, dtype=np.float32)
    changed = [axis for axis in range(coefficients.ndim) if coefficients.shape[axis] != new_shape[axis]]
    if not changed:
        return coefficients.copy()
    spline_axes = [axis for axis in changed if orders[axis] >= 2]
    if spline_axes:
        padding = [(SPLINE_PAD, SPLINE_PAD) if axis in spline_axes else (0, 0) for axis in range(coefficients.ndim)]
        coefficients = np.pad(coefficients, padding, mode="edge")
        for axis in spline_axes:
            coefficients = ndimage.spline_filter1d(coefficients, orders[axis], axis=axis, output=np.float32, mode="mirror")
    # Shrinking axes first keeps the intermediate arrays small.
    for axis in sorted(changed, key=lambda a: new_shape[a] / array.shape[a]):
        pad = SPLINE_PAD if axis in spline_axes else 0
        index, weights = axis_weights(array.shape[axis], new_shape[axis], orders[axis], pad)
        coefficients = _apply_axis(coefficients, axis, index, weights)
    return coefficients


def resample_labels(seg: np.ndarray, new_shape: Sequence[int], orders: Sequence[int]) -> np.ndarray:
    """Per-label interpolation and arg-max, computed inside each label's bounding box.

    Parameters
    ----------
    seg : ndarray of int, shape ``spatial``
    new_shape : sequence of int
    orders : sequence of {0, 1, 3}
        Order per axis (order 3 disables the bounding-box restriction: the spline prefilter is global).

    Returns
    -------
    ndarray of ``seg.dtype``, shape ``new_shape``; every value is one of the input values.
    """
    new_shape = tuple(int(s) for s in new_shape)
    present = _label_boxes(seg)
    if len(present) == 1:
        return np.full(new_shape, present[0][0], dtype=seg.dtype)
    # The label with the largest box (background, as a rule) is implicit: 1 - sum of the others.
    implicit = max(present, key=lambda item: (_box_volume(item[1]), -item[0]))[0]
    best = np.zeros(new_shape, dtype=np.float32)
    total = np.zeros(new_shape, dtype=np.float32)
    out = np.full(new_shape, implicit, dtype=seg.dtype)
    local = all(order <= 1 for order in orders)
    plans = [
        axis_weights(seg.shape[axis], new_shape[axis], orders[axis]) if local and seg.shape[axis] != new_shape[axis] else None
        for axis in range(seg.ndim)
    ]
    for value, box in present:
        if value == implicit:
            continue
        if local:
            region = _label_region(box, plans, seg.shape)
            if region is None:
                continue  # the label falls between the sampled positions of a strong down-sampling
            in_slices, out_slices, axis_plans = region
        else:
            in_slices = out_slices = tuple(slice(None) for _ in new_shape)
        interpolated = (seg[in_slices] == value).astype(np.float32)
        if local:
            for axis in sorted((a for a, p in enumerate(axis_plans) if p is not None), key=lambda a: new_shape[a] / seg.shape[a]):
                index, weights = axis_plans[axis]  # type: ignore[misc]  # not None: filtered above
                interpolated = _apply_axis(interpolated, axis, index, weights)
        else:
            interpolated = resample(interpolated, new_shape, orders)
        current = best[out_slices]
        wins = interpolated > current + np.float32(TIE_TOLERANCE)
        np.copyto(current, interpolated, where=wins)
        np.copyto(out[out_slices], value, where=wins, casting="unsafe")
        total[out_slices] += interpolated
    # The implicit label's value is 1 - total; it wins where it is larger, or tied and the smaller value.
    implicit_value = np.subtract(np.float32(1.0), total, out=total)
    best -= np.float32(TIE_TOLERANCE)
    implicit_wins = implicit_value >= best
    if present[0][0] < implicit:  # a smaller label value (e.g. -1) may hold a tie: it keeps it
        best += np.float32(2 * TIE_TOLERANCE)
        implicit_wins &= (implicit_value > best) | (out > implicit)
    np.copyto(out, implicit, where=implicit_wins, casting="unsafe")
    return out


def _label_boxes(seg: np.ndarray) -> list[tuple[int, tuple[slice, ...]]]:
    """``(value, bounding-box slices)`` of every value present, in ascending order, in one pass."""
    low, high = int(seg.min()), int(seg.max())
    shifted_dtype = np.int16 if high - low + 1 < np.iinfo(np.int16).max else np.int32
    shifted = seg.astype(shifted_dtype)
    np.subtract(shifted, low - 1, out=shifted, casting="unsafe")  # values start at 1: find_objects ignores 0
    boxes = ndimage.find_objects(shifted)
    return [(index + low, box) for index, box in enumerate(boxes) if box is not None]


def _box_volume(box: tuple[slice, ...]) -> int:
    return int(np.prod([s.stop - s.start for s in box]))


def _label_region(
    box: tuple[slice, ...], plans: list[tuple[np.ndarray, np.ndarray] | None], shape: tuple[int, ...]
) -> tuple[tuple[slice, ...], tuple[slice, ...], list[tuple[np.ndarray, np.ndarray] | None]] | None:
    """Input and output slices touched by a label inside ``box``, and the weights restricted to them."""
    in_slices: list[slice] = []
    out_slices: list[slice] = []
    restricted: list[tuple[np.ndarray, np.ndarray] | None] = []
    for axis, (span, plan) in enumerate(zip(box, plans)):
        if plan is None:  # axis unchanged: identity
            in_slices.append(span)
            out_slices.append(span)
            restricted.append(None)
            continue
        index, weights = plan
        touches = ((index >= span.start) & (index < span.stop) & (weights != 0)).any(axis=0)
        hits = np.flatnonzero(touches)
        if hits.size == 0:
            return None
        out_lo, out_hi = int(hits[0]), int(hits[-1]) + 1
        sub_index = index[:, out_lo:out_hi]
        in_lo, in_hi = int(sub_index.min()), int(sub_index.max()) + 1
        in_slices.append(slice(in_lo, in_hi))
        out_slices.append(slice(out_lo, out_hi))
        restricted.append((sub_index - in_lo, weights[:, out_lo:out_hi]))
    return tuple(in_slices), tuple(out_slices), restricted
