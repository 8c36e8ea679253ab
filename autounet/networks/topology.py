"""Validate and normalise the per-stage lists (features, kernels, strides, convs) every network family receives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autounet.errors import PlansError


@dataclass(frozen=True)
class Topology:
    """A checked U-Net topology: one entry per encoder stage, tuples only.

    Attributes
    ----------
    features_per_stage : tuple of int
        Output channels of each encoder stage, shallowest first.
    kernel_sizes : tuple of tuple of int
        Convolution kernel per stage, one value per spatial axis in array order.
    strides : tuple of tuple of int
        Downsampling stride of the first convolution of each stage; ``strides[0]`` is the stem and all ones.
    n_conv_per_stage : tuple of int
        Convolutions (or blocks, for residual encoders) per encoder stage.
    n_conv_per_stage_decoder : tuple of int
        Convolutions per decoder stage, deepest decoder stage first (nnU-Net's order); ``n_stages - 1`` entries.
    """

    features_per_stage: tuple[int, ...]
    kernel_sizes: tuple[tuple[int, ...], ...]
    strides: tuple[tuple[int, ...], ...]
    n_conv_per_stage: tuple[int, ...]
    n_conv_per_stage_decoder: tuple[int, ...]

    @property
    def n_stages(self) -> int:
        """Number of encoder stages (resolution levels)."""
        return len(self.features_per_stage)

    @property
    def spatial_dims(self) -> int:
        """2 for a 2D network, 3 for a 3D network."""
        return len(self.kernel_sizes[0])

    @property
    def total_stride(self) -> tuple[int, ...]:
        """Product of all strides per axis: input sizes must be divisible by it."""
        total = [1] * self.spatial_dims
        for stride in self.strides:
            total = [t * s for t, s in zip(total, stride)]
        return tuple(total)


def _expand_counts(value: Sequence[int] | int, length: int, name: str, hint: str) -> tuple[int, ...]:
    if isinstance(value, int):
        counts = (value,) * length
    else:
        counts = tuple(int(v) for v in value)
    if len(counts) != length:
        raise PlansError(f"{name} has {len(counts)} entries but {length} are needed ({hint}); pass one per stage or a single int")
    if any(c < 1 for c in counts):
        raise PlansError(f"{name} must be positive integers, got {list(counts)}; use at least one convolution per stage")
    return counts


def validate_topology(
    features_per_stage: Sequence[int],
    kernel_sizes: Sequence[Sequence[int]],
    strides: Sequence[Sequence[int]],
    n_conv_per_stage: Sequence[int] | int = 2,
    n_conv_per_stage_decoder: Sequence[int] | int = 2,
) -> Topology:
    """Check that the per-stage lists of a U-Net agree and return them as tuples.

    Parameters
    ----------
    features_per_stage : sequence of int
        Channels per encoder stage; its length is the number of stages (at least 2).
    kernel_sizes : sequence of sequence of int
        One kernel per stage; every kernel has 2 (2D) or 3 (3D) odd entries.
    strides : sequence of sequence of int
        One stride per stage, same number of axes as the kernels; the first must be all ones.
    n_conv_per_stage : sequence of int or int
        Convolutions per encoder stage (``n_stages`` entries) or one int for all.
    n_conv_per_stage_decoder : sequence of int or int
        Convolutions per decoder stage (``n_stages - 1`` entries, deepest first) or one int for all.

    Returns
    -------
    Topology

    Raises
    ------
    PlansError
        When lengths disagree, axes counts differ, a kernel is even, or the first stride is not all ones.

    Examples
    --------
    >>> t = validate_topology([8, 16], [[1, 3, 3], [3, 3, 3]], [[1, 1, 1], [1, 2, 2]])
    >>> t.n_stages, t.spatial_dims, t.total_stride, t.n_conv_per_stage_decoder
    (2, 3, (1, 2, 2), (2,))
    >>> validate_topology([8, 16], [[3, 3]], [[1, 1], [2, 2]])
    Traceback (most recent call last):
    ...
    autounet.errors.PlansError: kernel_sizes has 1 entries but features_per_stage has 2; pass one kernel per stage
    """
    features = tuple(int(f) for f in features_per_stage)
    n_stages = len(features)
    if n_stages < 2:
        raise PlansError(f"features_per_stage has {n_stages} entries; a U-Net needs at least 2 stages")
    if any(f < 1 for f in features):
        raise PlansError(f"features_per_stage must be positive, got {list(features)}")
    kernels = tuple(tuple(int(k) for k in kernel) for kernel in kernel_sizes)
    stride_tuples = tuple(tuple(int(s) for s in stride) for stride in strides)
    for name, values in (("kernel_sizes", kernels), ("strides", stride_tuples)):
        if len(values) != n_stages:
            raise PlansError(
                f"{name} has {len(values)} entries but features_per_stage has {n_stages}; "
                f"pass one {name[:-1].replace('_size', '')} per stage"
            )
    spatial_dims = len(kernels[0])
    if spatial_dims not in (2, 3):
        raise PlansError(f"kernel_sizes[0] has {spatial_dims} axes; use 2 axes for 2D or 3 for 3D networks")
    for stage, (kernel, stride) in enumerate(zip(kernels, stride_tuples)):
        if len(kernel) != spatial_dims or len(stride) != spatial_dims:
            raise PlansError(
                f"stage {stage} has a kernel with {len(kernel)} axes and a stride with {len(stride)} axes, "
                f"but kernel_sizes[0] has {spatial_dims}; give every kernel and stride the same number of axes"
            )
        if any(k < 1 or k % 2 == 0 for k in kernel):
            raise PlansError(f"kernel_sizes[{stage}] = {list(kernel)}; use odd kernel sizes so padding keeps the shape")
        if any(s < 1 for s in stride):
            raise PlansError(f"strides[{stage}] = {list(stride)}; strides must be positive integers")
    if any(s != 1 for s in stride_tuples[0]):
        raise PlansError(f"strides[0] = {list(stride_tuples[0])}; the stem does not downsample, use all ones")
    return Topology(
        features_per_stage=features,
        kernel_sizes=kernels,
        strides=stride_tuples,
        n_conv_per_stage=_expand_counts(n_conv_per_stage, n_stages, "n_conv_per_stage", "one per encoder stage"),
        n_conv_per_stage_decoder=_expand_counts(
            n_conv_per_stage_decoder, n_stages - 1, "n_conv_per_stage_decoder", "one per decoder stage, n_stages - 1"
        ),
    )
