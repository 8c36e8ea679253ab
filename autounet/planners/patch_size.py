"""Patch size: start large with the spacing's aspect ratio, clip to the median image, shrink until memory fits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autounet.errors import PlansError
from autounet.planners.memory import REFERENCE_MEMORY_GB, estimate_memory, fits_memory
from autounet.planners.topology import (
    BASE_FEATURES,
    MIN_FEATURE_MAP_SIZE,
    SINGLE_AXIS_POOL_FACTOR,
    SPACING_RATIO_FOR_POOLING,
    NetworkTopology,
    plan_convs_per_stage,
    plan_features_per_stage,
    plan_topology,
)

#: Starting patch volume: as many voxels as 256^3 (3D) or 2048^2 (2D), surely more than fits (nnU-Net's
#: ``get_plans_for_configuration``); the memory loop then shrinks it.
INITIAL_PATCH_VOXELS_3D = 256**3
INITIAL_PATCH_VOXELS_2D = 2048**2

#: The patch loop makes this many samples fit the budget (nnU-Net's ``UNet_min_batch_size``).
PATCH_PLANNING_BATCH_SIZE = 2

#: Safety stop of the shrinking loop (a 256^3 patch needs well under 200 steps).
MAX_SHRINK_STEPS = 10_000


@dataclass(frozen=True)
class PatchPlan:
    """The result of :func:`plan_patch_size`: the patch, its network topology and its memory estimate.

    ``initial_patch_size`` is the aspect-ratio patch before clipping, ``clipped_patch_size`` after clipping to
    the median image (and any enlargement of tiny images), ``rounded_patch_size`` that patch rounded up to its
    network's total stride (before any shrinking), ``shrink_steps`` the number of reductions.
    """

    patch_size: tuple[int, ...]
    topology: NetworkTopology
    features_per_stage: tuple[int, ...]
    n_conv_per_stage: tuple[int, ...]
    n_conv_per_stage_decoder: tuple[int, ...]
    memory_estimate: float
    initial_patch_size: tuple[int, ...]
    clipped_patch_size: tuple[float, ...]
    shrink_steps: int
    enlarged_axes: tuple[int, ...] = ()
    rounded_patch_size: tuple[int, ...] = ()


def initial_patch_size(spacing: Sequence[float], median_shape: Sequence[float]) -> tuple[float, ...]:
    """Starting patch: the ``1 / spacing`` aspect ratio at 256^3 (3D) or 2048^2 (2D) voxels, clipped to the median.

    Rule: a patch covering the same physical extent along every axis with as many voxels as 256^3 (2048^2 in
    2D), each axis then clipped to the median image shape (nnU-Net v2; v1 did not clip).

    Parameters
    ----------
    spacing : sequence of float
        Target spacing in mm, plans axis order.
    median_shape : sequence of float
        Median image shape at that spacing.

    Returns
    -------
    tuple of int or float
        Voxels per axis; an axis clipped to a fractional median stays fractional (rounded up later).

    Examples
    --------
    >>> initial_patch_size((1.0, 1.0, 1.0), (36, 50.5, 35))
    (36, 50.5, 35)
    >>> initial_patch_size((2.5, 0.8, 0.8), (93, 512, 512))
    (93, 374, 374)
    """
    _, clipped = _initial_and_clipped(spacing, median_shape)
    return clipped


def _initial_and_clipped(spacing: Sequence[float], median_shape: Sequence[float]) -> tuple[tuple[int, ...], tuple[float, ...]]:
    inverse = 1 / np.asarray(spacing, dtype=float)
    ndim = len(inverse)
    voxels = INITIAL_PATCH_VOXELS_3D if ndim == 3 else INITIAL_PATCH_VOXELS_2D
    initial = tuple(int(round(float(v))) for v in inverse * (voxels / np.prod(inverse)) ** (1 / ndim))
    # A fractional median (50.5 voxels) is kept; the topology rounds it up to whole, divisible voxels.
    clipped = tuple(i if i <= m else _whole_if_integral(m) for i, m in zip(initial, median_shape))
    return initial, clipped


def _whole_if_integral(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def enlarge_tiny_patch(
    patch_size: Sequence[float], spacing: Sequence[float], min_feature_map_size: int = MIN_FEATURE_MAP_SIZE
) -> tuple[float, ...]:
    """Grow a patch too small for a single pooling so the U-Net has at least two stages.

    Rule: if no axis can be pooled, the axes within 2x of the finest spacing grow to ``2 * min_feature_map_size``
    voxels (8), or to ``3 * min_feature_map_size`` (12) when only one axis qualifies. Images smaller than the
    patch are padded when patches are sampled. (nnU-Net would plan a one-stage network, which has no decoder.)

    Examples
    --------
    >>> enlarge_tiny_patch((5, 6, 6), (1.0, 1.0, 1.0))
    (8, 8, 8)
    >>> enlarge_tiny_patch((3, 6, 6), (5.0, 1.0, 1.0))
    (3, 8, 8)
    >>> enlarge_tiny_patch((36, 50, 35), (1.0, 1.0, 1.0))
    (36, 50, 35)
    """
    if plan_topology(spacing, patch_size, min_feature_map_size).n_stages >= 2:
        return tuple(patch_size)
    finest = min(spacing)
    axes = [axis for axis, s in enumerate(spacing) if s / finest < SPACING_RATIO_FOR_POOLING]
    target = (2 if len(axes) > 1 else SINGLE_AXIS_POOL_FACTOR) * min_feature_map_size
    return tuple(max(p, target) if axis in axes else p for axis, p in enumerate(patch_size))


def axis_to_shrink(patch_size: Sequence[int], median_shape: Sequence[float]) -> int:
    """The axis the memory loop shrinks next: the one largest relative to the median image.

    Ties go to the last such axis (like nnU-Net's ``np.argsort(...)[-1]``).

    Examples
    --------
    >>> axis_to_shrink((80, 192, 160), (115, 320, 232))
    0
    >>> axis_to_shrink((64, 64, 64), (64, 64, 64))
    2
    """
    ratios = [p / m for p, m in zip(patch_size, median_shape)]
    return int(np.argsort(ratios, kind="stable")[-1])


def shrink_patch_once(
    patch_size: Sequence[int],
    spacing: Sequence[float],
    median_shape: Sequence[float],
    shape_divisor: Sequence[int],
    min_feature_map_size: int = MIN_FEATURE_MAP_SIZE,
) -> tuple[int, ...]:
    """One step of the memory loop: reduce the axis largest relative to the median image by its stride.

    Rule: take away one total-stride unit of the chosen axis, recompute the topology of that smaller patch and
    take away *its* unit instead (so sizes such as 224 = 7 * 32 are not skipped when the stride drops from 64
    to 32). The caller recomputes the topology, which rounds the patch up again if needed.

    Examples
    --------
    >>> shrink_patch_once((128, 128, 128), (1.0, 1.0, 1.0), (200, 200, 200), (32, 32, 32))
    (128, 128, 112)
    """
    axis = axis_to_shrink(patch_size, median_shape)
    trial = [int(p) for p in patch_size]
    trial[axis] -= int(shape_divisor[axis])
    if trial[axis] < 1:
        return tuple(trial)
    divisor = plan_topology(spacing, trial, min_feature_map_size).shape_divisor
    shrunk = [int(p) for p in patch_size]
    shrunk[axis] -= int(divisor[axis])
    return tuple(shrunk)


def plan_patch_size(
    spacing: Sequence[float],
    median_shape: Sequence[float],
    memory_budget_gb: float = REFERENCE_MEMORY_GB,
    *,
    network: str = "unet",
    num_classes: int = 2,
    batch_size: int = PATCH_PLANNING_BATCH_SIZE,
    base_features: int = BASE_FEATURES,
    network_kwargs: Mapping[str, Any] | None = None,
    min_feature_map_size: int = MIN_FEATURE_MAP_SIZE,
) -> PatchPlan:
    """The largest patch (with the spacing's aspect ratio) whose network fits the memory budget.

    Rule: start from :func:`initial_patch_size`, grow it if it is too small for one pooling
    (:func:`enlarge_tiny_patch`), plan the topology (which rounds the patch up to its total stride), then while
    ``batch_size`` samples do not fit :func:`~autounet.planners.memory.fits_memory`, shrink the axis largest
    relative to the median image (:func:`shrink_patch_once`) and re-plan the topology.

    Parameters
    ----------
    spacing : sequence of float
        Target spacing (mm), plans axis order, 2 or 3 axes.
    median_shape : sequence of float
        Median image shape at that spacing.
    memory_budget_gb : float
        GPU memory to plan for.
    network : str
        Network family (selects the memory estimate).
    num_classes : int
        Output channels of the network.
    batch_size : int
        Samples that must fit the budget together (2, the minimum batch size; a larger batch override asks for
        a smaller patch).
    base_features : int
        Features of the first stage.
    network_kwargs : mapping, optional
        Family-specific arguments passed to the memory estimate.
    min_feature_map_size : int
        Smallest bottleneck edge in voxels.

    Returns
    -------
    PatchPlan

    Raises
    ------
    PlansError
        If even the smallest patch with one pooling does not fit the budget.

    Notes
    -----
    nnU-Net v2 ``ExperimentPlanner.get_plans_for_configuration``.

    Examples
    --------
    >>> plan = plan_patch_size((1.0, 1.0, 1.0), (36, 50, 35), num_classes=3)
    >>> plan.patch_size, plan.topology.n_stages, plan.memory_estimate
    ((40, 56, 40), 4, 19174400.0)
    >>> plan_patch_size((1.25, 1.25), (320, 232)).patch_size
    (320, 256)
    """
    if batch_size < 1:
        raise PlansError(f"batch_size must be at least 1, got {batch_size}")
    initial, clipped = _initial_and_clipped(spacing, median_shape)
    enlarged = enlarge_tiny_patch(clipped, spacing, min_feature_map_size)
    topology = plan_topology(spacing, enlarged, min_feature_map_size)
    rounded = topology.patch_size
    estimate = _estimate(network, topology, num_classes, base_features, network_kwargs)
    ndim = len(spacing)
    steps = 0
    while not fits_memory(estimate, batch_size, ndim, memory_budget_gb):
        smaller = shrink_patch_once(topology.patch_size, spacing, median_shape, topology.shape_divisor, min_feature_map_size)
        candidate = plan_topology(spacing, [max(p, 1) for p in smaller], min_feature_map_size) if min(smaller) >= 1 else None
        if candidate is None or candidate.n_stages < 2 or steps >= MAX_SHRINK_STEPS:
            raise PlansError(
                f"even a {list(topology.patch_size)} patch needs more than {memory_budget_gb:g} GB for {batch_size} "
                f"samples (estimate {estimate:.3g} per sample); raise --gpu-memory or lower --batch-size"
            )
        topology = candidate
        estimate = _estimate(network, topology, num_classes, base_features, network_kwargs)
        steps += 1
    features = plan_features_per_stage(topology.n_stages, ndim, base_features)
    n_conv, n_conv_decoder = plan_convs_per_stage(topology.n_stages)
    return PatchPlan(
        patch_size=topology.patch_size,
        topology=topology,
        features_per_stage=features,
        n_conv_per_stage=n_conv,
        n_conv_per_stage_decoder=n_conv_decoder,
        memory_estimate=estimate,
        initial_patch_size=initial,
        clipped_patch_size=enlarged,
        shrink_steps=steps,
        enlarged_axes=tuple(axis for axis, (a, b) in enumerate(zip(clipped, enlarged)) if a != b),
        rounded_patch_size=rounded,
    )


def _estimate(
    network: str, topology: NetworkTopology, num_classes: int, base_features: int, network_kwargs: Mapping[str, Any] | None
) -> float:
    ndim = len(topology.patch_size)
    features = plan_features_per_stage(topology.n_stages, ndim, base_features)
    n_conv, n_conv_decoder = plan_convs_per_stage(topology.n_stages)
    return estimate_memory(
        network, topology.patch_size, features, topology.strides, n_conv, n_conv_decoder, num_classes, network_kwargs
    )


def estimate_topology_memory(
    topology: NetworkTopology,
    network: str = "unet",
    num_classes: int = 2,
    base_features: int = BASE_FEATURES,
    network_kwargs: Mapping[str, Any] | None = None,
) -> float:
    """Memory estimate of one sample for the network a topology describes (with the default features and convs).

    Examples
    --------
    >>> estimate_topology_memory(plan_topology((1.0, 1.0, 1.0), (40, 56, 40)), num_classes=3)
    19174400.0
    """
    return _estimate(network, topology, num_classes, base_features, network_kwargs)
