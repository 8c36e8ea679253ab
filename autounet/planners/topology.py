"""U-Net topology from spacing and patch size: pooling per axis, strides, kernel sizes and features per stage."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from autounet.errors import PlansError

#: Smallest edge of a feature map in the bottleneck (nnU-Net's ``UNet_featuremap_min_edge_length``). An axis is
#: pooled only while it has at least twice this many voxels, so it keeps at least this many after pooling.
MIN_FEATURE_MAP_SIZE = 4

#: An axis is pooled (and gets a 3-wide kernel) only when its current spacing is less than this factor times the
#: finest spacing, so coarse axes wait until the in-plane axes have caught up (nnU-Net ``get_pool_and_conv_props``).
SPACING_RATIO_FOR_POOLING = 2.0

#: When only one axis can still be pooled it must have this many times ``MIN_FEATURE_MAP_SIZE`` voxels (nnU-Net).
SINGLE_AXIS_POOL_FACTOR = 3

#: Features of the first stage, doubled per stage (nnU-Net's ``UNet_base_num_features``).
BASE_FEATURES = 32

#: Feature cap per stage: 320 for 3D and 512 for 2D networks (nnU-Net's ``UNet_max_features_3d/2d``).
MAX_FEATURES_3D = 320
MAX_FEATURES_2D = 512

#: Convolutions per encoder and per decoder stage of the plain U-Net (nnU-Net's ``UNet_blocks_per_stage_*``).
CONVS_PER_STAGE = 2


@dataclass(frozen=True)
class NetworkTopology:
    """The pooling and convolution layout planned for a patch.

    Attributes
    ----------
    num_pool_per_axis : tuple of int
        How often each axis is halved.
    strides : tuple of tuple of int
        Per stage stride; ``strides[0]`` is the stem and all ones.
    kernel_sizes : tuple of tuple of int
        Per stage convolution kernel (1 or 3 per axis).
    patch_size : tuple of int
        The input patch rounded up so every axis is divisible by ``shape_divisor``.
    """

    num_pool_per_axis: tuple[int, ...]
    strides: tuple[tuple[int, ...], ...]
    kernel_sizes: tuple[tuple[int, ...], ...]
    patch_size: tuple[int, ...]

    @property
    def n_stages(self) -> int:
        """Number of resolution stages (encoder stages), the stem included."""
        return len(self.strides)

    @property
    def shape_divisor(self) -> tuple[int, ...]:
        """Total stride per axis (``2 ** num_pool_per_axis``); patch sizes must be multiples of it."""
        return tuple(2**n for n in self.num_pool_per_axis)


def round_up_to_multiple(shape: Sequence[float], divisor: Sequence[int]) -> tuple[int, ...]:
    """Round each axis of ``shape`` up to the next multiple of ``divisor`` (unchanged if already a multiple).

    A fractional size (a median shape of 50.5 voxels) rounds up like the next whole voxel.

    Examples
    --------
    >>> round_up_to_multiple((36, 50, 35), (8, 8, 8))
    (40, 56, 40)
    >>> round_up_to_multiple((64, 65), (16, 1)), round_up_to_multiple((48.5,), (8,))
    ((64, 65), (56,))
    """
    return tuple(int(math.ceil(float(size) / int(d)) * int(d)) for size, d in zip(shape, divisor))


def plan_topology(
    spacing: Sequence[float], patch_size: Sequence[float], min_feature_map_size: int = MIN_FEATURE_MAP_SIZE
) -> NetworkTopology:
    """Pooling, strides and kernel sizes of a U-Net for a patch at a spacing.

    Rule, repeated once per new stage:

    1. Axes that still have at least ``2 * min_feature_map_size`` voxels may be pooled; of these, only those
       whose spacing is within 2x of the finest such axis are pooled (each pooling doubles the axis' spacing).
       If only one axis qualifies it needs ``3 * min_feature_map_size`` voxels; if none does, stop.
    2. The stage's kernel is 3 along axes whose spacing is within 2x of the finest axis and 1 along axes
       still too coarse (e.g. 1x3x3 for 5 mm slices at 0.7 mm in-plane); once 3, an axis stays 3.
    3. The bottleneck kernel is 3 along every axis.

    The patch is then rounded up so every axis is divisible by its total stride ``2 ** num_pool``.

    Parameters
    ----------
    spacing : sequence of float
        Target spacing in mm, plans axis order (2 or 3 axes).
    patch_size : sequence of int or float
        Patch in voxels, same axes (a patch clipped to a fractional median shape may be fractional; it is
        rounded up at the end).
    min_feature_map_size : int
        Smallest bottleneck edge in voxels.

    Returns
    -------
    NetworkTopology

    Raises
    ------
    PlansError
        If spacing and patch have different numbers of axes or contain non-positive values.

    Notes
    -----
    nnU-Net v2 ``get_pool_and_conv_props`` (``network_topology.py``), with unlimited pooling per axis.

    Examples
    --------
    >>> t = plan_topology((1.0, 1.0, 1.0), (36, 50, 35))
    >>> t.num_pool_per_axis, t.patch_size, t.n_stages
    ((3, 3, 3), (40, 56, 40), 4)

    Anisotropic spacing: the coarse axis waits until the in-plane spacing has caught up.

    >>> t = plan_topology((3.3, 0.625, 0.625), (20, 320, 256))
    >>> t.strides
    ((1, 1, 1), (1, 2, 2), (1, 2, 2), (2, 2, 2), (2, 2, 2), (1, 2, 2), (1, 2, 2))
    >>> t.kernel_sizes[:3]
    ((1, 3, 3), (1, 3, 3), (3, 3, 3))
    """
    if len(spacing) != len(patch_size):
        raise PlansError(
            f"patch_size has {len(patch_size)} axes but spacing has {len(spacing)}; pass one value per spatial axis"
        )
    if any(float(s) <= 0 for s in spacing) or any(float(p) <= 0 for p in patch_size):
        raise PlansError(f"spacing {list(spacing)} and patch_size {list(patch_size)} must be positive")
    ndim = len(spacing)
    current_spacing = [float(s) for s in spacing]
    current_size = [float(p) for p in patch_size]
    num_pool = [0] * ndim
    kernel = [1] * ndim
    strides: list[tuple[int, ...]] = [(1,) * ndim]
    kernels: list[tuple[int, ...]] = []
    while True:
        poolable = [axis for axis in range(ndim) if current_size[axis] >= 2 * min_feature_map_size]
        if not poolable:
            break
        finest_poolable = min(current_spacing[axis] for axis in poolable)
        poolable = [axis for axis in poolable if current_spacing[axis] / finest_poolable < SPACING_RATIO_FOR_POOLING]
        if len(poolable) == 1 and current_size[poolable[0]] < SINGLE_AXIS_POOL_FACTOR * min_feature_map_size:
            break
        finest = min(current_spacing)
        for axis in range(ndim):
            if kernel[axis] != 3 and current_spacing[axis] / finest < SPACING_RATIO_FOR_POOLING:
                kernel[axis] = 3
        stride = tuple(2 if axis in poolable else 1 for axis in range(ndim))
        for axis in poolable:
            num_pool[axis] += 1
            current_spacing[axis] *= 2
            current_size[axis] = math.ceil(current_size[axis] / 2)
        strides.append(stride)
        kernels.append(tuple(kernel))
    kernels.append((3,) * ndim)
    padded = round_up_to_multiple(patch_size, [2**n for n in num_pool])
    return NetworkTopology(
        num_pool_per_axis=tuple(num_pool), strides=tuple(strides), kernel_sizes=tuple(kernels), patch_size=padded
    )


def plan_features_per_stage(
    n_stages: int, ndim: int, base_features: int = BASE_FEATURES, max_features: int | None = None
) -> tuple[int, ...]:
    """Output channels of each encoder stage.

    Rule: ``base_features`` (32) in the first stage, doubled per stage, capped at 320 for 3D and 512 for 2D.

    Examples
    --------
    >>> plan_features_per_stage(7, 3)
    (32, 64, 128, 256, 320, 320, 320)
    >>> plan_features_per_stage(7, 2)
    (32, 64, 128, 256, 512, 512, 512)
    """
    if max_features is None:
        max_features = MAX_FEATURES_3D if ndim == 3 else MAX_FEATURES_2D
    return tuple(min(max_features, base_features * 2**stage) for stage in range(n_stages))


def plan_convs_per_stage(n_stages: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Convolutions per encoder stage and per decoder stage (two each; the decoder has one stage fewer).

    Examples
    --------
    >>> plan_convs_per_stage(4)
    ((2, 2, 2, 2), (2, 2, 2))
    """
    return (CONVS_PER_STAGE,) * n_stages, (CONVS_PER_STAGE,) * (n_stages - 1)
