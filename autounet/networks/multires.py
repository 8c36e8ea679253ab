"""The family "multires": MultiResUNet, MultiRes blocks in encoder and decoder and Res paths on the skips.

Follows Ibtehaz and Rahman, "MultiResUNet: Rethinking the U-Net architecture for multimodal biomedical image
segmentation", Neural Networks 121, 2020 (and the authors' Keras code). A MultiRes block chains three 3x3
convolutions with about 1/6, 1/3 and 1/2 of its width ``W`` (the chain emulates 3x3, 5x5 and 7x7 receptive
fields), concatenates them, adds a 1x1-projected shortcut and applies activation then norm. A Res
path replaces each skip connection by a chain of (3x3 conv + 1x1 shortcut, add, activation, norm) units; the
shallowest skip gets the longest chain (4, 3, 2, 1 in the paper's five-level network).

Adapted to the planned topology: ``U = features_per_stage[s]``, ``W = 1.67 U`` split ``int(0.167 W)``,
``int(0.333 W)``, ``int(0.5 W)`` (51 channels for U = 32, as in the paper); a Res path reduces a skip to ``U``
channels and the decoder upsamples to ``U`` channels, so each decoder block sees ``2 U`` channels as in the
paper. The planned kernel replaces 3x3 (e.g. 1x3x3 on anisotropic stages). The first convolution of an encoder
block is strided (strided-conv downsampling instead of max pooling) and the shortcut average-pools before its
1x1 projection. The Res path at depth ``i`` has ``n_stages - 1 - i`` units. One MultiRes block per stage:
``n_conv_per_stage`` is validated but not used. The paper's batch norm of the concatenation is left out: each of
the three outputs is already normalised, and a second instance norm would make the scale of a branch's norm
weight invisible to the loss (zero gradient). Instance norm and LeakyReLU replace batch norm and ReLU;
upsampling is a transposed convolution as in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from autounet.networks.block_decoder import BlockDecoder
from autounet.networks.blocks import ConvNormAct, make_activation, make_norm, projection_skip
from autounet.networks.encoders import Encoder
from autounet.networks.registry import register_network
from autounet.networks.segmentation_network import SegmentationNetwork
from autounet.networks.topology import validate_topology

MULTIRES_ALPHA = 1.67
"""The paper's width factor: a block for U-Net width ``U`` has ``W = 1.67 U`` channels, chosen so that the
network has about the parameters of a U-Net of widths ``U``."""

_SPLIT = (0.167, 0.333, 0.5)
"""Fractions of ``W`` of the three chained convolutions, as in the authors' code."""


def multires_split(features: int, alpha: float = MULTIRES_ALPHA) -> tuple[int, int, int]:
    """Channels of the three chained convolutions of a MultiRes block for planned width ``features``.

    ``int(W * f)`` for ``W = alpha * features`` and ``f`` = 0.167, 0.333, 0.5 (at least 1 each); the block's
    output has their sum.

    Examples
    --------
    >>> multires_split(32), sum(multires_split(32)), multires_split(4)
    ((8, 17, 26), 51, (1, 2, 3))
    """
    width = alpha * features
    return tuple(max(1, int(width * fraction)) for fraction in _SPLIT)  # type: ignore[return-value]


class MultiResBlock(nn.Module):
    """Three chained convs (:func:`multires_split` of ``features``), concatenated, plus a 1x1 shortcut.

    Returns ``out_channels`` (about 1.67 ``features``) channels.

    Examples
    --------
    >>> block = MultiResBlock(1, 8, (3, 3, 3), (2, 2, 2))
    >>> block(torch.zeros(1, 1, 8, 8, 8)).shape, block.out_channels
    (torch.Size([1, 12, 4, 4, 4]), 12)
    """

    def __init__(
        self, in_channels: int, features: int, kernel_size: Sequence[int], stride: Sequence[int] | None = None
    ) -> None:
        super().__init__()
        stride = tuple(stride) if stride is not None else (1,) * len(kernel_size)
        first, second, third = multires_split(features)
        out_channels = first + second + third
        self.conv1 = ConvNormAct(in_channels, first, kernel_size, stride)
        self.conv2 = ConvNormAct(first, second, kernel_size)
        self.conv3 = ConvNormAct(second, third, kernel_size)
        self.shortcut = projection_skip(in_channels, out_channels, stride)
        self.activation = make_activation()
        self.out_norm = make_norm(out_channels)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv1(x)
        b = self.conv2(a)
        c = self.conv3(b)
        out = torch.cat((a, b, c), dim=1) + self.shortcut(x)
        return self.out_norm(self.activation(out))


class ResPathUnit(nn.Module):
    """One unit of a Res path: ``norm(act(conv_norm(x) + conv1x1_norm(x)))``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Sequence[int]) -> None:
        super().__init__()
        self.conv = ConvNormAct(in_channels, out_channels, kernel_size, activation=False)
        self.shortcut = ConvNormAct(in_channels, out_channels, (1,) * len(kernel_size), activation=False)
        self.activation = make_activation()
        self.norm = make_norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.activation(self.conv(x) + self.shortcut(x)))


class ResPath(nn.Sequential):
    """``length`` :class:`ResPathUnit` s on a skip, the first reducing it to ``out_channels``.

    Called by the decoder as ``path(skip, below)`` (``below`` is not used).

    Examples
    --------
    >>> path = ResPath(6, 4, (3, 3), length=2)
    >>> path(torch.zeros(1, 6, 8, 8), None).shape
    torch.Size([1, 4, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Sequence[int], length: int) -> None:
        super().__init__(
            *(ResPathUnit(in_channels if i == 0 else out_channels, out_channels, kernel_size) for i in range(length))
        )

    def forward(self, skip: torch.Tensor, below: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        return super().forward(skip)


def multires_stage(n_convs: int, in_channels: int, features: int, kernel_size: tuple[int, ...]) -> nn.Module:
    """A decoder stage: one MultiRes block for width ``features`` (``n_convs`` is not used)."""
    return MultiResBlock(in_channels, features, kernel_size)


@register_network("multires")
class MultiResUNet(SegmentationNetwork):
    """MultiResUNet; the common constructor of :class:`~autounet.networks.unet.UNet`.

    Examples
    --------
    >>> net = MultiResUNet(1, 3, [4, 8, 16], [[1, 3, 3], [3, 3, 3], [3, 3, 3]], [[1, 1, 1], [1, 2, 2], [2, 2, 2]])
    >>> [tuple(o.shape) for o in net(torch.zeros(1, 1, 8, 16, 16))]
    [(1, 3, 8, 16, 16), (1, 3, 8, 8, 8)]
    >>> [len(path) for path in net.decoder.skip_gates]  # deepest skip first
    [1, 2]
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
    ) -> None:
        topology = validate_topology(features_per_stage, kernel_sizes, strides, n_conv_per_stage, n_conv_per_stage_decoder)
        stages = []
        channels = in_channels
        for features, kernel, stride in zip(topology.features_per_stage, topology.kernel_sizes, topology.strides):
            stages.append(MultiResBlock(channels, features, kernel, stride))
            channels = stages[-1].out_channels
        encoder = Encoder(stages, [stage.out_channels for stage in stages])
        n = topology.n_stages
        paths = [  # decoder stage s (deepest first) takes the skip of depth d = n - 2 - s; its path has s + 1 units
            ResPath(encoder.output_channels[d], topology.features_per_stage[d], topology.kernel_sizes[d], length=s + 1)
            for s, d in enumerate(range(n - 2, -1, -1))
        ]
        decoder = BlockDecoder(
            encoder.output_channels, topology, num_classes, deep_supervision, make_stage=multires_stage,
            skip_gates=paths, skip_channels=topology.features_per_stage,
        )
        super().__init__(encoder, decoder, topology, in_channels, num_classes)
