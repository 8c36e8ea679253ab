"""The family "unetpp": U-Net++, nested dense skip pathways between encoder and decoder.

Follows Zhou et al., "UNet++: A nested U-Net architecture for medical image segmentation", DLMIA 2018. Node
``X[i][j]`` (depth ``i``, ``j`` convolution blocks along its skip pathway) is
``X[i][j] = block(concat(X[i][0], ..., X[i][j-1], up(X[i+1][j-1])))``, where ``X[i][0]`` is encoder stage ``i``;
a network of ``n`` stages has ``n (n - 1) / 2`` nested nodes and ``X[0][n-1]`` is the final output.

Adapted to the planned topology: encoder as ``unet`` (instance norm, LeakyReLU, strided-conv downsampling);
``up`` is a transposed convolution with kernel = the planned stride (the paper uses bilinear upsampling);
every node at depth ``i`` has ``features_per_stage[i]`` channels, the planned kernel of stage ``i`` and
``n_conv_per_stage_decoder`` convolutions of the decoder stage at that depth.

Deep supervision. The paper puts heads on ``X[0][1], ..., X[0][n-1]``, all at full resolution. autounet's
convention is one output per decoder resolution (full resolution first, like ``unet``), so here output ``k``
is the head on ``X[k][n-1-k]``, the most refined node at depth ``k``: output 0 is ``X[0][n-1]`` (the paper's
final output), and the coarser outputs supervise the backbone decoder path, exactly where ``unet`` puts them.
The paper's full-resolution heads on the shallower sub-networks are not used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from autounet.networks.blocks import StackedConvs, conv_class, transposed_conv_class
from autounet.networks.encoders import plain_encoder
from autounet.networks.registry import register_network
from autounet.networks.segmentation_network import SegmentationNetwork
from autounet.networks.topology import Topology, validate_topology


class NestedDecoder(nn.Module):
    """The U-Net++ skip pathways and decoder; returns logits full resolution first.

    ``nodes[i][j - 1]`` builds ``X[i][j]`` and ``upsamplers[i][j - 1]`` brings ``X[i+1][j-1]`` to depth ``i``.

    Examples
    --------
    >>> from autounet.networks.topology import validate_topology
    >>> topo = validate_topology([4, 8, 8], [[3, 3]] * 3, [[1, 1], [2, 2], [2, 2]])
    >>> decoder = NestedDecoder([4, 8, 8], topo, num_classes=2)
    >>> decoder.num_nested_nodes
    3
    >>> [tuple(o.shape) for o in decoder([torch.zeros(1, 4, 8, 8), torch.zeros(1, 8, 4, 4), torch.zeros(1, 8, 2, 2)])]
    [(1, 2, 8, 8), (1, 2, 4, 4)]
    """

    def __init__(
        self, encoder_channels: Sequence[int], topology: Topology, num_classes: int, deep_supervision: bool = True
    ) -> None:
        super().__init__()
        self.deep_supervision = deep_supervision
        n = topology.n_stages
        transposed = transposed_conv_class(topology.spatial_dims)
        conv = conv_class(topology.spatial_dims)
        ones = (1,) * topology.spatial_dims
        nodes: list[nn.ModuleList] = []
        upsamplers: list[nn.ModuleList] = []
        for i in range(n - 1):
            channels, below, stride = encoder_channels[i], encoder_channels[i + 1], topology.strides[i + 1]
            n_convs = topology.n_conv_per_stage_decoder[n - 2 - i]  # decoder stages are listed deepest first
            upsamplers.append(
                nn.ModuleList(transposed(below, channels, stride, stride, bias=True) for _ in range(1, n - i))
            )
            nodes.append(nn.ModuleList(
                StackedConvs(n_convs, (j + 1) * channels, channels, topology.kernel_sizes[i]) for j in range(1, n - i)
            ))
        self.nodes = nn.ModuleList(nodes)
        self.upsamplers = nn.ModuleList(upsamplers)
        self.heads = nn.ModuleList(conv(encoder_channels[k], num_classes, ones, ones, bias=True) for k in range(n - 1))

    @property
    def num_nested_nodes(self) -> int:
        """Number of nested nodes ``X[i][j]`` with ``j >= 1``: ``n (n - 1) / 2`` for ``n`` stages."""
        return sum(len(self._depth(i)[0]) for i in range(len(self.nodes)))

    def _depth(self, i: int) -> tuple[nn.ModuleList, nn.ModuleList]:
        """The node blocks and upsamplers of depth ``i``."""
        return cast(nn.ModuleList, self.nodes[i]), cast(nn.ModuleList, self.upsamplers[i])

    def forward(self, skips: Sequence[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        n = len(skips)
        grid: list[list[torch.Tensor]] = [[skip] for skip in skips]
        for j in range(1, n):  # column by column, so X[i+1][j-1] exists when X[i][j] needs it
            for i in range(n - j):
                nodes, upsamplers = self._depth(i)
                up = upsamplers[j - 1](grid[i + 1][j - 1])
                grid[i].append(nodes[j - 1](torch.cat((*grid[i], up), dim=1)))
        if not self.deep_supervision:
            return self.heads[0](grid[0][n - 1])
        return [self.heads[k](grid[k][n - 1 - k]) for k in range(n - 1)]


@register_network("unetpp")
class UNetPlusPlus(SegmentationNetwork):
    """U-Net++ with the plain U-Net encoder and :class:`NestedDecoder`; the common constructor of ``unet``.

    Examples
    --------
    >>> net = UNetPlusPlus(1, 3, [4, 8, 16], [[1, 3, 3], [3, 3, 3], [3, 3, 3]], [[1, 1, 1], [1, 2, 2], [2, 2, 2]])
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
    ) -> None:
        topology = validate_topology(features_per_stage, kernel_sizes, strides, n_conv_per_stage, n_conv_per_stage_decoder)
        encoder = plain_encoder(topology, in_channels)
        decoder = NestedDecoder(encoder.output_channels, topology, num_classes, deep_supervision)
        super().__init__(encoder, decoder, topology, in_channels, num_classes)
