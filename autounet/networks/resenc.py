"""The family "resenc": nnU-Net's ResidualEncoderUNet (residual basic blocks in the encoder, plain decoder)."""

from __future__ import annotations

from collections.abc import Sequence

from autounet.networks.decoder import UNetDecoder
from autounet.networks.encoders import residual_encoder
from autounet.networks.registry import register_network
from autounet.networks.segmentation_network import SegmentationNetwork
from autounet.networks.topology import validate_topology


@register_network("resenc")
class ResEncUNet(SegmentationNetwork):
    """U-Net with a residual encoder, equivalent to nnU-Net's ``ResidualEncoderUNet``.

    Takes the common constructor arguments of :class:`~autounet.networks.unet.UNet`. The encoder is a one-conv
    stem followed by ``n_blocks_per_stage[s]`` basic residual blocks (two convs each) per stage, so
    ``n_conv_per_stage`` is validated but does not set the encoder depth.

    Parameters
    ----------
    n_blocks_per_stage : sequence of int or int, optional
        Residual blocks per encoder stage; default nnU-Net's (1, 3, 4, 6, 6, 6, ...) cut or padded to the stages.
    zero_init_residual : bool
        Zero the last norm of every residual block at initialisation, as nnU-Net does for this network
        (``init_last_bn_before_add_to_0``), so the encoder starts as its skip paths (default true).

    Examples
    --------
    >>> import torch
    >>> net = ResEncUNet(1, 2, [4, 8], [[3, 3], [3, 3]], [[1, 1], [2, 2]], deep_supervision=False)
    >>> net(torch.zeros(1, 1, 8, 8)).shape
    torch.Size([1, 2, 8, 8])
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
        n_blocks_per_stage: Sequence[int] | int | None = None,
        zero_init_residual: bool = True,
    ) -> None:
        topology = validate_topology(features_per_stage, kernel_sizes, strides, n_conv_per_stage, n_conv_per_stage_decoder)
        encoder = residual_encoder(topology, in_channels, n_blocks_per_stage)
        decoder = UNetDecoder(encoder.output_channels, topology, num_classes, deep_supervision)
        super().__init__(encoder, decoder, topology, in_channels, num_classes)
        self.zero_init_residual = bool(zero_init_residual)
