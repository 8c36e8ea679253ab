"""A U-Net decoder whose stage block, upsampler and skip treatment are chosen by the family that builds it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from autounet.networks.blocks import StackedConvs, conv_class, transposed_conv_class
from autounet.networks.topology import Topology

StageFactory = Callable[[int, int, int, tuple[int, ...]], nn.Module]
"""``make_stage(n_convs, in_channels, out_channels, kernel_size) -> module`` for one decoder stage."""

UpsamplerFactory = Callable[[int, int, tuple[int, ...]], nn.Module]
"""``make_upsampler(in_channels, out_channels, stride) -> module`` that enlarges by ``stride``."""


def plain_stage(n_convs: int, in_channels: int, out_channels: int, kernel_size: tuple[int, ...]) -> nn.Module:
    """The plain U-Net decoder stage: ``n_convs`` conv-norm-act blocks."""
    return StackedConvs(n_convs, in_channels, out_channels, kernel_size)


def transposed_upsampler(in_channels: int, out_channels: int, stride: tuple[int, ...]) -> nn.Module:
    """The plain U-Net upsampler: a transposed convolution with kernel = stride."""
    return transposed_conv_class(len(stride))(in_channels, out_channels, stride, stride, bias=True)


class BlockDecoder(nn.Module):
    """U-Net decoder (as :class:`~autounet.networks.decoder.UNetDecoder`) with pluggable parts.

    Decoder stage ``s`` (``s = 0`` is the deepest) upsamples the features from below by
    ``topology.strides[-(s + 1)]``, optionally passes the matching encoder skip through ``skip_gates[s]``
    (called as ``gate(skip, below)``, where ``below`` is the not yet upsampled input of the stage, e.g. the
    gating signal of an attention gate), concatenates ``(upsampled, skip)`` and applies the stage block. With the
    defaults it is the plain U-Net decoder, parameter for parameter.

    Parameters
    ----------
    encoder_channels : sequence of int
        Channels of each encoder skip, shallowest first.
    topology : Topology
        Kernels, strides and decoder conv counts.
    num_classes : int
        Output channels of each segmentation head.
    deep_supervision : bool
        Return one logit map per decoder stage (full resolution first) instead of one tensor.
    make_stage : callable, optional
        Builds stage ``s`` as ``make_stage(n_conv_per_stage_decoder[s], 2 * skip_channels, skip_channels,
        kernel)``, called once per stage, deepest first; default :func:`plain_stage`.
    make_upsampler : callable, optional
        ``make_upsampler(below_channels, skip_channels, stride)``; default :func:`transposed_upsampler`.
    skip_gates : sequence of nn.Module, optional
        One module per decoder stage (deepest first) applied to the skip before concatenation.
    skip_channels : sequence of int, optional
        Channels of each skip after its gate, shallowest first; default ``encoder_channels`` (gates that keep
        the width). A stage may return more channels than its skip; it then says so in an ``out_channels``
        attribute, which sizes the next upsampler and the head.

    Examples
    --------
    >>> from autounet.networks.topology import validate_topology
    >>> topo = validate_topology([4, 8], [[3, 3], [3, 3]], [[1, 1], [2, 2]])
    >>> decoder = BlockDecoder([4, 8], topo, num_classes=3, deep_supervision=False)
    >>> decoder([torch.zeros(1, 4, 8, 8), torch.zeros(1, 8, 4, 4)]).shape
    torch.Size([1, 3, 8, 8])
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        topology: Topology,
        num_classes: int,
        deep_supervision: bool = True,
        make_stage: StageFactory = plain_stage,
        make_upsampler: UpsamplerFactory = transposed_upsampler,
        skip_gates: Sequence[nn.Module] | None = None,
        skip_channels: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.deep_supervision = deep_supervision
        conv = conv_class(topology.spatial_dims)
        ones = (1,) * topology.spatial_dims
        skip_widths = tuple(skip_channels) if skip_channels is not None else tuple(encoder_channels)
        upsamplers, stages, heads = [], [], []
        below = encoder_channels[-1]
        for s in range(topology.n_stages - 1):
            skip = skip_widths[-(s + 2)]
            upsamplers.append(make_upsampler(below, skip, topology.strides[-(s + 1)]))
            stage = make_stage(topology.n_conv_per_stage_decoder[s], 2 * skip, skip, topology.kernel_sizes[-(s + 2)])
            below = int(getattr(stage, "out_channels", skip))
            stages.append(stage)
            heads.append(conv(below, num_classes, ones, ones, bias=True))
        self.upsamplers = nn.ModuleList(upsamplers)
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList(heads)
        if skip_gates is not None and len(skip_gates) != len(stages):
            raise ValueError(f"got {len(skip_gates)} skip_gates for {len(stages)} decoder stages; pass one per stage")
        self.skip_gates = nn.ModuleList(skip_gates) if skip_gates is not None else None

    def forward(self, skips: Sequence[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        x = skips[-1]
        outputs = []
        last = len(self.stages) - 1
        for s, (upsample, stage, head) in enumerate(zip(self.upsamplers, self.stages, self.heads)):
            skip = skips[-(s + 2)]
            if self.skip_gates is not None:
                skip = self.skip_gates[s](skip, x)
            x = stage(torch.cat((upsample(x), skip), dim=1))
            if self.deep_supervision or s == last:
                outputs.append(head(x))
        if not self.deep_supervision:
            return outputs[-1]
        return outputs[::-1]
