"""Affine instance normalisation for 2D and 3D feature maps."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class InstanceNorm(nn.Module):
    """Affine instance norm over all spatial axes, for any number of spatial axes.

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
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"
