"""The family "r2unet": R2U-Net, recurrent residual convolutional units (RRCNN blocks) in encoder and decoder.

Follows Alom et al., "Recurrent residual convolutional neural network based on U-Net (R2U-Net) for medical
image segmentation", arXiv:1802.06955, 2018. A recurrent convolutional layer (RCL) applies one convolution
``t + 1`` times with shared weights, ``h_0 = f(x)``, ``h_k = f(x + h_(k-1))`` (t = 2 in the paper); an RRCNN
block is an entry convolution ``x0`` followed by two RCLs, with a residual sum ``x0 + RCL(RCL(x0))``.

Adapted to the planned topology: an encoder stage's entry convolution is strided with the planned kernel
(strided-conv downsampling instead of the paper's max pooling); without a stride it is the paper's 1x1
convolution. The number of RCLs per block is ``n_conv_per_stage[s]`` (``n_conv_per_stage_decoder[s]`` in the
decoder; the plans' default 2 is the paper's). ``f`` is conv -> instance norm -> LeakyReLU (the paper: batch
norm, ReLU). Upsampling is a transposed convolution and skips are concatenated, as in ``unet``.
Family option (``network_kwargs``): ``recurrent_steps`` (t, default 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from autounet.errors import PlansError
from autounet.networks.block_decoder import BlockDecoder
from autounet.networks.blocks import ConvNormAct, make_conv
from autounet.networks.encoders import Encoder
from autounet.networks.registry import register_network
from autounet.networks.segmentation_network import SegmentationNetwork
from autounet.networks.topology import validate_topology

RECURRENT_STEPS = 2
"""t of the paper's recurrent convolutional layers (each applies its convolution t + 1 times)."""


class RecurrentConv(nn.Module):
    """Recurrent convolutional layer: ``h = f(x)``, then ``t`` times ``h = f(x + h)``, one shared ``f``.

    Examples
    --------
    >>> layer = RecurrentConv(4, (3, 3), steps=2)
    >>> layer(torch.zeros(1, 4, 8, 8)).shape
    torch.Size([1, 4, 8, 8])
    """

    def __init__(self, channels: int, kernel_size: Sequence[int], steps: int = RECURRENT_STEPS) -> None:
        super().__init__()
        self.block = ConvNormAct(channels, channels, kernel_size)
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(x)
        for _ in range(self.steps):
            h = self.block(x + h)
        return h


class RRCNNBlock(nn.Module):
    """Recurrent residual block: entry conv ``x0`` (strided or 1x1), then ``x0 + RCL_n(... RCL_1(x0))``.

    Examples
    --------
    >>> block = RRCNNBlock(2, 1, 4, (3, 3, 3), (2, 2, 2))
    >>> block(torch.zeros(1, 1, 8, 8, 8)).shape
    torch.Size([1, 4, 4, 4, 4])
    """

    def __init__(
        self,
        n_recurrent: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        stride: Sequence[int] | None = None,
        steps: int = RECURRENT_STEPS,
    ) -> None:
        super().__init__()
        stride = tuple(stride) if stride is not None else (1,) * len(kernel_size)
        entry_kernel = kernel_size if any(s != 1 for s in stride) else (1,) * len(kernel_size)
        self.entry = make_conv(in_channels, out_channels, entry_kernel, stride)
        self.recurrent = nn.Sequential(*(RecurrentConv(out_channels, kernel_size, steps) for _ in range(n_recurrent)))
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.entry(x)
        return x0 + self.recurrent(x0)


@register_network("r2unet")
class R2UNet(SegmentationNetwork):
    """R2U-Net: :class:`RRCNNBlock` stages in encoder and decoder; the common constructor of ``unet``.

    Parameters
    ----------
    recurrent_steps : int
        ``t`` of each recurrent convolutional layer (default 2, the paper's).

    Examples
    --------
    >>> net = R2UNet(1, 3, [4, 8, 16], [[1, 3, 3], [3, 3, 3], [3, 3, 3]], [[1, 1, 1], [1, 2, 2], [2, 2, 2]])
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
        recurrent_steps: int = RECURRENT_STEPS,
    ) -> None:
        topology = validate_topology(features_per_stage, kernel_sizes, strides, n_conv_per_stage, n_conv_per_stage_decoder)
        if int(recurrent_steps) < 1:
            raise PlansError(f"recurrent_steps = {recurrent_steps}; use at least 1 (the paper uses 2)")
        steps = int(recurrent_steps)
        stages = []
        channels = in_channels
        for features, kernel, stride, n_recurrent in zip(
            topology.features_per_stage, topology.kernel_sizes, topology.strides, topology.n_conv_per_stage
        ):
            stages.append(RRCNNBlock(n_recurrent, channels, features, kernel, stride, steps))
            channels = features

        def make_stage(n_recurrent: int, stage_in: int, stage_out: int, kernel: tuple[int, ...]) -> nn.Module:
            return RRCNNBlock(n_recurrent, stage_in, stage_out, kernel, steps=steps)

        encoder = Encoder(stages, topology.features_per_stage)
        decoder = BlockDecoder(encoder.output_channels, topology, num_classes, deep_supervision, make_stage=make_stage)
        super().__init__(encoder, decoder, topology, in_channels, num_classes)
