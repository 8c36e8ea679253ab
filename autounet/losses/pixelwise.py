"""Voxel-wise losses: cross-entropy and focal loss (computed in float32, averaged over non-ignored voxels)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from autounet.losses.labels import split_target
from autounet.losses.registry import register_loss

FOCAL_GAMMA = 2.0
"""Focusing exponent of the focal loss (Lin et al. 2017, the paper's best value)."""


def voxel_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, ignore_label: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-voxel cross-entropy in float32, shape ``(N, *spatial)``, and the valid mask (None without ignore label).

    Examples
    --------
    >>> ce, valid = voxel_cross_entropy(torch.zeros(1, 2, 3), torch.tensor([[0, 1, 1]]))
    >>> [round(v, 4) for v in ce[0].tolist()], valid
    ([0.6931, 0.6931, 0.6931], None)
    """
    with torch.autocast(device_type=logits.device.type, enabled=False):
        labels, valid = split_target(target, logits, ignore_label)
        return F.cross_entropy(logits.float(), labels, reduction="none"), valid


def _masked_mean(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    if valid is None:
        return values.mean()
    return (values * valid).sum() / valid.sum().clamp_min(1)


@register_loss("ce")
class CrossEntropyLoss(nn.Module):
    """Softmax cross-entropy averaged over the non-ignored voxels.

    Parameters
    ----------
    ignore_label : int, optional
        Label of voxels that contribute nothing.

    Examples
    --------
    >>> round(float(CrossEntropyLoss()(torch.zeros(1, 2, 4), torch.tensor([[0, 1, 1, 0]]))), 4)  # log 2
    0.6931
    """

    def __init__(self, ignore_label: int | None = None) -> None:
        super().__init__()
        self.ignore_label = ignore_label

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _masked_mean(*voxel_cross_entropy(logits, target, self.ignore_label))


@register_loss("focal")
class FocalLoss(nn.Module):
    """Focal loss ``(1 - p_t) ** gamma * -log(p_t)`` averaged over the non-ignored voxels (Lin et al. 2017).

    Parameters
    ----------
    gamma : float
        Focusing exponent; 0 gives cross-entropy.
    ignore_label : int, optional
        Label of voxels that contribute nothing.

    Examples
    --------
    >>> round(float(FocalLoss()(torch.zeros(1, 2, 4), torch.tensor([[0, 1, 1, 0]]))), 4)  # 0.25 * log 2
    0.1733
    """

    def __init__(self, gamma: float = FOCAL_GAMMA, ignore_label: int | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.ignore_label = ignore_label

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cross_entropy, valid = voxel_cross_entropy(logits, target, self.ignore_label)
        p_true = torch.exp(-cross_entropy)
        return _masked_mean((1 - p_true).clamp_min(0) ** self.gamma * cross_entropy, valid)
