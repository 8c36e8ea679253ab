"""The memory model: an activation-memory estimate per network family and the GPU budget it is compared with.

The estimate is nnU-Net's VRAM proxy, the sum of the sizes (channels x voxels) of every convolution output of
the network for one sample. It is compared with a reference value that nnU-Net calibrated on an 8 GB GPU:
560e6 for 3D networks at batch size 2 and 85e6 for 2D networks at batch size 12. The budget scales linearly
with the GPU memory.

Network families plug in their own estimate with :func:`register_memory_estimator` (a function) or
:func:`register_memory_multiplier` (a factor on the U-Net proxy). The estimate must be in *U-Net units*: a
value that, compared with the U-Net reference, means the same memory. Unknown families fall back to the plain
U-Net proxy with a logged warning.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from autounet.errors import PlansError
from autounet.registry import Registry

logger = logging.getLogger(__name__)

#: nnU-Net's ``UNet_reference_val_corresp_GB``: the GPU memory the reference values were calibrated on.
REFERENCE_MEMORY_GB = 8.0

#: nnU-Net's ``UNet_reference_val_3d`` / ``_2d``: proxy values (sum of conv feature-map sizes) that fill the
#: reference GPU at the reference batch sizes below. "Set to reproduce nnU-Net v1's configurations".
REFERENCE_PROXY_3D = 560_000_000
REFERENCE_PROXY_2D = 85_000_000

#: Batch sizes the reference values correspond to (nnU-Net's ``UNet_reference_val_corresp_bs_3d`` / ``_2d``).
REFERENCE_BATCH_SIZE_3D = 2
REFERENCE_BATCH_SIZE_2D = 12

#: The default family, whose proxy is the unit of every other family's estimate.
DEFAULT_NETWORK = "unet"


class MemoryEstimator(Protocol):
    """Activation-memory estimate of one sample, in U-Net proxy units (see the module docstring)."""

    def __call__(
        self,
        patch_size: Sequence[int],
        features_per_stage: Sequence[int],
        strides: Sequence[Sequence[int]],
        n_conv_per_stage: Sequence[int],
        n_conv_per_stage_decoder: Sequence[int],
        num_classes: int,
        network_kwargs: Mapping[str, Any],
    ) -> float: ...


MEMORY_ESTIMATORS: Registry[MemoryEstimator] = Registry("memory estimator")
"""Memory estimate per network family name (the names of ``autounet.networks``)."""


def register_memory_estimator(name: str) -> Callable[[MemoryEstimator], MemoryEstimator]:
    """Decorator registering the memory estimate of network family ``name``.

    Examples
    --------
    >>> @register_memory_estimator("doc_example_net")
    ... def _estimate(patch_size, features_per_stage, strides, n_conv_per_stage, n_conv_per_stage_decoder,
    ...               num_classes, network_kwargs):
    ...     return 2 * unet_feature_map_size(patch_size, features_per_stage, strides, n_conv_per_stage,
    ...                                      n_conv_per_stage_decoder, num_classes)
    >>> "doc_example_net" in MEMORY_ESTIMATORS
    True
    """
    return MEMORY_ESTIMATORS.register(name)


def register_memory_multiplier(name: str, factor: float) -> MemoryEstimator:
    """Register family ``name`` as ``factor`` times the plain U-Net proxy (for families measured against it).

    Examples
    --------
    >>> estimate = register_memory_multiplier("doc_example_wide", 1.5)
    >>> estimate((8, 8), (4, 8), ((1, 1), (2, 2)), (2, 2), (2,), 2, {})
    2496.0
    """
    if not factor > 0:
        raise PlansError(f"memory multiplier for {name!r} must be positive, got {factor}")

    def estimate(
        patch_size: Sequence[int],
        features_per_stage: Sequence[int],
        strides: Sequence[Sequence[int]],
        n_conv_per_stage: Sequence[int],
        n_conv_per_stage_decoder: Sequence[int],
        num_classes: int,
        network_kwargs: Mapping[str, Any],
    ) -> float:
        return factor * unet_feature_map_size(
            patch_size, features_per_stage, strides, n_conv_per_stage, n_conv_per_stage_decoder, num_classes
        )

    return MEMORY_ESTIMATORS.register(name)(estimate)


def _stage_sizes(patch_size: Sequence[int], strides: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    """Spatial size of each encoder stage's output (integer division, like the network)."""
    sizes = []
    size = tuple(int(p) for p in patch_size)
    for stride in strides:
        size = tuple(s // int(st) for s, st in zip(size, stride))
        sizes.append(size)
    return sizes


def _decoder_feature_map_size(
    stage_sizes: Sequence[Sequence[int]],
    features_per_stage: Sequence[int],
    n_conv_per_stage_decoder: Sequence[int],
    num_classes: int,
    deep_supervision: bool,
) -> int:
    """Plain U-Net decoder: per stage (deepest first) a transposed conv, its convs and the segmentation head."""
    total = 0
    n_decoder = len(features_per_stage) - 1
    for s in range(n_decoder):
        voxels = math.prod(stage_sizes[-(s + 2)])
        features = int(features_per_stage[-(s + 2)])
        total += int(n_conv_per_stage_decoder[s]) * features * voxels  # convolutions
        total += features * voxels  # transposed convolution
        if deep_supervision or s == n_decoder - 1:
            total += int(num_classes) * voxels  # 1x1 segmentation output
    return total


def unet_feature_map_size(
    patch_size: Sequence[int],
    features_per_stage: Sequence[int],
    strides: Sequence[Sequence[int]],
    n_conv_per_stage: Sequence[int],
    n_conv_per_stage_decoder: Sequence[int],
    num_classes: int,
    deep_supervision: bool = False,
) -> int:
    """Sum of the convolution output sizes of the plain U-Net for one sample (nnU-Net's VRAM proxy).

    Rule: every convolution contributes ``channels x voxels`` of its output: ``n_conv_per_stage[s]`` convs of
    ``features_per_stage[s]`` channels in each encoder stage (the first at the stage's strided size), and in
    each decoder stage a transposed convolution, ``n_conv_per_stage_decoder[s]`` convs and the segmentation
    output. Like nnU-Net's planner, only the full-resolution segmentation output is counted.

    Parameters
    ----------
    patch_size : sequence of int
        Input patch, plans axis order.
    features_per_stage, strides, n_conv_per_stage, n_conv_per_stage_decoder
        The topology (``strides[0]`` is the stem).
    num_classes : int
        Output channels (labels including background).
    deep_supervision : bool
        Also count the lower-resolution segmentation outputs.

    Returns
    -------
    int

    Notes
    -----
    ``PlainConvUNet.compute_conv_feature_map_size`` of ``dynamic_network_architectures``, as called by nnU-Net
    v2's ``ExperimentPlanner.static_estimate_VRAM_usage``.

    Examples
    --------
    The Hippocampus 3d_fullres network (reference value 19174400):

    >>> unet_feature_map_size((40, 56, 40), (32, 64, 128, 256), [(1, 1, 1)] + [(2, 2, 2)] * 3,
    ...                       (2, 2, 2, 2), (2, 2, 2), num_classes=3)
    19174400
    """
    stage_sizes = _stage_sizes(patch_size, strides)
    total = sum(int(n) * int(f) * math.prod(size) for n, f, size in zip(n_conv_per_stage, features_per_stage, stage_sizes))
    return total + _decoder_feature_map_size(stage_sizes, features_per_stage, n_conv_per_stage_decoder, num_classes, deep_supervision)


@register_memory_estimator(DEFAULT_NETWORK)
def _unet_estimate(
    patch_size: Sequence[int],
    features_per_stage: Sequence[int],
    strides: Sequence[Sequence[int]],
    n_conv_per_stage: Sequence[int],
    n_conv_per_stage_decoder: Sequence[int],
    num_classes: int,
    network_kwargs: Mapping[str, Any],
) -> float:
    return float(
        unet_feature_map_size(patch_size, features_per_stage, strides, n_conv_per_stage, n_conv_per_stage_decoder, num_classes)
    )


#: nnU-Net's residual-encoder planner (``nnUNetPlannerResEncM``) fills the same 8 GB with 680e6 (3D) and 135e6
#: (2D) of *its* proxy, so its proxy is converted to U-Net units with these ratios.
RESENC_TO_UNET_3D = REFERENCE_PROXY_3D / 680_000_000
RESENC_TO_UNET_2D = REFERENCE_PROXY_2D / 135_000_000

#: Residual blocks per encoder stage of nnU-Net's ResEnc presets (the "resenc" family's default).
RESENC_BLOCKS_PER_STAGE = (1, 3, 4, 6, 6, 6)


def resenc_feature_map_size(
    patch_size: Sequence[int],
    features_per_stage: Sequence[int],
    strides: Sequence[Sequence[int]],
    n_blocks_per_stage: Sequence[int],
    n_conv_per_stage_decoder: Sequence[int],
    num_classes: int,
) -> int:
    """Sum of the convolution output sizes of a residual-encoder U-Net (nnU-Net's ``ResidualEncoderUNet``).

    Rule: a one-conv stem at full resolution; per stage ``n_blocks_per_stage[s]`` basic blocks of two convs,
    the first strided, plus a projection on the skip path of that first block when it changes the channels or
    the size; the decoder as in :func:`unet_feature_map_size`.

    Examples
    --------
    >>> resenc_feature_map_size((8, 8), (4, 8), [(1, 1), (2, 2)], (1, 1), (1,), 2)
    1792
    """
    stage_sizes = _stage_sizes(patch_size, strides)
    total = int(features_per_stage[0]) * math.prod(int(p) for p in patch_size)  # stem
    channels = int(features_per_stage[0])
    for blocks, features, stride, size in zip(n_blocks_per_stage, features_per_stage, strides, stage_sizes):
        voxels = math.prod(size)
        total += 2 * int(blocks) * int(features) * voxels
        if channels != int(features) or any(int(s) != 1 for s in stride):
            total += int(features) * voxels  # projection of the first block's skip path
        channels = int(features)
    return total + _decoder_feature_map_size(stage_sizes, features_per_stage, n_conv_per_stage_decoder, num_classes, False)


@register_memory_estimator("resenc")
def _resenc_estimate(
    patch_size: Sequence[int],
    features_per_stage: Sequence[int],
    strides: Sequence[Sequence[int]],
    n_conv_per_stage: Sequence[int],
    n_conv_per_stage_decoder: Sequence[int],
    num_classes: int,
    network_kwargs: Mapping[str, Any],
) -> float:
    n_stages = len(features_per_stage)
    blocks = network_kwargs.get("n_blocks_per_stage")
    if blocks is None:
        blocks = [RESENC_BLOCKS_PER_STAGE[min(s, len(RESENC_BLOCKS_PER_STAGE) - 1)] for s in range(n_stages)]
    elif isinstance(blocks, int):
        blocks = [blocks] * n_stages
    raw = resenc_feature_map_size(patch_size, features_per_stage, strides, blocks, n_conv_per_stage_decoder, num_classes)
    return raw * (RESENC_TO_UNET_3D if len(patch_size) == 3 else RESENC_TO_UNET_2D)


def estimate_memory(
    network: str,
    patch_size: Sequence[int],
    features_per_stage: Sequence[int],
    strides: Sequence[Sequence[int]],
    n_conv_per_stage: Sequence[int],
    n_conv_per_stage_decoder: Sequence[int],
    num_classes: int,
    network_kwargs: Mapping[str, Any] | None = None,
) -> float:
    """Activation-memory estimate of one sample for network family ``network``, in U-Net proxy units.

    Rule: the family's registered estimator; a family without one uses the plain U-Net proxy and logs a
    warning (its memory may then be under- or over-estimated).

    Examples
    --------
    >>> estimate_memory("unet", (40, 56, 40), (32, 64, 128, 256), [(1, 1, 1)] + [(2, 2, 2)] * 3,
    ...                 (2, 2, 2, 2), (2, 2, 2), 3)
    19174400.0
    """
    if has_memory_estimator(network):
        estimator = MEMORY_ESTIMATORS.get(network)
    else:
        _warn_unknown_family(network)
        estimator = MEMORY_ESTIMATORS.get(DEFAULT_NETWORK)
    return float(estimator(
        patch_size, features_per_stage, strides, n_conv_per_stage, n_conv_per_stage_decoder, num_classes,
        dict(network_kwargs or {}),
    ))


def has_memory_estimator(network: str) -> bool:
    """Whether family ``network`` has its own memory estimate (otherwise the U-Net proxy stands in).

    Examples
    --------
    >>> has_memory_estimator("unet"), has_memory_estimator("resenc"), has_memory_estimator("no_such_net")
    (True, True, False)
    """
    return network in MEMORY_ESTIMATORS


@functools.lru_cache(maxsize=None)
def _warn_unknown_family(network: str) -> None:
    # Cached so the planner's loops log the fallback once per family, not once per candidate patch.
    logger.warning(
        "no memory estimate registered for network family %r; using the plain U-Net estimate "
        "(register one with autounet.planners.memory.register_memory_estimator)",
        network,
    )


def reference_batch_size(ndim: int) -> int:
    """Batch size the reference value corresponds to: 2 for 3D, 12 for 2D.

    Examples
    --------
    >>> reference_batch_size(3), reference_batch_size(2)
    (2, 12)
    """
    return REFERENCE_BATCH_SIZE_3D if ndim == 3 else REFERENCE_BATCH_SIZE_2D


def memory_budget(ndim: int, memory_budget_gb: float = REFERENCE_MEMORY_GB) -> float:
    """The proxy value that fills a GPU of ``memory_budget_gb`` at the reference batch size.

    Rule: the reference value (560e6 for 3D, 85e6 for 2D at 8 GB) scaled linearly with the GPU memory.

    Raises
    ------
    PlansError
        If ``memory_budget_gb`` is not positive.

    Examples
    --------
    >>> memory_budget(3), memory_budget(2, 16.0)
    (560000000.0, 170000000.0)
    """
    if not memory_budget_gb > 0:
        raise PlansError(f"GPU memory must be positive, got {memory_budget_gb} GB; pass e.g. --gpu-memory 8")
    reference = REFERENCE_PROXY_3D if ndim == 3 else REFERENCE_PROXY_2D
    return reference * (memory_budget_gb / REFERENCE_MEMORY_GB)


def fits_memory(memory_estimate: float, batch_size: int, ndim: int, memory_budget_gb: float = REFERENCE_MEMORY_GB) -> bool:
    """Whether ``batch_size`` samples of ``memory_estimate`` each fit the budget.

    Rule: ``memory_estimate * batch_size / reference_batch_size <= memory_budget`` (nnU-Net's patch loop runs
    while ``estimate / ref_bs * 2 > reference``, i.e. it makes batch size 2 fit).

    Examples
    --------
    >>> fits_memory(560e6, 2, 3), fits_memory(561e6, 2, 3), fits_memory(561e6, 2, 3, memory_budget_gb=16)
    (True, False, True)
    """
    return memory_estimate / reference_batch_size(ndim) * batch_size <= memory_budget(ndim, memory_budget_gb)
