"""Resample images, label maps and class probabilities to a target spacing, as nnU-Net does.

Images use a third-order spline, labels are resampled one label at a time with linear interpolation
followed by an arg-max (so no label value appears that was not there), and strongly anisotropic data
(coarsest / finest spacing above a threshold) is resampled in-plane first and along the coarse axis
separately, with nearest-neighbour by default.

Two backends compute the same thing:

``"reference"``
    :func:`scipy.ndimage.zoom` in float64 (what nnU-Net reaches through ``skimage.transform.resize``).
``"separable"``
    The fast path (:mod:`autounet.preprocessing.separable`): the same spline evaluated one axis at a
    time in float32, and label interpolation restricted to each label's bounding box. It agrees with the
    reference to about 1e-7 (see ``docs/preprocessing.md``) and is 5-7x faster on large volumes.

``"auto"`` picks the reference for small volumes and the separable path from :data:`FAST_PATH_MIN_VOXELS` on.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from scipy import ndimage

from autounet.planners.plans import ResamplingPlan
from autounet.preprocessing import separable

ResamplingBackend = Literal["auto", "reference", "separable"]
RESAMPLING_BACKENDS: tuple[str, ...] = ("auto", "reference", "separable")

#: From this many output voxels on, "auto" uses the separable path: below it the reference takes < ~50 ms,
#: so exact agreement with nnU-Net's resampling costs nothing worth saving.
FAST_PATH_MIN_VOXELS = 2**18

#: Interpolation order of class probabilities when mapping predictions back (nnU-Net:
#: ``resampling_fn_probabilities_kwargs = {"order": 1, "order_z": 0}``).
PROBABILITY_ORDER = 1


def compute_new_shape(shape: Sequence[int], spacing: Sequence[float], target_spacing: Sequence[float]) -> tuple[int, ...]:
    """Shape of an image of ``shape`` voxels at ``spacing`` after resampling to ``target_spacing``.

    Rule: ``round(shape * spacing / target_spacing)`` per axis (NumPy rounding, as nnU-Net's
    ``compute_new_shape``), at least 1.

    Examples
    --------
    >>> compute_new_shape((20, 100, 100), (5.0, 0.8, 0.8), (5.0, 1.0, 1.0))
    (20, 80, 80)
    >>> compute_new_shape((1, 33, 33), (999.0, 1.0, 1.0), (999.0, 2.0, 2.0))
    (1, 16, 16)
    """
    if not (len(shape) == len(spacing) == len(target_spacing)):
        raise ValueError(
            f"shape {tuple(shape)}, spacing {tuple(spacing)} and target spacing {tuple(target_spacing)} "
            "must have one entry per spatial axis"
        )
    ratio = np.asarray(spacing, dtype=float) / np.asarray(target_spacing, dtype=float)
    return tuple(int(max(1, s)) for s in np.round(ratio * np.asarray(shape, dtype=float)))


def separate_z_axis(
    current_spacing: Sequence[float], target_spacing: Sequence[float], anisotropy_threshold: float
) -> int | None:
    """The coarse axis to resample separately, or None to resample all axes together.

    Rule (nnU-Net ``determine_do_sep_z_and_axis``): if the current spacing is anisotropic (largest / smallest
    spacing above ``anisotropy_threshold``) its coarsest axis is separate; otherwise if the target spacing
    is, its coarsest axis. When two or more axes share the coarsest spacing nothing is separate.

    Examples
    --------
    >>> separate_z_axis((5.0, 0.7, 0.7), (5.0, 1.0, 1.0), 3.0)
    0
    >>> separate_z_axis((1.0, 1.0, 1.0), (1.5, 1.5, 1.5), 3.0) is None
    True
    >>> separate_z_axis((999.0, 1.0, 1.0), (999.0, 0.5, 0.5), 3.0)
    0
    """
    for candidate in (current_spacing, target_spacing):
        spacing = np.asarray(candidate, dtype=float)
        if spacing.max() / spacing.min() > anisotropy_threshold:
            coarse = np.flatnonzero(spacing == spacing.max())
            return int(coarse[0]) if coarse.size == 1 else None
    return None


def axis_orders(ndim: int, order: int, order_z: int, z_axis: int | None) -> tuple[int, ...]:
    """Interpolation order per axis: ``order`` everywhere except ``order_z`` along the separate axis.

    Examples
    --------
    >>> axis_orders(3, 3, 0, 0), axis_orders(3, 3, 0, None)
    ((0, 3, 3), (3, 3, 3))
    """
    return tuple(order_z if axis == z_axis else order for axis in range(ndim))


def resolve_backend(backend: str, num_voxels: int) -> str:
    """The backend ``"auto"`` stands for at this output size; other names are checked and returned.

    Examples
    --------
    >>> resolve_backend("auto", 1000), resolve_backend("auto", 10**7), resolve_backend("reference", 10**7)
    ('reference', 'separable', 'reference')
    """
    if backend not in RESAMPLING_BACKENDS:
        raise ValueError(f"unknown resampling backend {backend!r}; choose one of {', '.join(RESAMPLING_BACKENDS)}")
    if backend == "auto":
        return "separable" if num_voxels >= FAST_PATH_MIN_VOXELS else "reference"
    return backend


def resample_data(
    data: np.ndarray,
    new_shape: Sequence[int],
    current_spacing: Sequence[float],
    target_spacing: Sequence[float],
    plan: ResamplingPlan | None = None,
    backend: ResamplingBackend = "auto",
) -> np.ndarray:
    """Resample an image with a spline of ``plan.data_order`` (``plan.order_z`` along a separate coarse axis).

    Parameters
    ----------
    data : ndarray of shape (C, *spatial)
        Image; any real dtype.
    new_shape : sequence of int
        Output spatial shape (see :func:`compute_new_shape`).
    current_spacing, target_spacing : sequence of float
        Spacing (mm) per spatial axis before and after; they decide whether an axis is resampled separately.
    plan : ResamplingPlan, optional
        Orders and anisotropy threshold; nnU-Net's defaults when omitted.
    backend : {"auto", "reference", "separable"}

    Returns
    -------
    ndarray of float32, shape (C, *new_shape)
        Each channel clipped to its input range (as ``skimage.transform.resize`` does), so the spline adds
        no overshoot. ``data`` itself (as float32) when the shape does not change.
    """
    plan = plan or ResamplingPlan()
    new_shape = tuple(int(s) for s in new_shape)
    if tuple(data.shape[1:]) == new_shape:
        return data.astype(np.float32, copy=False)
    z_axis = separate_z_axis(current_spacing, target_spacing, plan.anisotropy_threshold)
    orders = axis_orders(len(new_shape), plan.data_order, plan.order_z, z_axis)
    chosen = resolve_backend(backend, int(np.prod(new_shape)))
    out = np.empty((data.shape[0], *new_shape), dtype=np.float32)
    for channel in range(data.shape[0]):
        out[channel] = _resample_array(data[channel], new_shape, orders, chosen)
        if max(orders) > 1 and data[channel].size:
            np.clip(out[channel], data[channel].min(), data[channel].max(), out=out[channel])
    return out


def resample_probabilities(
    probabilities: np.ndarray,
    new_shape: Sequence[int],
    current_spacing: Sequence[float],
    target_spacing: Sequence[float],
    plan: ResamplingPlan | None = None,
    backend: ResamplingBackend = "auto",
) -> np.ndarray:
    """Resample class probabilities (or logits) linearly, nearest along a separate coarse axis.

    Parameters
    ----------
    probabilities : ndarray of shape (C, *spatial)
    new_shape, current_spacing, target_spacing, plan, backend
        As in :func:`resample_data`; only ``plan.order_z`` and ``plan.anisotropy_threshold`` are used.

    Returns
    -------
    ndarray of float32, shape (C, *new_shape)
    """
    plan = plan or ResamplingPlan()
    new_shape = tuple(int(s) for s in new_shape)
    if tuple(probabilities.shape[1:]) == new_shape:
        return probabilities.astype(np.float32, copy=False)
    z_axis = separate_z_axis(current_spacing, target_spacing, plan.anisotropy_threshold)
    orders = axis_orders(len(new_shape), PROBABILITY_ORDER, plan.order_z, z_axis)
    chosen = resolve_backend(backend, int(np.prod(new_shape)))
    out = np.empty((probabilities.shape[0], *new_shape), dtype=np.float32)
    for channel in range(probabilities.shape[0]):
        out[channel] = _resample_array(probabilities[channel], new_shape, orders, chosen)
    return out


def resample_labels(
    seg: np.ndarray,
    new_shape: Sequence[int],
    current_spacing: Sequence[float],
    target_spacing: Sequence[float],
    plan: ResamplingPlan | None = None,
    backend: ResamplingBackend = "auto",
) -> np.ndarray:
    """Resample a label map so that every output value is one of the input values.

    Each label's one-hot mask is interpolated with ``plan.label_order`` (``plan.order_z`` along a separate
    coarse axis) and each voxel takes the label of the largest value; ties within
    :data:`~autounet.preprocessing.separable.TIE_TOLERANCE` go to the smaller label value. This equals
    nnU-Net's per-label resampling except that an arg-max replaces its ``>= 0.5`` threshold, so every voxel
    gets a label even where three or more labels meet.

    Parameters
    ----------
    seg : ndarray of int, shape ``spatial``
    new_shape, current_spacing, target_spacing, plan, backend
        As in :func:`resample_data`.

    Returns
    -------
    ndarray of ``seg.dtype``, shape ``new_shape``

    Examples
    --------
    >>> seg = np.array([[[0, 0, 2, 2, 5, 5]]], dtype=np.int8)
    >>> resample_labels(seg, (1, 1, 9), (1, 1, 1), (1, 1, 2 / 3))
    array([[[0, 0, 0, 2, 2, 2, 5, 5, 5]]], dtype=int8)
    """
    plan = plan or ResamplingPlan()
    new_shape = tuple(int(s) for s in new_shape)
    if tuple(seg.shape) == new_shape:
        return seg
    z_axis = separate_z_axis(current_spacing, target_spacing, plan.anisotropy_threshold)
    orders = axis_orders(len(new_shape), plan.label_order, plan.order_z, z_axis)
    chosen = resolve_backend(backend, int(np.prod(new_shape)))
    # Nearest-neighbour along an axis commutes with the per-voxel arg-max: apply it once to the result.
    nearest_axes = [axis for axis, order in enumerate(orders) if order == 0]
    smooth_shape = tuple(s if axis in nearest_axes else n for axis, (s, n) in enumerate(zip(seg.shape, new_shape)))
    smooth_orders = tuple(0 if axis in nearest_axes else order for axis, order in enumerate(orders))
    if smooth_shape != tuple(seg.shape):
        if chosen == "separable":
            seg = separable.resample_labels(seg, smooth_shape, smooth_orders)
        else:
            seg = _resample_labels_reference(seg, smooth_shape, smooth_orders)
    for axis in nearest_axes:
        if seg.shape[axis] != new_shape[axis]:
            seg = np.take(seg, separable.nearest_indices(seg.shape[axis], new_shape[axis]), axis=axis)
    return seg


def _resample_array(array: np.ndarray, new_shape: tuple[int, ...], orders: tuple[int, ...], backend: str) -> np.ndarray:
    """Resample one channel with an interpolation order per axis; returns float32."""
    if backend == "separable":
        return separable.resample(array, new_shape, orders)
    return _resample_reference(array, new_shape, orders).astype(np.float32)


def _zoom(array: np.ndarray, new_shape: Sequence[int], order: int) -> np.ndarray:
    """``skimage.transform.resize(..., mode="edge", anti_aliasing=False)`` without the clipping."""
    zoom = np.asarray(new_shape, dtype=float) / np.asarray(array.shape, dtype=float)
    return ndimage.zoom(array, zoom, order=order, mode="nearest", grid_mode=True, output=np.float64)


def _resample_reference(array: np.ndarray, new_shape: tuple[int, ...], orders: tuple[int, ...]) -> np.ndarray:
    """nnU-Net's ``resample_data_or_seg`` for one channel: all axes at once, or slice-wise then the coarse axis."""
    array = np.asarray(array, dtype=np.float64)
    distinct = set(orders)
    if len(distinct) == 1:
        return _zoom(array, new_shape, orders[0])
    z_axis = int(np.argmin(orders)) if len(distinct) == 2 and orders.count(min(orders)) == 1 else None
    if z_axis is None:
        raise ValueError(f"per-axis orders {orders} are not supported by the reference backend; use 'separable'")
    plane_shape = tuple(s for axis, s in enumerate(new_shape) if axis != z_axis)
    order = max(orders)
    slices = [
        _zoom(np.take(array, index, axis=z_axis), plane_shape, order) for index in range(array.shape[z_axis])
    ]
    stacked = np.stack(slices, axis=z_axis)
    if stacked.shape[z_axis] == new_shape[z_axis]:
        return stacked
    zoom = [1.0] * array.ndim
    zoom[z_axis] = new_shape[z_axis] / stacked.shape[z_axis]
    return ndimage.zoom(stacked, zoom, order=orders[z_axis], mode="nearest", grid_mode=True, output=np.float64)


def _resample_labels_reference(seg: np.ndarray, new_shape: tuple[int, ...], orders: tuple[int, ...]) -> np.ndarray:
    """Per-label interpolation in float64 with a running arg-max (lowest label wins exact ties)."""
    values = np.unique(seg)
    if values.size == 1:
        return np.full(new_shape, values[0], dtype=seg.dtype)
    best = np.full(new_shape, -np.inf)
    out = np.empty(new_shape, dtype=seg.dtype)
    for value in values:
        interpolated = _resample_reference((seg == value).astype(np.float64), new_shape, orders)
        wins = interpolated > best
        best[wins] = interpolated[wins]
        out[wins] = value
    return out
