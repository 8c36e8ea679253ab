"""Target spacing, axis transposition and the median image shape after resampling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from autounet.errors import PlansError

#: One axis is "anisotropic" when its spacing is more than this many times the others' and it has this many
#: times fewer voxels (nnU-Net's ``ANISO_THRESHOLD = 3`` in ``nnunetv2/configuration.py``).
ANISOTROPY_THRESHOLD = 3.0

#: Percentile of the coarse axis' spacings used as its target for anisotropic data (nnU-Net's
#: ``determine_fullres_target_spacing``): finer than the median so thin-slice cases are not blurred.
ANISOTROPIC_SPACING_PERCENTILE = 10.0

#: Added to the coarse-axis target when it would otherwise be finer than the other axes (nnU-Net's ``+ 1e-5``),
#: so the coarse axis stays the coarsest and keeps its place at the front after transposition.
COARSE_AXIS_MARGIN = 1e-5


def _as_matrix(values: Sequence[Sequence[float]] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 2 or array.shape[0] == 0:
        raise PlansError(f"{name} must be one row per case, shape (num_cases, 3); got shape {array.shape}")
    return array


def plan_target_spacing(
    spacings: Sequence[Sequence[float]] | np.ndarray,
    shapes: Sequence[Sequence[float]] | np.ndarray,
    anisotropy_threshold: float = ANISOTROPY_THRESHOLD,
) -> tuple[float, ...]:
    """Target spacing of the full-resolution configuration, in the input array axis order.

    Rule: the median spacing per axis. If one axis is strongly anisotropic, that is its median spacing is more
    than ``anisotropy_threshold`` times the largest other spacing *and* its median size in voxels times
    ``anisotropy_threshold`` is below the smallest other size, it takes the 10th percentile of its spacings
    instead (but never finer than the other axes).

    Parameters
    ----------
    spacings : array_like of shape (num_cases, ndim)
        Per case voxel spacing in mm, array axis order (z, y, x).
    shapes : array_like of shape (num_cases, ndim)
        Per case shape after cropping to the non-zero region, same axis order.
    anisotropy_threshold : float
        Ratio of spacings and of voxel counts beyond which an axis is treated as anisotropic.

    Returns
    -------
    tuple of float
        Target spacing in mm, one entry per axis, not transposed.

    Raises
    ------
    PlansError
        If the inputs are empty, have different numbers of cases or axes, or contain non-positive spacings.

    Notes
    -----
    nnU-Net v2 ``ExperimentPlanner.determine_fullres_target_spacing``. Using the median for the coarse axis of
    data such as ACDC (10 x 1.5 x 1.5 mm with some 5 mm cases) would blur the thin-slice cases.

    Examples
    --------
    >>> plan_target_spacing([[1.0, 0.8, 0.8], [3.0, 0.7, 0.7], [2.0, 0.9, 0.9]], [[100, 200, 200]] * 3)
    (2.0, 0.8, 0.8)

    Anisotropic data (5 mm slices, few of them) take the 10th percentile along the coarse axis:

    >>> plan_target_spacing([[5.0, 0.5, 0.5], [4.0, 0.5, 0.5], [6.0, 0.5, 0.5]], [[20, 300, 300]] * 3)
    (4.2, 0.5, 0.5)
    """
    spacing_matrix = _as_matrix(spacings, "spacings")
    shape_matrix = _as_matrix(shapes, "shapes")
    if spacing_matrix.shape != shape_matrix.shape:
        raise PlansError(
            f"spacings have shape {spacing_matrix.shape} but shapes have {shape_matrix.shape}; "
            "give one spacing and one shape per case with the same number of axes"
        )
    if np.any(spacing_matrix <= 0):
        raise PlansError("spacings must be positive (mm); check the image headers or the fingerprint file")
    target = np.percentile(spacing_matrix, 50, axis=0)
    median_size = np.percentile(shape_matrix, 50, axis=0)
    coarse_axis = int(np.argmax(target))
    other_axes = [axis for axis in range(len(target)) if axis != coarse_axis]
    if not other_axes:
        return tuple(float(s) for s in target)
    other_spacings = [target[axis] for axis in other_axes]
    other_sizes = [median_size[axis] for axis in other_axes]
    anisotropic_spacing = target[coarse_axis] > anisotropy_threshold * max(other_spacings)
    anisotropic_voxels = median_size[coarse_axis] * anisotropy_threshold < min(other_sizes)
    if anisotropic_spacing and anisotropic_voxels:
        coarse = float(np.percentile(spacing_matrix[:, coarse_axis], ANISOTROPIC_SPACING_PERCENTILE))
        if coarse < max(other_spacings):
            coarse = max(max(other_spacings), coarse) + COARSE_AXIS_MARGIN
        target[coarse_axis] = coarse
    return tuple(float(s) for s in target)


def is_anisotropic(spacing: Sequence[float], anisotropy_threshold: float = ANISOTROPY_THRESHOLD) -> bool:
    """Whether the coarsest axis is more than ``anisotropy_threshold`` times the finest.

    Examples
    --------
    >>> is_anisotropic((3.0, 0.7, 0.7)), is_anisotropic((1.0, 0.8, 0.8))
    (True, False)
    """
    return max(spacing) > anisotropy_threshold * min(spacing)


def plan_transpose(target_spacing: Sequence[float], is_2d: bool = False) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Axis order that puts the coarsest axis first, and its inverse.

    Rule: the axis with the largest target spacing moves to the front; the others keep their order. 2D data
    (stored as ``(1, y, x)``) and 2-axis spacings are never transposed.

    Parameters
    ----------
    target_spacing : sequence of float
        Target spacing in the input array axis order.
    is_2d : bool
        True for 2D data, which keeps the identity order.

    Returns
    -------
    transpose_forward, transpose_backward : tuple of int
        ``array.transpose(transpose_forward)`` brings data into plans order; ``transpose_backward`` undoes it.

    Notes
    -----
    nnU-Net v2 ``ExperimentPlanner.determine_transpose``. The 2D configuration then slices along the coarse axis.

    Examples
    --------
    >>> plan_transpose((0.8, 0.8, 2.5))
    ((2, 0, 1), (1, 2, 0))
    >>> plan_transpose((3.0, 0.5, 0.5))
    ((0, 1, 2), (0, 1, 2))
    """
    ndim = len(target_spacing)
    if is_2d or ndim != 3:
        identity = tuple(range(ndim))
        return identity, identity
    coarse_axis = int(np.argmax(target_spacing))
    forward = (coarse_axis, *[axis for axis in range(ndim) if axis != coarse_axis])
    backward = tuple(forward.index(axis) for axis in range(ndim))
    return forward, backward


def transpose_values(values: Sequence[float], order: Sequence[int]) -> tuple[float, ...]:
    """Reorder per-axis values (spacing, shape) by ``order``.

    Examples
    --------
    >>> transpose_values((0.8, 0.7, 2.5), (2, 0, 1))
    (2.5, 0.8, 0.7)
    """
    return tuple(values[axis] for axis in order)


def resampled_shape(shape: Sequence[float], spacing: Sequence[float], target_spacing: Sequence[float]) -> tuple[int, ...]:
    """Shape of an image after resampling from ``spacing`` to ``target_spacing`` (rounded per axis).

    Examples
    --------
    >>> resampled_shape((100, 200, 200), (2.0, 0.5, 0.5), (1.0, 1.0, 1.0))
    (200, 100, 100)
    """
    return tuple(int(round(old / new * size)) for old, new, size in zip(spacing, target_spacing, shape))


def median_resampled_shape(
    spacings: Sequence[Sequence[float]] | np.ndarray,
    shapes: Sequence[Sequence[float]] | np.ndarray,
    target_spacing: Sequence[float],
) -> tuple[float, ...]:
    """Median per axis of the case shapes after resampling each case to ``target_spacing``.

    Parameters
    ----------
    spacings, shapes : array_like of shape (num_cases, ndim)
        Per case spacing (mm) and shape after cropping, array axis order.
    target_spacing : sequence of float
        The target spacing, same axis order.

    Returns
    -------
    tuple of float
        Median resampled shape (not transposed).

    Examples
    --------
    >>> median_resampled_shape([[1, 1, 1], [2, 1, 1], [1, 1, 1]], [[10, 20, 20], [10, 30, 30], [12, 24, 24]], (1, 1, 1))
    (12.0, 24.0, 24.0)
    """
    spacing_matrix = _as_matrix(spacings, "spacings")
    shape_matrix = _as_matrix(shapes, "shapes")
    new_shapes = [resampled_shape(shape, spacing, target_spacing) for spacing, shape in zip(spacing_matrix, shape_matrix)]
    return tuple(float(s) for s in np.median(np.array(new_shapes, dtype=float), axis=0))
