"""The family "dilated": a U-Net with a multi-rate dilated (atrous) context block at the bottleneck.

Follows the atrous spatial pyramid pooling of DeepLab v3 (Chen et al., "Rethinking atrous convolution for
semantic image segmentation", arXiv:1706.05587, 2017) as used at a U-Net bottleneck by CE-Net (Gu et al.,
"CE-Net: Context encoder network for 2D medical image segmentation", IEEE TMI 2019, whose dense atrous
convolution block adds its branches to the input). Parallel branches on the bottleneck features: a 1x1
convolution and one dilated convolution per rate, concatenated and projected by a 1x1 convolution, plus global
average pooling through a 1x1 convolution; both are added to the bottleneck features (residual, as CE-Net).

Adapted to the planned topology: encoder and decoder are those of ``unet``; the dilated convolutions use the
bottleneck's planned kernel (so a ``1x3x3`` kernel stays in-plane), each branch has a quarter of the
bottleneck's features, and instance norm + LeakyReLU follow every convolution except in the pooling branch (a
1-voxel map has no spatial statistics), which is added after the projection's norm rather than concatenated
before it (instance norm would subtract its per-sample constant; DeepLab's batch norm does not).
Rates adapted to the bottleneck size: nnU-Net's planner pools down to a 4-8 voxel bottleneck, where DeepLab's
rates (6, 12, 18) would sample only padding, so each rate is clipped per axis, at run time from the actual
bottleneck shape, to :func:`usable_dilation`, the largest dilation whose dilated kernel still fits in the map (an
axis with kernel 1 is never dilated). The Hippocampus plan (bottleneck 5x7x5) turns the default rates (1, 2, 3)
into (1, 1, 1), (2, 2, 2) and (2, 3, 2).
Family options (``network_kwargs``): ``rates`` (default ``(1, 2, 3)``); ``zero_init_residual`` (default false):
the projection's norm starts at zero, so at initialisation the block adds only the pooled term and the network
starts as ``unet`` (proposed because this family learned slowly in docs/benchmarks.md, "Network families"; its
effect there is not yet measured).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from autounet.errors import PlansError
from autounet.networks.block_decoder import BlockDecoder
from autounet.networks.blocks import ConvNormAct, conv_class, make_activation, make_norm, zero_norm
from autounet.networks.encoders import plain_encoder
from autounet.networks.registry import register_network
from autounet.networks.segmentation_network import SegmentationNetwork
from autounet.networks.topology import validate_topology

DILATION_RATES = (1, 2, 3)
"""Default rates: DeepLab v3's (6, 12, 18) span up to about half of its 33-voxel map; divided by 6 they do the
same on nnU-Net's 4-8 voxel bottlenecks (and are clipped further where the map is smaller)."""


BRANCH_WIDTH_DIVISOR = 4
"""Each branch has a quarter of the bottleneck's features, so the concatenation of the 1x1 and three dilated
branches is as wide as the bottleneck (DeepLab v3: 256 per branch on 2048 features; CE-Net: full width)."""


def usable_dilation(rate: int, kernel_size: Sequence[int], size: Sequence[int]) -> tuple[int, ...]:
    """Per-axis dilation: ``rate`` clipped to ``(size - 1) // (kernel - 1)`` (1 on axes with kernel 1).

    That is the largest dilation whose dilated kernel, ``(kernel - 1) * dilation + 1`` voxels, fits in the map;
    with a larger one even the centre voxel's outer taps land in the padding.

    Examples
    --------
    >>> usable_dilation(3, (3, 3, 3), (5, 7, 5))
    (2, 3, 2)
    >>> usable_dilation(4, (1, 3, 3), (2, 4, 4))
    (1, 1, 1)
    """
    return tuple(1 if k == 1 else max(1, min(int(rate), (int(s) - 1) // (k - 1))) for k, s in zip(kernel_size, size))


class DilatedConvNormAct(nn.Module):
    """Dilated convolution (rate clipped to the input by :func:`usable_dilation`) -> instance norm -> LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Sequence[int], rate: int) -> None:
        super().__init__()
        self.conv = conv_class(len(kernel_size))(in_channels, out_channels, tuple(kernel_size))
        self.norm = make_norm(out_channels)
        self.activation = make_activation()
        self.rate = int(rate)
        self.kernel_size = tuple(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dilation = usable_dilation(self.rate, self.kernel_size, x.shape[2:])
        padding = tuple(d * (k // 2) for d, k in zip(dilation, self.kernel_size))
        convolve = F.conv2d if x.ndim == 4 else F.conv3d
        return self.activation(self.norm(convolve(x, self.conv.weight, self.conv.bias, 1, padding, dilation)))


class DilatedContextBlock(nn.Module):
    """ASPP-style context: ``x + project(concat(1x1, dilated branches)) + pooling_branch(mean(x))``.

    Examples
    --------
    >>> block = DilatedContextBlock(8, (3, 3, 3), rates=(1, 2))
    >>> block(torch.randn(2, 8, 5, 7, 5)).shape, len(block.branches)
    (torch.Size([2, 8, 5, 7, 5]), 3)
    """

    def __init__(self, channels: int, kernel_size: Sequence[int], rates: Sequence[int] = DILATION_RATES) -> None:
        super().__init__()
        ones = (1,) * len(kernel_size)
        width = max(1, channels // BRANCH_WIDTH_DIVISOR)
        branches: list[nn.Module] = [ConvNormAct(channels, width, ones)]
        branches += [DilatedConvNormAct(channels, width, kernel_size, rate) for rate in rates]
        self.branches = nn.ModuleList(branches)
        self.project = ConvNormAct(len(branches) * width, channels, ones, activation=False)
        # Image pooling is added after the projection's norm: instance norm would remove a per-sample constant.
        self.pool_branch = nn.Sequential(conv_class(len(kernel_size))(channels, channels, ones), make_activation())

    def zero_residual_branch(self) -> None:
        """Zero the projection's norm: the block then starts as ``x`` plus the image-pooling term."""
        zero_norm(self.project[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = self.project(torch.cat([branch(x) for branch in self.branches], dim=1))
        pooled = self.pool_branch(x.mean(dim=tuple(range(2, x.ndim)), keepdim=True))
        return x + local + pooled.to(local.dtype)


@register_network("dilated")
class DilatedUNet(SegmentationNetwork):
    """The plain U-Net with a :class:`DilatedContextBlock` after the deepest stage; the common constructor of ``unet``.

    Parameters
    ----------
    rates : sequence of int
        Dilation rate of each dilated branch before clipping to the bottleneck (default (1, 2, 3)).
    zero_init_residual : bool
        Start the context block's projection at zero (:func:`~autounet.networks.blocks.zero_norm`), so the
        network starts as ``unet`` with a pooled offset at the bottleneck (default false: not yet measured).

    Examples
    --------
    >>> net = DilatedUNet(1, 3, [4, 8, 16], [[1, 3, 3], [3, 3, 3], [3, 3, 3]], [[1, 1, 1], [1, 2, 2], [2, 2, 2]])
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
        rates: Sequence[int] = DILATION_RATES,
        zero_init_residual: bool = False,
    ) -> None:
        topology = validate_topology(features_per_stage, kernel_sizes, strides, n_conv_per_stage, n_conv_per_stage_decoder)
        rates = tuple(int(r) for r in rates)
        if not rates or any(r < 1 for r in rates):
            raise PlansError(f"rates = {list(rates)}; pass one or more positive dilation rates, e.g. [1, 2, 3]")
        encoder = plain_encoder(topology, in_channels)
        context = DilatedContextBlock(topology.features_per_stage[-1], topology.kernel_sizes[-1], rates)
        encoder.stages[-1] = nn.Sequential(encoder.stages[-1], context)
        decoder = BlockDecoder(encoder.output_channels, topology, num_classes, deep_supervision)
        super().__init__(encoder, decoder, topology, in_channels, num_classes)
        self.zero_init_residual = bool(zero_init_residual)
