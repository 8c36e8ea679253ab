"""Rules that tell implausible geometry from real variation: a case whose spacing is off by a unit mix-up, or that
resampling would shrink to a sliver of the network's patch, is refused rather than silently trained on or predicted.

``check`` and ``fingerprint`` compare each case's spacing with the dataset's median, ``predict`` compares a new
image with the training data's median, and preprocessing (training and prediction) refuses a resampling that would
leave an axis with fewer than a quarter of the patch's voxels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: A spacing more than this many times finer or coarser than the reference along an axis is implausible. Real
#: datasets vary far less (CT slice thickness 0.5-5 mm around a median near 1-3 mm gives at most about 6x); a unit
#: mix-up (micrometres or centimetres read as millimetres) gives 10x to 1000x.
SPACING_RATIO_LIMIT = 10.0
#: A resampling that shrinks an axis below this fraction of the patch leaves the network almost nothing to see (the
#: rest of the patch is padding); smaller but unshrunk images (thin slabs) are fine.
MIN_PATCH_FRACTION = 0.25


def spacing_outlier(
    spacing: Sequence[float], reference: Sequence[float], is_2d: bool = False, limit: float = SPACING_RATIO_LIMIT
) -> str | None:
    """Why ``spacing`` is implausible next to ``reference`` (same axis order), or None when it is plausible.

    Parameters
    ----------
    spacing, reference : sequence of float
        Voxel sizes in mm, array axis order (z, y, x).
    is_2d : bool
        Flat images: axis 0 is a placeholder and is not compared.
    limit : float
        Largest accepted ratio in either direction.

    Examples
    --------
    >>> spacing_outlier((3.0, 0.8, 0.8), (1.0, 0.7, 0.7)) is None
    True
    >>> spacing_outlier((0.001, 1.0, 1.0), (1.0, 1.0, 1.0))
    'spacing (0.001, 1.0, 1.0) mm is 1,000x finer than (1.0, 1.0, 1.0) mm along axis 0'
    >>> spacing_outlier((500.0, 500.0, 500.0), (1.0, 1.0, 1.0))
    'spacing (500.0, 500.0, 500.0) mm is 500x coarser than (1.0, 1.0, 1.0) mm along axes 0, 1, 2'
    """
    axes = range(1, len(spacing)) if is_2d else range(len(spacing))
    ratios = {axis: float(spacing[axis]) / float(reference[axis]) for axis in axes
              if float(reference[axis]) > 0 and float(spacing[axis]) > 0}
    finer = [axis for axis, ratio in ratios.items() if ratio < 1 / limit]
    coarser = [axis for axis, ratio in ratios.items() if ratio > limit]
    if not finer and not coarser:
        return None
    axes_found, word = (finer, "finer") if finer else (coarser, "coarser")
    factor = max(1 / ratios[a] if finer else ratios[a] for a in axes_found)
    return (f"spacing {_values(spacing)} mm is {factor:,.0f}x {word} than {_values(reference)} mm along "
            f"{'axis' if len(axes_found) == 1 else 'axes'} {', '.join(str(a) for a in axes_found)}")


def median_spacing(spacings: Sequence[Sequence[float]]) -> tuple[float, ...]:
    """Per-axis median of case spacings (mm).

    Parameters
    ----------
    spacings : sequence of sequence of float
        One spacing per case, same axis order.

    Examples
    --------
    >>> median_spacing([(1.0, 1.0, 1.0), (3.0, 1.0, 1.0), (0.001, 1.0, 1.0)])
    (1.0, 1.0, 1.0)
    """
    return tuple(float(v) for v in np.median(np.asarray(spacings, dtype=float), axis=0))


def resampling_shrink_problem(
    shape: Sequence[int],
    spacing: Sequence[float],
    target_spacing: Sequence[float],
    patch_size: Sequence[int],
    min_fraction: float = MIN_PATCH_FRACTION,
) -> str | None:
    """Why resampling ``shape`` from ``spacing`` to ``target_spacing`` leaves too little for ``patch_size``, or None.

    An axis is a problem when resampling shrinks it (the target is coarser) to fewer than ``min_fraction`` of the
    patch's voxels. Patches with fewer axes than the image (2D configurations) apply to its last axes.

    Parameters
    ----------
    shape : sequence of int
        Voxels per axis before resampling.
    spacing, target_spacing : sequence of float
        Voxel sizes before and after, mm.
    patch_size : sequence of int
        The configuration's patch.
    min_fraction : float
        Least share of the patch an axis may shrink to.

    Examples
    --------
    >>> resampling_shrink_problem((35, 51, 35), (0.001, 1.0, 1.0), (1.0, 1.0, 1.0), (40, 56, 40))
    'resampling (35, 51, 35) voxels from (0.001, 1.0, 1.0) mm to (1.0, 1.0, 1.0) mm leaves (1, 51, 35): fewer than a quarter of the patch (40, 56, 40) along axis 0'
    >>> resampling_shrink_problem((35, 51, 35), (0.5, 1.0, 1.0), (1.0, 1.0, 1.0), (40, 56, 40)) is None
    True
    >>> resampling_shrink_problem((8, 512, 512), (1.0, 0.5, 0.5), (1.0, 0.5, 0.5), (64, 128, 128)) is None  # thin slab
    True
    """
    new_shape = [max(int(round(s * sp / t)), 1) for s, sp, t in zip(shape, spacing, target_spacing)]
    offset = len(shape) - len(patch_size)
    axes = [axis for axis in range(offset, len(shape))
            if new_shape[axis] < shape[axis] and new_shape[axis] < min_fraction * patch_size[axis - offset]]
    if not axes:
        return None
    fraction = "a quarter" if min_fraction == MIN_PATCH_FRACTION else f"{min_fraction:g}"
    return (f"resampling {tuple(int(s) for s in shape)} voxels from {_values(spacing)} mm to {_values(target_spacing)} mm "
            f"leaves {tuple(new_shape)}: fewer than {fraction} of the patch {tuple(int(p) for p in patch_size)} along "
            f"{'axis' if len(axes) == 1 else 'axes'} {', '.join(str(a) for a in axes)}")


def _values(values: Sequence[float]) -> str:
    """``(0.001, 1.0, 1.0)``: short, and whole numbers with one decimal."""
    return "(" + ", ".join(f"{float(v):.4g}" if float(v) != int(v) else f"{float(v):.1f}" for v in values) + ")"
