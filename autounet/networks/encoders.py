"""Encoders: a stack of stages that each return a skip feature map, shallowest first."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from autounet.errors import PlansError
from autounet.networks.blocks import StackedConvs, StackedResidualBlocks
from autounet.networks.topology import Topology

RESIDUAL_BLOCKS_PER_STAGE = (1, 3, 4, 6, 6, 6)
"""Residual blocks per encoder stage of nnU-Net's ResEnc presets; deeper stages repeat the last value."""


class Encoder(nn.Module):
    """Run ``stages`` in sequence and return every stage's output (the skips), shallowest first.

    Any family can build its own stages and wrap them in an ``Encoder``; the decoder only needs
    ``output_channels`` and the topology.

    Parameters
    ----------
    stages : sequence of nn.Module
        One module per resolution level; stage ``s`` downsamples by ``topology.strides[s]``.
    output_channels : sequence of int
        Channels each stage returns.
    """

    def __init__(self, stages: Sequence[nn.Module], output_channels: Sequence[int]) -> None:
        super().__init__()
        if len(stages) != len(output_channels):
            raise ValueError(f"got {len(stages)} stages but {len(output_channels)} output_channels; pass one per stage")
        self.stages = nn.ModuleList(stages)
        self.output_channels = tuple(output_channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        return skips


def plain_encoder(topology: Topology, in_channels: int) -> Encoder:
    """Encoder of ``n_conv_per_stage[s]`` conv-norm-act blocks per stage, the first one strided (PlainConvUNet).

    Examples
    --------
    >>> from autounet.networks.topology import validate_topology
    >>> topo = validate_topology([4, 8], [[3, 3], [3, 3]], [[1, 1], [2, 2]])
    >>> [s.shape[1:] for s in plain_encoder(topo, 1)(torch.zeros(1, 1, 8, 8))]
    [torch.Size([4, 8, 8]), torch.Size([8, 4, 4])]
    """
    stages = []
    channels = in_channels
    for features, kernel, stride, n_convs in zip(
        topology.features_per_stage, topology.kernel_sizes, topology.strides, topology.n_conv_per_stage
    ):
        stages.append(StackedConvs(n_convs, channels, features, kernel, stride))
        channels = features
    return Encoder(stages, topology.features_per_stage)


def residual_blocks_per_stage(n_stages: int, blocks: Sequence[int] | int | None = None) -> tuple[int, ...]:
    """Residual blocks per stage: nnU-Net's ResEnc default (1, 3, 4, 6, 6, 6, ...) truncated or padded to ``n_stages``.

    Examples
    --------
    >>> residual_blocks_per_stage(4), residual_blocks_per_stage(8)
    ((1, 3, 4, 6), (1, 3, 4, 6, 6, 6, 6, 6))
    >>> residual_blocks_per_stage(3, 2)
    (2, 2, 2)
    """
    if blocks is None:
        defaults = RESIDUAL_BLOCKS_PER_STAGE
        return tuple(defaults[min(s, len(defaults) - 1)] for s in range(n_stages))
    counts = (blocks,) * n_stages if isinstance(blocks, int) else tuple(int(b) for b in blocks)
    if len(counts) != n_stages or any(c < 1 for c in counts):
        raise PlansError(
            f"n_blocks_per_stage = {list(counts)} but the network has {n_stages} stages; "
            "pass one positive count per stage, a single int, or leave it out for the ResEnc default"
        )
    return counts


def residual_encoder(topology: Topology, in_channels: int, n_blocks_per_stage: Sequence[int] | int | None = None) -> Encoder:
    """Residual encoder (nnU-Net's ResidualEncoder): a one-conv stem, then basic residual blocks per stage.

    Examples
    --------
    >>> from autounet.networks.topology import validate_topology
    >>> topo = validate_topology([4, 8], [[3, 3], [3, 3]], [[1, 1], [2, 2]])
    >>> enc = residual_encoder(topo, 1)
    >>> [s.shape[1:] for s in enc(torch.zeros(1, 1, 8, 8))]
    [torch.Size([4, 8, 8]), torch.Size([8, 4, 4])]
    """
    blocks = residual_blocks_per_stage(topology.n_stages, n_blocks_per_stage)
    stem = StackedConvs(1, in_channels, topology.features_per_stage[0], topology.kernel_sizes[0])
    stages = []
    channels = topology.features_per_stage[0]
    for s, (features, kernel, stride) in enumerate(
        zip(topology.features_per_stage, topology.kernel_sizes, topology.strides)
    ):
        stage = StackedResidualBlocks(blocks[s], channels, features, kernel, stride)
        stages.append(nn.Sequential(stem, stage) if s == 0 else stage)
        channels = features
    return Encoder(stages, topology.features_per_stage)
