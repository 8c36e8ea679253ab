"""Memory estimates of the U-Net variant families (resunet, attention, unetpp, ...), in U-Net proxy units.

The planner's unit is nnU-Net's proxy for the plain U-Net (the sum of its convolution outputs), calibrated
against GPU memory. What fills the memory during training is what autograd keeps for the backward pass. So each
family gets a rule that counts the elements of the feature maps its network keeps for the backward pass
(:func:`saved_activation_size`), written out per block below, and its estimate is the U-Net proxy scaled by
how much more (or less) the family keeps than the plain U-Net of the same topology::

    estimate(family) = unet_proxy * saved(family) / saved("unet")

Counting rules (element counts of one sample, "V" the voxels of the map, "c" its channels; they follow what
PyTorch saves and are checked against the networks in ``tests/networks/test_families_memory.py``):

- conv -> instance norm -> in-place LeakyReLU: ``2 c V`` (the conv output, kept by the norm; the activation
  output, kept by the activation and the next conv);
- conv -> norm whose output goes into a sum: ``c V``; the activation after the sum: ``c V``;
- a concatenation that feeds a convolution: its full size; a transposed convolution whose output is
  concatenated: nothing (the concatenation copies it and nothing keeps it).

This module imports no torch: the planner runs without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from autounet.planners.memory import register_memory_estimator, unet_feature_map_size

#: Defaults of the families' options, repeated here because the planner does not import the networks
#: (``tests/networks/test_families_memory.py`` checks they agree with ``autounet.networks``).
R2UNET_RECURRENT_STEPS = 2
DENSEUNET_LAYERS_PER_BLOCK = 4
DENSEUNET_GROWTH_DIVISOR = 1
DILATED_RATES = (1, 2, 3)
DILATED_BRANCH_WIDTH_DIVISOR = 4
MULTIRES_ALPHA = 1.67
MULTIRES_SPLIT = (0.167, 0.333, 0.5)

SavedCounter = Callable[[Sequence[int], Sequence[int], Sequence[int], Sequence[int], Mapping[str, Any]], int]
"""``counter(voxels_per_stage, features, n_conv_per_stage, n_conv_per_stage_decoder, network_kwargs) -> int``."""

_COUNTERS: dict[str, SavedCounter] = {}


def _counter(name: str) -> Callable[[SavedCounter], SavedCounter]:
    def register(function: SavedCounter) -> SavedCounter:
        _COUNTERS[name] = function
        return function

    return register


def _stage_voxels(patch_size: Sequence[int], strides: Sequence[Sequence[int]]) -> list[int]:
    """Voxels of each encoder stage's output (integer division, like the networks)."""
    voxels, size = [], [int(p) for p in patch_size]
    for stride in strides:
        size = [s // int(st) for s, st in zip(size, stride)]
        voxels.append(math.prod(size))
    return voxels


def _decoder_levels(n_stages: int) -> list[tuple[int, int]]:
    """``(s, d)`` for each decoder stage ``s`` (deepest first) and the encoder depth ``d`` it works at."""
    return [(s, n_stages - 2 - s) for s in range(n_stages - 1)]


@_counter("unet")
def _unet(voxels, features, n_conv, n_conv_decoder, kwargs) -> int:
    encoder = sum(2 * n * f * v for n, f, v in zip(n_conv, features, voxels))
    decoder = sum((2 + 2 * n_conv_decoder[s]) * features[d] * voxels[d] for s, d in _decoder_levels(len(features)))
    return encoder + decoder


def _residual_unit(n_convs: int, in_channels: int, features: int, voxels: int, pooled_voxels: int | None) -> int:
    """ResidualUnit: convs (the last without activation), projected skip, activation after the sum."""
    total = 2 * (n_convs - 1) * features * voxels + features * voxels + features * voxels
    if pooled_voxels is not None and in_channels != features:
        total += in_channels * pooled_voxels  # average-pooled input, kept by the 1x1 projection
    if in_channels != features:
        total += features * voxels  # projection output, kept by its norm
    return total


@_counter("resunet")
def _resunet(voxels, features, n_conv, n_conv_decoder, kwargs) -> int:
    total, channels = 0, 1
    for s, (n, f, v) in enumerate(zip(n_conv, features, voxels)):
        total += _residual_unit(n, channels, f, v, v if s > 0 else None)
        channels = f
    for s, d in _decoder_levels(len(features)):
        f, v = features[d], voxels[d]
        total += 2 * f * v + _residual_unit(n_conv_decoder[s], 2 * f, f, v, None)  # concatenation, unit
    return total


@_counter("attention")
def _attention(voxels, features, n_conv, n_conv_decoder, kwargs) -> int:
    gates = 0
    for _, d in _decoder_levels(len(features)):
        inter = max(1, features[d] // 2)
        gates += inter * voxels[d + 1] + voxels[d + 1] + voxels[d]  # ReLU output, sigmoid output, resampled map
    return _unet(voxels, features, n_conv, n_conv_decoder, kwargs) + gates


@_counter("dilated")
def _dilated(voxels, features, n_conv, n_conv_decoder, kwargs) -> int:
    f, v = features[-1], voxels[-1]
    width = max(1, f // DILATED_BRANCH_WIDTH_DIVISOR)
    branches = 1 + len(tuple(kwargs.get("rates", DILATED_RATES)))
    context = 2 * branches * width * v + branches * width * v  # branch convs, their concatenation
    context += f * v + f * v + 2 * f  # projection output, block output, pooling branch
    return _unet(voxels, features, n_conv, n_conv_decoder, kwargs) + context


@_counter("unetpp")
def _unetpp(voxels, features, n_conv, n_conv_decoder, kwargs) -> int:
    n = len(features)
    nested = 0
    for i in range(n - 1):
        convs = n_conv_decoder[n - 2 - i]
        nested += sum((j + 1 + 2 * convs) * features[i] * voxels[i] for j in range(1, n - i))
    return sum(2 * c * f * v for c, f, v in zip(n_conv, features, voxels)) + nested


@_counter("r2unet")
def _r2unet(voxels, features, n_conv, n_conv_decoder, kwargs) -> int:
    steps = int(kwargs.get("recurrent_steps", R2UNET_RECURRENT_STEPS))

    def block(n_recurrent: int, f: int, v: int) -> int:
        # entry output, per RCL 2 + 3 t maps (the first conv, then t sums each with a conv), the block's sum
        return (2 + n_recurrent * (2 + 3 * steps)) * f * v

    encoder = sum(block(n, f, v) for n, f, v in zip(n_conv, features, voxels))
    decoder = sum(
        2 * features[d] * voxels[d] + block(n_conv_decoder[s], features[d], voxels[d])
        for s, d in _decoder_levels(len(features))
    )
    return encoder + decoder


def _dense_stage(in_channels: int, features: int, growth: int, layers: int, voxels: int, entry: bool) -> int:
    """DenseStage: optional entry conv, dense layers on growing concatenations, 1x1 compression."""
    total = 2 * features * voxels if entry else 0
    start = features if entry else in_channels
    total += sum((start + i * growth) * voxels for i in range(1, layers + 1))  # concatenations fed to convs
    total += 2 * layers * growth * voxels + 2 * features * voxels  # dense layers, compression
    return total


@_counter("denseunet")
def _denseunet(voxels, features, n_conv, n_conv_decoder, kwargs) -> int:
    layers = int(kwargs.get("layers_per_block", DENSEUNET_LAYERS_PER_BLOCK))
    growth = kwargs.get("growth_rate")
    if growth is None:
        growth = [max(1, f // DENSEUNET_GROWTH_DIVISOR) for f in features]
    elif isinstance(growth, int):
        growth = [growth] * len(features)
    total, channels = 0, 1
    for f, g, v in zip(features, growth, voxels):
        total += _dense_stage(channels, f, g, layers, v, entry=True)
        channels = f
    for _, d in _decoder_levels(len(features)):
        f, v = features[d], voxels[d]
        total += 2 * f * v + _dense_stage(2 * f, f, growth[d], layers, v, entry=False)
    return total


def _multires_width(features: int) -> tuple[int, int]:
    parts = [max(1, int(MULTIRES_ALPHA * features * fraction)) for fraction in MULTIRES_SPLIT]
    return sum(parts), 2 * sum(parts)


def _multires_block(in_channels: int, features: int, voxels: int, pooled_voxels: int | None) -> int:
    width, conv_maps = _multires_width(features)
    total = conv_maps * voxels + 2 * width * voxels  # three conv-norm-acts; activation and norm outputs
    if in_channels != width:
        total += width * voxels + (in_channels * pooled_voxels if pooled_voxels is not None else 0)
    return total


@_counter("multires")
def _multires(voxels, features, n_conv, n_conv_decoder, kwargs) -> int:
    total, channels = 0, 1
    for s, (f, v) in enumerate(zip(features, voxels)):
        total += _multires_block(channels, f, v, v if s > 0 else None)
        channels = _multires_width(f)[0]
    for s, d in _decoder_levels(len(features)):
        f, v, length = features[d], voxels[d], s + 1
        total += (4 * length - 1) * f * v  # Res path: 3 maps per unit, and each unit's output but the last
        total += 2 * f * v + _multires_block(2 * f, f, v, None)
    return total


@_counter("vnet")
def _vnet(voxels, features, n_conv, n_conv_decoder, kwargs) -> int:
    total, channels = 0, 1
    for s, (n, f, v) in enumerate(zip(n_conv, features, voxels)):
        total += (3 * n - 1) * f * v + 2 * f * v  # convs (norm and PReLU inputs, outputs), sum and PReLU output
        if s > 0:
            total += 3 * f * v  # down-convolution with norm and PReLU
        elif channels != f:
            total += f * v  # 1x1 projection of the input
        channels = f
    for s, d in _decoder_levels(len(features)):
        f, v = features[d], voxels[d]
        total += 2 * f * v + 2 * f * v + (3 * n_conv_decoder[s] - 1) * f * v + 2 * f * v  # up, concat, convs, sum
    return total


def saved_activation_size(
    network: str,
    patch_size: Sequence[int],
    features_per_stage: Sequence[int],
    strides: Sequence[Sequence[int]],
    n_conv_per_stage: Sequence[int],
    n_conv_per_stage_decoder: Sequence[int],
    network_kwargs: Mapping[str, Any] | None = None,
) -> int:
    """Elements of the feature maps a family's network keeps for the backward pass, for one sample.

    Rule: the per-block counts in the module docstring, summed over the family's blocks (the network input and
    the segmentation outputs are left out).

    Parameters
    ----------
    network : str
        A family with a counting rule (:func:`families_with_counts`).
    patch_size, features_per_stage, strides, n_conv_per_stage, n_conv_per_stage_decoder
        The topology (``strides[0]`` is the stem).
    network_kwargs : mapping, optional
        The family's options (``recurrent_steps``, ``layers_per_block``, ``growth_rate``, ``rates``).

    Returns
    -------
    int

    Raises
    ------
    KeyError
        For a family without a counting rule.

    Examples
    --------
    The Hippocampus 3d_fullres network keeps about twice its proxy (19174400):

    >>> topology = ((40, 56, 40), (32, 64, 128, 256), [(1, 1, 1)] + [(2, 2, 2)] * 3, (2, 2, 2, 2), (2, 2, 2))
    >>> saved_activation_size("unet", *topology), saved_activation_size("unetpp", *topology)
    (37811200, 85836800)
    """
    if network not in _COUNTERS:
        raise KeyError(f"no memory counting rule for network family {network!r}; available: {', '.join(sorted(_COUNTERS))}")
    voxels = _stage_voxels(patch_size, strides)
    counts = [int(c) for c in n_conv_per_stage], [int(c) for c in n_conv_per_stage_decoder]
    features = [int(f) for f in features_per_stage]
    return int(_COUNTERS[network](voxels, features, counts[0], counts[1], dict(network_kwargs or {})))


def families_with_counts() -> list[str]:
    """Families :func:`saved_activation_size` can count.

    Examples
    --------
    >>> families_with_counts()[:3]
    ['attention', 'denseunet', 'dilated']
    """
    return sorted(_COUNTERS)


def relative_memory(
    network: str,
    patch_size: Sequence[int],
    features_per_stage: Sequence[int],
    strides: Sequence[Sequence[int]],
    n_conv_per_stage: Sequence[int],
    n_conv_per_stage_decoder: Sequence[int],
    network_kwargs: Mapping[str, Any] | None = None,
) -> float:
    """``saved(network) / saved("unet")`` for one topology: the family's memory in multiples of the plain U-Net.

    Examples
    --------
    >>> topology = ((40, 56, 40), (32, 64, 128, 256), [(1, 1, 1)] + [(2, 2, 2)] * 3, (2, 2, 2, 2), (2, 2, 2))
    >>> round(relative_memory("unetpp", *topology), 2)
    2.27
    """
    topology = (patch_size, features_per_stage, strides, n_conv_per_stage, n_conv_per_stage_decoder)
    family = saved_activation_size(network, *topology, network_kwargs=network_kwargs)
    return family / saved_activation_size("unet", *topology)


def _register(name: str) -> None:
    @register_memory_estimator(name)
    def estimate(
        patch_size: Sequence[int],
        features_per_stage: Sequence[int],
        strides: Sequence[Sequence[int]],
        n_conv_per_stage: Sequence[int],
        n_conv_per_stage_decoder: Sequence[int],
        num_classes: int,
        network_kwargs: Mapping[str, Any],
    ) -> float:
        proxy = unet_feature_map_size(
            patch_size, features_per_stage, strides, n_conv_per_stage, n_conv_per_stage_decoder, num_classes
        )
        return proxy * relative_memory(
            name, patch_size, features_per_stage, strides, n_conv_per_stage, n_conv_per_stage_decoder, network_kwargs
        )


for _name in families_with_counts():
    if _name != "unet":  # the U-Net proxy itself is registered by autounet.planners.memory
        _register(_name)
