"""The family "denseunet": a U-Net whose stages are dense blocks (FC-DenseNet style).

Follows Jégou et al., "The one hundred layers tiramisu: fully convolutional DenseNets for semantic
segmentation", CVPR workshops 2017 (FC-DenseNet): each layer of a dense block sees the concatenation of the
block's input and of every earlier layer's output and adds ``growth_rate`` new channels; transition-down
layers reduce resolution, transition-up layers upsample, and the decoder concatenates the encoder skips.
(H-DenseUNet, Li et al. 2018, uses a DenseNet-161 encoder with an additive decoder; it is *not* what this
family builds.)

Adapted to the planned topology: transition down is a strided conv -> instance norm -> LeakyReLU with the
planned kernel and stride (FC-DenseNet: 1x1 conv + max pooling); each stage then runs a dense block of
``layers_per_block`` conv-norm-act layers with the planned kernel and closes with a 1x1 conv-norm-act
compression back to ``features_per_stage[s]`` channels (DenseNet-BC's transition), so skips and decoder have
the planned widths. The decoder upsamples with a transposed convolution (FC-DenseNet's transition up),
concatenates the skip and runs a dense block of the same kind. The paper's dropout is left out.
Family options (``network_kwargs``): ``layers_per_block`` (default 4) and ``growth_rate`` (default the stage's
features, so a block of 4 layers widens its input fivefold before the compression). A quarter of the features
(2 channels per layer in an 8-wide first stage) learned neither Hippocampus label in 600 iterations; growth equal
to the width lowered the training loss of 260 iterations from 1.15 to 0.90 (docs/benchmarks.md, "Network families").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from autounet.errors import PlansError
from autounet.networks.block_decoder import BlockDecoder
from autounet.networks.blocks import ConvNormAct
from autounet.networks.encoders import Encoder
from autounet.networks.registry import register_network
from autounet.networks.segmentation_network import SegmentationNetwork
from autounet.networks.topology import validate_topology

LAYERS_PER_BLOCK = 4
"""Dense layers per block; FC-DenseNet-56 uses 4 in every block."""

GROWTH_DIVISOR = 1
"""Default growth rate = stage features // 1: each dense layer adds as many channels as the stage has."""


def default_growth_rate(features: int) -> int:
    """Growth rate of a dense block with ``features`` output channels when none is given.

    Examples
    --------
    >>> default_growth_rate(32), default_growth_rate(2)
    (32, 2)
    """
    return max(1, features // GROWTH_DIVISOR)


class DenseBlock(nn.Module):
    """``n_layers`` conv-norm-act layers, each on the concatenation of everything before; returns it all.

    Output channels: ``in_channels + n_layers * growth_rate``.

    Examples
    --------
    >>> block = DenseBlock(4, 2, 3, (3, 3))
    >>> block(torch.zeros(1, 4, 8, 8)).shape, block.out_channels
    (torch.Size([1, 10, 8, 8]), 10)
    """

    def __init__(self, in_channels: int, growth_rate: int, n_layers: int, kernel_size: Sequence[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            ConvNormAct(in_channels + i * growth_rate, growth_rate, kernel_size) for i in range(n_layers)
        )
        self.out_channels = in_channels + n_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1) if len(features) > 1 else x))
        return torch.cat(features, dim=1)


class DenseStage(nn.Sequential):
    """Optional strided entry conv, a :class:`DenseBlock` and a 1x1 compression to ``out_channels``.

    Examples
    --------
    >>> stage = DenseStage(1, 4, (3, 3), (2, 2), n_layers=2, growth_rate=2)
    >>> stage(torch.zeros(1, 1, 8, 8)).shape
    torch.Size([1, 4, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        stride: Sequence[int] | None,
        n_layers: int,
        growth_rate: int,
        entry: bool = True,
    ) -> None:
        layers: list[nn.Module] = []
        channels = in_channels
        if entry:
            layers.append(ConvNormAct(in_channels, out_channels, kernel_size, stride))
            channels = out_channels
        block = DenseBlock(channels, growth_rate, n_layers, kernel_size)
        layers += [block, ConvNormAct(block.out_channels, out_channels, (1,) * len(kernel_size))]
        super().__init__(*layers)
        self.out_channels = out_channels


def _per_stage(value: Sequence[int] | int | None, n_stages: int, name: str, default: Sequence[int]) -> tuple[int, ...]:
    if value is None:
        return tuple(default)
    values = (int(value),) * n_stages if isinstance(value, int) else tuple(int(v) for v in value)
    if len(values) != n_stages or any(v < 1 for v in values):
        raise PlansError(f"{name} = {list(values)}; pass one positive int, or one per stage ({n_stages})")
    return values


@register_network("denseunet")
class DenseUNet(SegmentationNetwork):
    """U-Net of dense blocks; the common constructor of :class:`~autounet.networks.unet.UNet`.

    ``n_conv_per_stage`` and ``n_conv_per_stage_decoder`` are validated but the depth of each block is
    ``layers_per_block``.

    Parameters
    ----------
    layers_per_block : int, optional
        Dense layers per block (encoder and decoder), default 4.
    growth_rate : int or sequence of int, optional
        New channels per dense layer, one value or one per stage; default ``features_per_stage[s]``.

    Examples
    --------
    >>> net = DenseUNet(1, 3, [4, 8, 16], [[1, 3, 3], [3, 3, 3], [3, 3, 3]], [[1, 1, 1], [1, 2, 2], [2, 2, 2]])
    >>> [tuple(o.shape) for o in net(torch.zeros(1, 1, 8, 16, 16))]
    [(1, 3, 8, 16, 16), (1, 3, 8, 8, 8)]
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        features_per_stage: Sequence[int],
        kernel_sizes: Sequence[Sequence[int]],
        strides: Sequence[Sequence[int]],
        n_conv_per_stage: Sequence[int] | int = 2,
        n_conv_per_stage_decoder: Sequence[int] | int = 2,
        deep_supervision: bool = True,
        layers_per_block: int = LAYERS_PER_BLOCK,
        growth_rate: Sequence[int] | int | None = None,
    ) -> None:
        topology = validate_topology(features_per_stage, kernel_sizes, strides, n_conv_per_stage, n_conv_per_stage_decoder)
        n_layers = int(layers_per_block)
        if n_layers < 1:
            raise PlansError(f"layers_per_block = {layers_per_block}; use at least 1 dense layer per block")
        growth = _per_stage(
            growth_rate, topology.n_stages, "growth_rate", [default_growth_rate(f) for f in topology.features_per_stage]
        )
        stages = []
        channels = in_channels
        for features, kernel, stride, rate in zip(
            topology.features_per_stage, topology.kernel_sizes, topology.strides, growth
        ):
            stages.append(DenseStage(channels, features, kernel, stride, n_layers, rate))
            channels = features
        decoder_growth = iter(growth[-2::-1])  # BlockDecoder builds its stages deepest first

        def make_stage(n_convs: int, stage_in: int, stage_out: int, kernel: tuple[int, ...]) -> nn.Module:
            return DenseStage(stage_in, stage_out, kernel, None, n_layers, next(decoder_growth), entry=False)

        encoder = Encoder(stages, topology.features_per_stage)
        decoder = BlockDecoder(encoder.output_channels, topology, num_classes, deep_supervision, make_stage=make_stage)
        super().__init__(encoder, decoder, topology, in_channels, num_classes)
