"""The default family "unet": nnU-Net's PlainConvUNet (strided-conv encoder, transposed-conv decoder)."""

from __future__ import annotations

from collections.abc import Sequence

from autounet.networks.decoder import UNetDecoder
from autounet.networks.encoders import plain_encoder
from autounet.networks.registry import register_network
from autounet.networks.segmentation_network import SegmentationNetwork
from autounet.networks.topology import validate_topology


@register_network("unet")
class UNet(SegmentationNetwork):
    """Plain convolutional U-Net, equivalent to nnU-Net's ``PlainConvUNet``.

    Parameters
    ----------
    in_channels : int
        Input image channels (modalities).
    num_classes : int
        Output channels (labels including background).
    features_per_stage : sequence of int
        Channels per encoder stage, shallowest first.
    kernel_sizes : sequence of sequence of int
        Kernel per stage; 2 axes build a 2D network, 3 a 3D one.
    strides : sequence of sequence of int
        Stride of the first conv of each stage; ``strides[0]`` is all ones.
    n_conv_per_stage : sequence of int or int
        Conv-norm-act blocks per encoder stage.
    n_conv_per_stage_decoder : sequence of int or int
        Conv-norm-act blocks per decoder stage, deepest first (``n_stages - 1`` entries).
    deep_supervision : bool
        Return a list of logits (full resolution first) instead of one tensor.

    Raises
    ------
    PlansError
        When the per-stage lists disagree (see :func:`~autounet.networks.topology.validate_topology`).

    Examples
    --------
    >>> import torch
    >>> net = UNet(1, 3, [4, 8, 16], [[1, 3, 3], [3, 3, 3], [3, 3, 3]], [[1, 1, 1], [1, 2, 2], [2, 2, 2]])
    >>> [tuple(o.shape) for o in net(torch.zeros(1, 1, 8, 16, 16))]
    [(1, 3, 8, 16, 16), (1, 3, 8, 8, 8)]
    >>> net.deep_supervision = False
    >>> net(torch.zeros(1, 1, 8, 16, 16)).shape
    torch.Size([1, 3, 8, 16, 16])
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
        encoder = plain_encoder(topology, in_channels)
        decoder = UNetDecoder(encoder.output_channels, topology, num_classes, deep_supervision)
        super().__init__(encoder, decoder, topology, in_channels, num_classes)
