"""Building blocks shared by every network family: conv -> instance norm -> LeakyReLU, stacks and residual blocks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from autounet.networks.norm import InstanceNorm

NORM_EPS = 1e-5
"""Instance-norm epsilon, nnU-Net's default (``{"eps": 1e-5, "affine": True}``)."""

LEAKY_SLOPE = 0.01
"""LeakyReLU negative slope, nnU-Net's default (``{"inplace": True}`` with PyTorch's slope 0.01)."""


def conv_class(spatial_dims: int) -> type[nn.Conv2d] | type[nn.Conv3d]:
    """Return ``nn.Conv2d`` or ``nn.Conv3d`` for 2 or 3 spatial axes.

    Examples
    --------
    >>> conv_class(3).__name__
    'Conv3d'
    """
    if spatial_dims == 2:
        return nn.Conv2d
    if spatial_dims == 3:
        return nn.Conv3d
    raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")


def transposed_conv_class(spatial_dims: int) -> type[nn.ConvTranspose2d] | type[nn.ConvTranspose3d]:
    """Return ``nn.ConvTranspose2d`` or ``nn.ConvTranspose3d`` for 2 or 3 spatial axes.

    Examples
    --------
    >>> transposed_conv_class(2).__name__
    'ConvTranspose2d'
    """
    if spatial_dims == 2:
        return nn.ConvTranspose2d
    if spatial_dims == 3:
        return nn.ConvTranspose3d
    raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")


def same_padding(kernel_size: Sequence[int]) -> tuple[int, ...]:
    """Padding ``k // 2`` per axis, so odd (also anisotropic) kernels keep the spatial shape at stride 1.

    Examples
    --------
    >>> same_padding((1, 3, 3))
    (0, 1, 1)
    """
    return tuple(k // 2 for k in kernel_size)


def make_conv(
    in_channels: int, out_channels: int, kernel_size: Sequence[int], stride: Sequence[int] | None = None, bias: bool = True
) -> nn.Module:
    """A 2D or 3D convolution (chosen from ``len(kernel_size)``) with same padding.

    Examples
    --------
    >>> make_conv(1, 4, (1, 3, 3), (1, 2, 2))
    Conv3d(1, 4, kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
    """
    kernel = tuple(kernel_size)
    stride = tuple(stride) if stride is not None else (1,) * len(kernel)
    return conv_class(len(kernel))(in_channels, out_channels, kernel, stride, padding=same_padding(kernel), bias=bias)


def make_norm(channels: int) -> nn.Module:
    """Affine instance normalisation (eps 1e-5) for 2D or 3D feature maps.

    Examples
    --------
    >>> make_norm(4)
    InstanceNorm(4, eps=1e-05)
    """
    return InstanceNorm(channels, eps=NORM_EPS)


def make_activation() -> nn.Module:
    """In-place LeakyReLU with slope 0.01 (nnU-Net's non-linearity).

    Examples
    --------
    >>> make_activation()
    LeakyReLU(negative_slope=0.01, inplace=True)
    """
    return nn.LeakyReLU(LEAKY_SLOPE, inplace=True)


def zero_norm(norm: nn.Module) -> None:
    """Set a norm's affine weight and bias to zero: its output is 0 until training moves them.

    Applied to the last norm of a residual branch (``zero_residual_branch`` of the residual modules) it makes
    each block start as its skip path, so a deep residual network starts as a shallow one: nnU-Net's
    ``init_last_bn_before_add_to_0`` for its ResidualEncoderUNet, and Goyal et al., "Accurate, large minibatch
    SGD", arXiv:1706.02677, 2017. The weight still receives gradients (they do not depend on its value).

    Examples
    --------
    >>> norm = make_norm(2)
    >>> zero_norm(norm)
    >>> float(norm.weight.detach().abs().sum() + norm.bias.detach().abs().sum())
    0.0
    """
    with torch.no_grad():
        norm.weight.zero_()
        norm.bias.zero_()


def zero_residual_branches(network: nn.Module) -> int:
    """Call ``zero_residual_branch`` on every module of ``network`` that has it; returns how many there were.

    Examples
    --------
    >>> zero_residual_branches(nn.Sequential(ResidualBlock(4, 4, (3, 3)), ResidualBlock(4, 8, (3, 3))))
    2
    """
    modules = [m for m in network.modules() if hasattr(m, "zero_residual_branch")]
    for module in modules:
        module.zero_residual_branch()
    return len(modules)


class ConvNormAct(nn.Sequential):
    """Convolution -> instance norm -> LeakyReLU (the activation can be left out).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out.
    kernel_size : sequence of int
        One odd size per spatial axis; 2 entries give a 2D block, 3 a 3D block.
    stride : sequence of int, optional
        Stride per axis (default all ones).
    activation : bool
        Append the LeakyReLU (``False`` for the second conv of a residual block).
    bias : bool
        Give the convolution a bias (nnU-Net does, except in residual skip projections).

    Examples
    --------
    >>> block = ConvNormAct(1, 4, (3, 3), (2, 2))
    >>> block(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 4, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        stride: Sequence[int] | None = None,
        activation: bool = True,
        bias: bool = True,
    ) -> None:
        layers = [make_conv(in_channels, out_channels, kernel_size, stride, bias), make_norm(out_channels)]
        if activation:
            layers.append(make_activation())
        super().__init__(*layers)


class StackedConvs(nn.Sequential):
    """``n_convs`` ConvNormAct blocks; only the first one is strided (strided-conv downsampling).

    Examples
    --------
    >>> stack = StackedConvs(2, 1, 4, (1, 3, 3), (1, 2, 2))
    >>> stack(torch.zeros(1, 1, 4, 8, 8)).shape
    torch.Size([1, 4, 4, 4, 4])
    """

    def __init__(
        self,
        n_convs: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        stride: Sequence[int] | None = None,
    ) -> None:
        blocks = [ConvNormAct(in_channels, out_channels, kernel_size, stride)]
        blocks += [ConvNormAct(out_channels, out_channels, kernel_size) for _ in range(n_convs - 1)]
        super().__init__(*blocks)
        self.out_channels = out_channels


class ResidualBlock(nn.Module):
    """Basic residual block (nnU-Net's ``BasicBlockD``): two convs, a projected skip, activation after the sum.

    The skip path average-pools by the stride and uses a 1x1 conv + norm when the channel count changes,
    so the residual branch never sees a strided 1x1 conv that would drop three quarters of the voxels.

    Examples
    --------
    >>> block = ResidualBlock(4, 8, (3, 3, 3), (2, 2, 2))
    >>> block(torch.zeros(1, 4, 8, 8, 8)).shape
    torch.Size([1, 8, 4, 4, 4])
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Sequence[int], stride: Sequence[int] | None = None
    ) -> None:
        super().__init__()
        spatial_dims = len(kernel_size)
        stride = tuple(stride) if stride is not None else (1,) * spatial_dims
        self.conv1 = ConvNormAct(in_channels, out_channels, kernel_size, stride)
        self.conv2 = ConvNormAct(out_channels, out_channels, kernel_size, activation=False)
        skip: list[nn.Module] = []
        if any(s != 1 for s in stride):
            pool = nn.AvgPool2d if spatial_dims == 2 else nn.AvgPool3d
            skip.append(pool(stride, stride))
        if in_channels != out_channels:
            skip.append(ConvNormAct(in_channels, out_channels, (1,) * spatial_dims, activation=False, bias=False))
        self.skip = nn.Sequential(*skip)
        self.activation = make_activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.skip(x)
        return self.activation(self.conv2(self.conv1(x)) + residual)

    def zero_residual_branch(self) -> None:
        """Zero the affine of the norm before the sum, so the block starts as its skip path (see :func:`zero_norm`)."""
        zero_norm(self.conv2[1])


class StackedResidualBlocks(nn.Sequential):
    """``n_blocks`` residual blocks; only the first one is strided.

    Examples
    --------
    >>> stack = StackedResidualBlocks(2, 4, 8, (3, 3), (2, 2))
    >>> stack(torch.zeros(1, 4, 8, 8)).shape
    torch.Size([1, 8, 4, 4])
    """

    def __init__(
        self,
        n_blocks: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        stride: Sequence[int] | None = None,
    ) -> None:
        blocks = [ResidualBlock(in_channels, out_channels, kernel_size, stride)]
        blocks += [ResidualBlock(out_channels, out_channels, kernel_size) for _ in range(n_blocks - 1)]
        super().__init__(*blocks)
        self.out_channels = out_channels


class AveragePool(nn.Module):
    """Average pooling with kernel = stride that keeps the input's dtype under autocast.

    CPU autocast runs ``avg_pool2d/3d`` in float32, so a bfloat16 map would be copied to float32 and that copy kept
    for the backward pass (twice the map's memory); this pooling stays in the input's dtype and keeps nothing.
    Sizes must be multiples of the stride (inside a U-Net they are).

    Examples
    --------
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     y = AveragePool((1, 2, 2))(torch.ones(1, 2, 2, 4, 4, dtype=torch.bfloat16))
    >>> y.dtype, tuple(y.shape)
    (torch.bfloat16, (1, 2, 2, 2, 2))
    >>> x = torch.randn(2, 3, 4, 6, 8)
    >>> torch.allclose(AveragePool((2, 3, 2))(x), nn.functional.avg_pool3d(x, (2, 3, 2)))
    True
    """

    def __init__(self, stride: Sequence[int]) -> None:
        super().__init__()
        self.stride = tuple(int(s) for s in stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Blocks of stride voxels as extra axes, then their mean: the same numbers as avg_pool with kernel = stride
        # (sizes are multiples of the stride), and a mean keeps nothing for backward (PyTorch has no bfloat16
        # avg_pool3d on the CPU).
        n, c, *size = x.shape
        blocks = [n, c]
        for length, step in zip(size, self.stride):
            blocks += [length // step, step]
        with torch.autocast(x.device.type, enabled=False):
            return x.reshape(blocks).mean(dim=tuple(range(3, len(blocks), 2)))

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


def projection_skip(in_channels: int, out_channels: int, stride: Sequence[int]) -> nn.Module:
    """Skip path of a residual unit: average-pool by ``stride`` and a 1x1 conv + norm if the channels change.

    Identity (an empty ``nn.Sequential``) when neither changes.

    Examples
    --------
    >>> projection_skip(4, 8, (1, 2, 2))(torch.zeros(1, 4, 2, 8, 8)).shape
    torch.Size([1, 8, 2, 4, 4])
    >>> len(projection_skip(4, 4, (1, 1)))
    0
    """
    spatial_dims = len(stride)
    layers: list[nn.Module] = []
    if any(s != 1 for s in stride):
        layers.append(AveragePool(stride))
    if in_channels != out_channels:
        layers.append(ConvNormAct(in_channels, out_channels, (1,) * spatial_dims, activation=False, bias=False))
    return nn.Sequential(*layers)


class ResidualUnit(nn.Module):
    """``n_convs`` conv-norm-act blocks (the first strided, the last without activation) plus a projected skip.

    The activation follows the sum (post-activation, as in :class:`ResidualBlock`, which is the two-conv case).

    Examples
    --------
    >>> unit = ResidualUnit(3, 4, 8, (3, 3), (2, 2))
    >>> unit(torch.zeros(1, 4, 8, 8)).shape, len(unit.convs)
    (torch.Size([1, 8, 4, 4]), 3)
    """

    def __init__(
        self,
        n_convs: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        stride: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        stride = tuple(stride) if stride is not None else (1,) * len(kernel_size)
        convs = [ConvNormAct(in_channels, out_channels, kernel_size, stride, activation=n_convs > 1)]
        convs += [
            ConvNormAct(out_channels, out_channels, kernel_size, activation=i < n_convs - 2) for i in range(n_convs - 1)
        ]
        self.convs = nn.Sequential(*convs)
        self.skip = projection_skip(in_channels, out_channels, stride)
        self.activation = make_activation()
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.convs(x) + self.skip(x))

    def zero_residual_branch(self) -> None:
        """Zero the affine of the last norm before the sum, so the unit starts as its skip path."""
        zero_norm(self.convs[-1][1])
