"""The family "vnet": V-Net, residual stages of 5x5x5 convolutions with PReLU.

Follows Milletari, Navab and Ahmadi, "V-Net: Fully convolutional neural networks for volumetric medical image
segmentation", 3DV 2016 (and the widely used PyTorch port ``mattmacy/vnet.pytorch``): every stage applies one
to three 5x5x5 convolutions with PReLU and adds the stage's input to the result (residual function);
resolution is reduced by a 2x2x2 convolution with stride 2 and increased by a 2x2x2 transposed convolution,
each followed by PReLU; the decoder concatenates the encoder features of the same level.

Adapted to the planned topology: the kernel is 5 where the plan has 3 (any kernel >= 3 becomes at least 5) and
1 where the plan has 1, so anisotropic stages stay in-plane (:func:`vnet_kernel`); 2D plans get 5x5 kernels.
Down- and up-sampling convolutions have kernel = stride = the planned stride. Stage ``s`` has
``n_conv_per_stage[s]`` convolutions (decoder: ``n_conv_per_stage_decoder[s]``; the paper uses 1, 2, 3, 3, 3
and 3, 3, 2, 1). Each convolution is followed by instance norm (the paper has no normalisation; its common
ports use batch norm) and channel-wise PReLU, the paper's non-linearity. The first stage's residual is a 1x1
projection of the input (the paper broadcasts the one-channel input to 16 channels). A decoder stage reduces
the concatenation to the skip's width and adds the upsampled features as its residual.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from autounet.networks.block_decoder import BlockDecoder
from autounet.networks.blocks import conv_class, make_conv, make_norm, projection_skip, transposed_conv_class
from autounet.networks.encoders import Encoder
from autounet.networks.registry import register_network
from autounet.networks.segmentation_network import SegmentationNetwork
from autounet.networks.topology import validate_topology

VNET_KERNEL = 5
"""V-Net's convolution size (5x5x5 volumetric kernels, Milletari et al. 2016)."""


def vnet_kernel(kernel_size: Sequence[int]) -> tuple[int, ...]:
    """The V-Net kernel for a planned kernel: 1 stays 1, anything larger becomes at least 5.

    Examples
    --------
    >>> vnet_kernel((1, 3, 3)), vnet_kernel((3, 3))
    ((1, 5, 5), (5, 5))
    """
    return tuple(1 if k == 1 else max(int(k), VNET_KERNEL) for k in kernel_size)


class ConvNormPReLU(nn.Sequential):
    """Convolution -> instance norm -> channel-wise PReLU (the activation can be left out)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        stride: Sequence[int] | None = None,
        activation: bool = True,
    ) -> None:
        layers = [make_conv(in_channels, out_channels, kernel_size, stride), make_norm(out_channels)]
        if activation:
            layers.append(nn.PReLU(out_channels))
        super().__init__(*layers)


class _StridedConvNormPReLU(nn.Sequential):
    """Down-sampling: convolution with kernel = stride (no padding) -> instance norm -> PReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: Sequence[int]) -> None:
        conv = conv_class(len(stride))(in_channels, out_channels, tuple(stride), tuple(stride))
        super().__init__(conv, make_norm(out_channels), nn.PReLU(out_channels))


class VNetStage(nn.Module):
    """Encoder stage: optional down-conv, ``n_convs`` 5x5x5 conv-norm-PReLU, residual sum, PReLU.

    Examples
    --------
    >>> stage = VNetStage(2, 4, 8, (3, 3, 3), (2, 2, 2))
    >>> stage(torch.zeros(1, 4, 8, 8, 8)).shape, stage.convs[0][0].kernel_size
    (torch.Size([1, 8, 4, 4, 4]), (5, 5, 5))
    """

    def __init__(
        self, n_convs: int, in_channels: int, out_channels: int, kernel_size: Sequence[int], stride: Sequence[int]
    ) -> None:
        super().__init__()
        kernel = vnet_kernel(kernel_size)
        if any(s != 1 for s in stride):
            self.down: nn.Module = _StridedConvNormPReLU(in_channels, out_channels, stride)
            self.skip: nn.Module = nn.Identity()
            channels = out_channels
        else:
            self.down = nn.Identity()
            self.skip = projection_skip(in_channels, out_channels, stride)
            channels = in_channels
        convs = [ConvNormPReLU(channels if i == 0 else out_channels, out_channels, kernel) for i in range(n_convs)]
        self.convs = nn.Sequential(*convs)
        self.activation = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return self.activation(self.convs(x) + self.skip(x))


class VNetDecoderStage(nn.Module):
    """Decoder stage on ``concat(upsampled, skip)``: ``n_convs`` convs to ``out_channels``, plus the upsampled part."""

    def __init__(self, n_convs: int, in_channels: int, out_channels: int, kernel_size: Sequence[int]) -> None:
        super().__init__()
        kernel = vnet_kernel(kernel_size)
        self.convs = nn.Sequential(
            *(ConvNormPReLU(in_channels if i == 0 else out_channels, out_channels, kernel) for i in range(n_convs))
        )
        self.activation = nn.PReLU(out_channels)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BlockDecoder concatenates (upsampled, skip): the first out_channels channels are the upsampled features.
        return self.activation(self.convs(x) + x[:, : self.out_channels])


def _upsampler(in_channels: int, out_channels: int, stride: tuple[int, ...]) -> nn.Module:
    """Transposed convolution (kernel = stride) -> instance norm -> PReLU, as V-Net's up-convolution."""
    up = transposed_conv_class(len(stride))(in_channels, out_channels, stride, stride, bias=True)
    return nn.Sequential(up, make_norm(out_channels), nn.PReLU(out_channels))


@register_network("vnet")
class VNet(SegmentationNetwork):
    """V-Net with the common constructor of :class:`~autounet.networks.unet.UNet`.

    Examples
    --------
    >>> net = VNet(1, 3, [4, 8, 16], [[1, 3, 3], [3, 3, 3], [3, 3, 3]], [[1, 1, 1], [1, 2, 2], [2, 2, 2]])
    >>> [tuple(o.shape) for o in net(torch.zeros(1, 1, 8, 16, 16))]
    [(1, 3, 8, 16, 16), (1, 3, 8, 8, 8)]
    >>> net.encoder.stages[0].convs[0][0].kernel_size
    (1, 5, 5)
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
        for features, kernel, stride, n_convs in zip(
            topology.features_per_stage, topology.kernel_sizes, topology.strides, topology.n_conv_per_stage
        ):
            stages.append(VNetStage(n_convs, channels, features, kernel, stride))
            channels = features
        encoder = Encoder(stages, topology.features_per_stage)
        decoder = BlockDecoder(
            encoder.output_channels, topology, num_classes, deep_supervision,
            make_stage=VNetDecoderStage, make_upsampler=_upsampler,
        )
        super().__init__(encoder, decoder, topology, in_channels, num_classes)
