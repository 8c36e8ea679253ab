"""Affine instance normalisation for 2D and 3D maps, fast on the CPU in bfloat16 and channels-last layout.

Why not ``nn.InstanceNorm3d``: ``F.instance_norm`` reshapes its input to ``(1, N*C, *spatial)``, which copies a
channels-last tensor to the default layout, returns a *view*, and the in-place LeakyReLU that follows then
makes autograd copy the whole map again (``CopySlices``) in the backward pass. Profiled on a 2-core CPU,
those copies took a third of a bfloat16 training step of nnU-Net's Hippocampus U-Net. PyTorch's group norm
with one group per channel computes the same numbers and keeps the layout, but its bfloat16 channels-last
backward kernel is slow, so the backward pass here is written out with a few vectorised reductions.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable


def _per_channel_view(tensor: torch.Tensor, like_channels_last: bool) -> torch.Tensor:
    """``(N, C, *spatial)`` as ``(N, S, C)`` when channels-last, else ``(N, C, S)``; a view when the layout allows."""
    n, c = tensor.shape[:2]
    if like_channels_last:
        return tensor.movedim(1, -1).reshape(n, -1, c)
    return tensor.reshape(n, c, -1)


class _InstanceNormFunction(torch.autograd.Function):
    """Forward with ``native_group_norm`` (groups = channels); backward from two per-channel sums."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
        n, c = x.shape[:2]
        spatial = x[0, 0].numel()
        y, mean, rstd = torch.ops.aten.native_group_norm(x, weight, bias, n, c, spatial, c, eps)
        ctx.save_for_backward(x, weight, mean, rstd)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_y: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight, mean, rstd = ctx.saved_tensors
        n, c = x.shape[:2]
        spatial = x[0, 0].numel()
        if not ctx.needs_input_grad[0]:
            dx, dw, db = torch.ops.aten.native_group_norm_backward(
                grad_y, x, mean, rstd, weight, n, c, spatial, c, [False, *ctx.needs_input_grad[1:3]]
            )
            return dx, dw, db, None
        channels_last = not x.is_contiguous() and x.movedim(1, -1).is_contiguous()
        axis = 1 if channels_last else 2
        x3, dy3 = _per_channel_view(x, channels_last), _per_channel_view(grad_y, channels_last)
        # Centre x on its mean rounded to x's dtype, so bfloat16 products and coefficients stay well
        # conditioned when |mean| >> std; the rounding offset is added back exactly in float32.
        mean, rstd = mean.view(n, c), rstd.view(n, c)
        mean_rounded = mean.to(x.dtype)
        centred = x3 - mean_rounded.unsqueeze(axis)
        offset = mean_rounded.float() - mean  # x - mean = centred + offset
        sum_dy = dy3.sum(axis, dtype=torch.float32)
        sum_dy_centred = (dy3 * centred).sum(axis, dtype=torch.float32)
        sum_dy_xhat = rstd * (sum_dy_centred + offset * sum_dy)
        # dx = w * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)) = k_dy * dy + k_x * centred + k_0
        k_dy = weight.float() * rstd
        k_x = -k_dy * rstd * sum_dy_xhat / spatial
        k_0 = -k_dy * sum_dy / spatial + k_x * offset
        k_0, k_x, k_dy = (k.unsqueeze(axis).to(x.dtype) for k in (k_0, k_x, k_dy))
        dx3 = torch.addcmul(k_0, centred, k_x).addcmul_(dy3, k_dy)
        dx = dx3.view(n, *x.shape[2:], c).movedim(-1, 1) if channels_last else dx3.view(x.shape)
        return dx, sum_dy_xhat.sum(0).to(weight.dtype), sum_dy.sum(0).to(weight.dtype), None


def instance_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Affine instance norm of ``(N, C, *spatial)`` that keeps the memory layout and dtype of ``x``.

    Numerically the same as ``F.instance_norm(x, weight=weight, bias=bias, eps=eps)``: statistics are
    accumulated in float32 also for bfloat16 inputs.

    Examples
    --------
    >>> import torch.nn.functional as F
    >>> x = torch.randn(2, 3, 4, 5, 6)
    >>> w, b = torch.rand(3), torch.randn(3)
    >>> torch.allclose(instance_norm(x, w, b), F.instance_norm(x, weight=w, bias=b), atol=1e-5)
    True
    """
    if weight.dtype != x.dtype and x.dtype not in (torch.bfloat16, torch.float16):
        # Only reduced-precision inputs may keep float32 affine parameters.
        weight, bias = weight.to(x.dtype), bias.to(x.dtype)
    return _InstanceNormFunction.apply(x, weight, bias, eps)


class InstanceNorm(nn.Module):
    """Affine instance norm over all spatial axes (2D or 3D), see :func:`instance_norm`.

    Parameters
    ----------
    num_features : int
        Channels ``C`` of the ``(N, C, *spatial)`` input.
    eps : float
        Added to the variance.

    Examples
    --------
    >>> norm = InstanceNorm(2)
    >>> y = norm(torch.arange(16.0).reshape(1, 2, 2, 4))
    >>> [round(v, 4) for v in y.mean(dim=(2, 3)).flatten().tolist()]
    [0.0, 0.0]
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"
