"""The family "attention": Attention U-Net, additive attention gates on the skip connections.

Follows Oktay et al., "Attention U-Net: Learning where to look for the pancreas", MIDL 2018 (grid attention
gates as in the authors' code, ``GridAttentionBlock``): for a skip ``x`` and the coarser decoder features ``g``
(the gating signal), ``q = ReLU(W_x x + W_g g + b_g)`` with ``W_x`` a strided convolution that brings ``x`` to
the resolution of ``g``, ``alpha = sigmoid(psi q + b_psi)`` (one channel), resampled (bi/trilinear) to the skip's
resolution, and the decoder concatenates ``alpha * x`` instead of ``x``.

Adapted to the planned topology: the gate's ``W_x`` has kernel = stride = the planned stride of the decoder
stage, so anisotropic strides such as ``(1, 2, 2)`` work; the intermediate width is half the skip's channels
(as in the paper). Encoder and decoder are those of ``unet`` (instance norm, LeakyReLU, strided-conv
downsampling, transposed-conv upsampling); the paper's batch norm after the gate is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from autounet.networks.block_decoder import BlockDecoder
from autounet.networks.blocks import conv_class, make_conv
from autounet.networks.encoders import plain_encoder
from autounet.networks.registry import register_network
from autounet.networks.segmentation_network import SegmentationNetwork
from autounet.networks.topology import validate_topology

_INTERPOLATION = {2: "bilinear", 3: "trilinear"}


class AttentionGate(nn.Module):
    """Additive attention gate: scale a skip ``(N, C_x, *spatial)`` by coefficients in [0, 1] computed with ``g``.

    Parameters
    ----------
    skip_channels, gating_channels : int
        Channels of the skip ``x`` and of the gating signal ``g``.
    stride : sequence of int
        Size ratio of ``x`` to ``g`` per axis (the planned stride between the two levels).
    inter_channels : int, optional
        Width of the additive attention; default half the skip's channels.

    Examples
    --------
    >>> gate = AttentionGate(4, 8, (2, 2))
    >>> x, g = torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)
    >>> alpha = gate.attention(x, g)
    >>> tuple(alpha.shape), bool(alpha.min() >= 0) and bool(alpha.max() <= 1), gate(x, g).shape
    ((1, 1, 8, 8), True, torch.Size([1, 4, 8, 8]))
    """

    def __init__(
        self, skip_channels: int, gating_channels: int, stride: Sequence[int], inter_channels: int | None = None
    ) -> None:
        super().__init__()
        inter = inter_channels or max(1, skip_channels // 2)
        ones = (1,) * len(stride)
        # W_x: kernel = stride, no padding (the paper's sub-sampling convolution), so its output has g's size.
        self.theta = conv_class(len(stride))(skip_channels, inter, tuple(stride), tuple(stride), bias=False)
        self.phi = make_conv(gating_channels, inter, ones)
        self.psi = make_conv(inter, 1, ones)
        self.stride = tuple(stride)

    def attention(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """Attention coefficients ``(N, 1, *skip_spatial)`` in [0, 1], in the skip's dtype."""
        q = F.relu(self.theta(skip) + self.phi(gate))
        alpha = torch.sigmoid(self.psi(q))
        if any(s != 1 for s in self.stride):
            alpha = F.interpolate(alpha, size=skip.shape[2:], mode=_INTERPOLATION[skip.ndim - 2], align_corners=False)
        return alpha.to(skip.dtype)

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return skip * self.attention(skip, gate)


@register_network("attention")
class AttentionUNet(SegmentationNetwork):
    """The plain U-Net with an :class:`AttentionGate` on every skip; the common constructor of ``unet``.

    Examples
    --------
    >>> net = AttentionUNet(1, 3, [4, 8, 16], [[1, 3, 3], [3, 3, 3], [3, 3, 3]], [[1, 1, 1], [1, 2, 2], [2, 2, 2]])
    >>> [tuple(o.shape) for o in net(torch.zeros(1, 1, 8, 16, 16))]
    [(1, 3, 8, 16, 16), (1, 3, 8, 8, 8)]
    >>> len(net.decoder.skip_gates)
    2
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
        channels = encoder.output_channels
        gates = [
            AttentionGate(channels[-(s + 2)], channels[-(s + 1)], topology.strides[-(s + 1)])
            for s in range(topology.n_stages - 1)
        ]
        decoder = BlockDecoder(channels, topology, num_classes, deep_supervision, skip_gates=gates)
        super().__init__(encoder, decoder, topology, in_channels, num_classes)
