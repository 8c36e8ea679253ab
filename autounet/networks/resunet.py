"""The family "resunet": residual units in the encoder and the decoder (ResUNet).

Follows Zhang, Liu and Wang, "Road extraction by deep residual U-Net", IEEE GRSL 2018, and Kerfoot et al.,
"Left-ventricle quantification using residual U-Net", STACOM 2018 (MONAI's ``UNet`` with residual units).

Adapted to the planned topology: every encoder stage and every decoder stage is one residual unit of
``n_conv_per_stage[s]`` (``n_conv_per_stage_decoder[s]``) conv -> instance norm -> LeakyReLU blocks with the
planned kernel; the first conv of an encoder unit is strided (strided-conv downsampling, as Zhang et al.) and
its skip path average-pools by the stride before a 1x1 projection (ResNet-D, so no voxels are dropped).
Post-activation (activation after the sum) as in Kerfoot et al.; Zhang et al. use pre-activation units with
batch norm. Upsampling is a transposed convolution and skips are concatenated, as in ``unet``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from autounet.networks.block_decoder import BlockDecoder
from autounet.networks.blocks import ResidualUnit
from autounet.networks.encoders import Encoder
from autounet.networks.registry import register_network
from autounet.networks.segmentation_network import SegmentationNetwork
from autounet.networks.topology import validate_topology


def residual_stage(n_convs: int, in_channels: int, out_channels: int, kernel_size: tuple[int, ...]) -> nn.Module:
    """A decoder stage of one residual unit."""
    return ResidualUnit(n_convs, in_channels, out_channels, kernel_size)


@register_network("resunet")
class ResUNet(SegmentationNetwork):
    """U-Net with residual units in encoder and decoder; the common constructor of :class:`~autounet.networks.unet.UNet`.

    Parameters
    ----------
    zero_init_residual : bool
        Zero the last norm of every residual unit at initialisation, so each unit starts as its skip path
        (default false: not yet measured on real data; see :func:`~autounet.networks.blocks.zero_norm`).

    Examples
    --------
    >>> import torch
    >>> net = ResUNet(1, 3, [4, 8, 16], [[1, 3, 3], [3, 3, 3], [3, 3, 3]], [[1, 1, 1], [1, 2, 2], [2, 2, 2]])
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
        zero_init_residual: bool = False,
    ) -> None:
        topology = validate_topology(features_per_stage, kernel_sizes, strides, n_conv_per_stage, n_conv_per_stage_decoder)
        stages = []
        channels = in_channels
        for features, kernel, stride, n_convs in zip(
            topology.features_per_stage, topology.kernel_sizes, topology.strides, topology.n_conv_per_stage
        ):
            stages.append(ResidualUnit(n_convs, channels, features, kernel, stride))
            channels = features
        encoder = Encoder(stages, topology.features_per_stage)
        decoder = BlockDecoder(encoder.output_channels, topology, num_classes, deep_supervision, make_stage=residual_stage)
        super().__init__(encoder, decoder, topology, in_channels, num_classes)
        self.zero_init_residual = bool(zero_init_residual)
