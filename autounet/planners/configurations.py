"""Which configurations exist: 2D from the in-plane axes, 3D full resolution, and 3D low resolution + cascade."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from autounet.planners.patch_size import PatchPlan

#: A 3D low-resolution stage is added when the full-resolution patch covers less than this fraction of the
#: median image's voxels (nnU-Net's ``lowres_creation_threshold``).
LOWRES_PATCH_COVERAGE = 0.25

#: Growth of the low-resolution spacing per search step (nnU-Net's ``spacing_increase_factor``; v1 used 1.01).
LOWRES_SPACING_GROWTH = 1.03

#: Axes finer than the coarsest by more than this factor grow first (nnU-Net: "start with the anisotropic axes").
LOWRES_ANISOTROPY_FACTOR = 2.0

#: The low-resolution median image must have at least this many times fewer voxels than full resolution,
#: otherwise the stage is dropped as too similar to 3d_fullres (nnU-Net ``plan_experiment``).
LOWRES_MIN_SHRINK = 2.0

#: Safety stop of the spacing search (1.03 ** 500 is a 2.6 million-fold spacing).
MAX_LOWRES_STEPS = 500


def is_3d_dataset(median_shape: Sequence[float], is_2d: bool = False) -> bool:
    """Whether 3D configurations are planned: not for 2D data, whose median shape is ``(1, y, x)``.

    Examples
    --------
    >>> is_3d_dataset((36, 50, 35)), is_3d_dataset((1, 512, 512)), is_3d_dataset((40, 64, 64), is_2d=True)
    (True, False, False)
    """
    return not is_2d and float(median_shape[0]) != 1


def plan_2d_geometry(spacing: Sequence[float], median_shape: Sequence[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Spacing and median shape of the 2D configuration: the in-plane axes after transposition.

    Rule: the 2D network sees slices along the first (coarsest, after transposition) axis, so it keeps the
    last two axes of the full-resolution spacing and median shape.

    Examples
    --------
    >>> plan_2d_geometry((3.3, 0.625, 0.625), (23.0, 320.0, 320.0))
    ((0.625, 0.625), (320.0, 320.0))
    """
    return tuple(float(s) for s in spacing[1:]), tuple(float(s) for s in median_shape[1:])


def patch_coverage(patch_size: Sequence[int], median_shape: Sequence[float]) -> float:
    """Fraction of the median image's voxels one patch covers.

    Examples
    --------
    >>> patch_coverage((128, 128, 128), (256, 256, 256))
    0.125
    """
    return float(np.prod(patch_size, dtype=np.float64) / np.prod(median_shape, dtype=np.float64))


def needs_lowres(patch_size: Sequence[int], median_shape: Sequence[float]) -> bool:
    """Rule: a low-resolution stage is searched for when the patch covers under 25% of the median image.

    Examples
    --------
    >>> needs_lowres((128, 128, 128), (256, 256, 256)), needs_lowres((40, 56, 40), (36, 50, 35))
    (True, False)
    """
    return patch_coverage(patch_size, median_shape) < LOWRES_PATCH_COVERAGE


def grow_lowres_spacing(spacing: Sequence[float]) -> tuple[float, ...]:
    """One step of the low-resolution spacing search.

    Rule: axes more than 2x finer than the coarsest axis grow by 3%; once none is, all axes grow by 3%.

    Examples
    --------
    >>> grow_lowres_spacing((2.5, 0.8, 0.8))
    (2.5, 0.8240000000000001, 0.8240000000000001)
    >>> grow_lowres_spacing((1.0, 1.0, 1.0))
    (1.03, 1.03, 1.03)
    """
    values = np.asarray(spacing, dtype=float)
    coarsest = values.max()
    fine = coarsest / values > LOWRES_ANISOTROPY_FACTOR
    if np.any(fine):
        values[fine] *= LOWRES_SPACING_GROWTH
    else:
        values *= LOWRES_SPACING_GROWTH
    return tuple(float(v) for v in values)


def scaled_median_shape(
    fullres_spacing: Sequence[float], spacing: Sequence[float], fullres_median_shape: Sequence[float]
) -> tuple[float, ...]:
    """Median shape at a coarser spacing: ``fullres_spacing / spacing * fullres_median_shape`` (not rounded).

    Examples
    --------
    >>> scaled_median_shape((1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (100, 200, 300))
    (50.0, 100.0, 150.0)
    """
    return tuple(float(f / s * m) for f, s, m in zip(fullres_spacing, spacing, fullres_median_shape))


@dataclass(frozen=True)
class LowresSearch:
    """Result of :func:`plan_lowres`.

    ``patch_plan`` is None when no low-resolution stage is planned; ``reason`` says why in plain words.
    ``median_shape`` is rounded to voxels; ``median_voxels`` is the unrounded voxel count used for the batch cap.
    """

    spacing: tuple[float, ...]
    median_shape: tuple[int, ...]
    median_voxels: float
    patch_plan: PatchPlan | None
    steps: int
    reason: str


def plan_lowres(
    fullres_spacing: Sequence[float],
    fullres_median_shape: Sequence[float],
    fullres_patch_size: Sequence[int],
    plan_patch: Callable[[tuple[float, ...], tuple[int, ...]], PatchPlan],
) -> LowresSearch:
    """Search the 3D low-resolution configuration that feeds the cascade.

    Rule: while the patch covers under 25% of the median image, grow the spacing by 3% per step
    (:func:`grow_lowres_spacing`), rescale the median image to it (rounded) and re-plan the patch for it with
    ``plan_patch``. Drop the result if the low-resolution median image is not at least 2x smaller (in voxels)
    than the full-resolution one.

    Parameters
    ----------
    fullres_spacing, fullres_median_shape : sequence of float
        The 3d_fullres spacing and median shape, plans axis order.
    fullres_patch_size : sequence of int
        The 3d_fullres patch.
    plan_patch : callable
        ``plan_patch(spacing, median_shape) -> PatchPlan``, the patch rule with the budget and network fixed.

    Returns
    -------
    LowresSearch

    Notes
    -----
    nnU-Net v2 ``ExperimentPlanner.plan_experiment``.

    Examples
    --------
    >>> from autounet.planners.patch_size import plan_patch_size
    >>> search = plan_lowres((1.0, 1.0, 1.0), (36, 50, 35), (40, 56, 40), plan_patch_size)
    >>> search.patch_plan is None, search.steps
    (True, 0)
    """
    median_voxels = float(np.prod(fullres_median_shape, dtype=np.float64))
    coverage = patch_coverage(fullres_patch_size, fullres_median_shape)
    spacing = tuple(float(s) for s in fullres_spacing)
    rounded = tuple(int(round(m)) for m in fullres_median_shape)
    if coverage >= LOWRES_PATCH_COVERAGE:
        return LowresSearch(
            spacing, rounded, median_voxels, None, 0,
            f"the 3d_fullres patch covers {coverage:.0%} of the median image (>= {LOWRES_PATCH_COVERAGE:.0%}), "
            "so no low-resolution stage is needed",
        )
    patch_plan: PatchPlan | None = None
    steps = 0
    while coverage < LOWRES_PATCH_COVERAGE and steps < MAX_LOWRES_STEPS:
        spacing = grow_lowres_spacing(spacing)
        scaled = scaled_median_shape(fullres_spacing, spacing, fullres_median_shape)
        median_voxels = float(np.prod(scaled, dtype=np.float64))
        rounded = tuple(int(round(m)) for m in scaled)
        patch_plan = plan_patch(spacing, rounded)
        coverage = float(np.prod(patch_plan.patch_size, dtype=np.float64)) / median_voxels
        steps += 1
    shrink = float(np.prod(fullres_median_shape, dtype=np.float64)) / median_voxels
    if shrink < LOWRES_MIN_SHRINK:
        return LowresSearch(
            spacing, rounded, median_voxels, None, steps,
            f"the low-resolution median image would be only {shrink:.2f}x smaller than at full resolution "
            f"(< {LOWRES_MIN_SHRINK:g}x), too similar to 3d_fullres to be worth a cascade",
        )
    return LowresSearch(
        spacing, rounded, median_voxels, patch_plan, steps,
        f"the 3d_fullres patch covers only {patch_coverage(fullres_patch_size, fullres_median_shape):.1%} of the "
        f"median image (< {LOWRES_PATCH_COVERAGE:.0%}); growing the spacing by 3% per step for {steps} steps "
        f"makes the patch cover {coverage:.0%} of a {shrink:.1f}x smaller median image",
    )
