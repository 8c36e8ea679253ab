"""U-Net decoder: transposed-conv upsampling, concatenation skips, conv stacks and 1x1 segmentation heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from autounet.networks.blocks import StackedConvs, conv_class, transposed_conv_class
from autounet.networks.topology import Topology


class UNetDecoder(nn.Module):
    """Plain U-Net decoder (nnU-Net's ``UNetDecoder``), usable behind any encoder.

    Decoder stage ``s`` (``s = 0`` is the deepest) upsamples by ``topology.strides[-(s + 1)]`` with a transposed
    convolution (kernel = stride), concatenates the matching encoder skip, applies
    ``topology.n_conv_per_stage_decoder[s]`` conv-norm-act blocks and, with deep supervision, a 1x1 head.

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

    Examples
    --------
    >>> from autounet.networks.topology import validate_topology
    >>> topo = validate_topology([4, 8], [[3, 3], [3, 3]], [[1, 1], [2, 2]])
    >>> decoder = UNetDecoder([4, 8], topo, num_classes=3, deep_supervision=False)
    >>> decoder([torch.zeros(1, 4, 8, 8), torch.zeros(1, 8, 4, 4)]).shape
    torch.Size([1, 3, 8, 8])
    """

    def __init__(
        self, encoder_channels: Sequence[int], topology: Topology, num_classes: int, deep_supervision: bool = True
    ) -> None:
        super().__init__()
        self.deep_supervision = deep_supervision
        conv = conv_class(topology.spatial_dims)
        transposed = transposed_conv_class(topology.spatial_dims)
        ones = (1,) * topology.spatial_dims
        upsamplers, stages, heads = [], [], []
        for s in range(topology.n_stages - 1):
            below = encoder_channels[-(s + 1)]
            skip = encoder_channels[-(s + 2)]
            stride = topology.strides[-(s + 1)]
            upsamplers.append(transposed(below, skip, stride, stride, bias=True))
            stages.append(
                StackedConvs(topology.n_conv_per_stage_decoder[s], 2 * skip, skip, topology.kernel_sizes[-(s + 2)])
            )
            heads.append(conv(skip, num_classes, ones, ones, bias=True))
        self.upsamplers = nn.ModuleList(upsamplers)
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList(heads)

    def forward(self, skips: Sequence[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        x = skips[-1]
        outputs = []
        last = len(self.stages) - 1
        for s, (upsample, stage, head) in enumerate(zip(self.upsamplers, self.stages, self.heads)):
            x = stage(torch.cat((upsample(x), skips[-(s + 2)]), dim=1))
            if self.deep_supervision or s == last:
                outputs.append(head(x))
        if not self.deep_supervision:
            return outputs[-1]
        return outputs[::-1]
