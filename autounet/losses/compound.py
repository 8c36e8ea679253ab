"""Weighted sums of a region loss and a voxel loss: dice_ce (the default), dice_focal and tversky_ce."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from autounet.losses.pixelwise import FOCAL_GAMMA, CrossEntropyLoss, FocalLoss
from autounet.losses.region import SMOOTH, TVERSKY_ALPHA, TVERSKY_BETA, SoftDiceLoss, TverskyLoss
from autounet.losses.registry import register_loss


class CompoundLoss(nn.Module):
    """``sum(weight * loss(logits, target))``; losses with weight 0 are not evaluated.

    Examples
    --------
    >>> loss = CompoundLoss([CrossEntropyLoss(), CrossEntropyLoss()], [1.0, 0.5])
    >>> round(float(loss(torch.zeros(1, 2, 4), torch.tensor([[0, 1, 1, 0]]))), 4)  # 1.5 * log 2
    1.0397
    """

    def __init__(self, losses: Sequence[nn.Module], weights: Sequence[float]) -> None:
        super().__init__()
        if len(losses) != len(weights):
            raise ValueError(f"got {len(losses)} losses but {len(weights)} weights; pass one weight per loss")
        self.losses = nn.ModuleList(losses)
        self.weights = tuple(float(w) for w in weights)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        terms = [w * loss(logits, target) for loss, w in zip(self.losses, self.weights) if w != 0]
        return torch.stack(terms).sum() if terms else logits.float().sum() * 0


@register_loss("dice_ce")
def dice_ce(
    weight_dice: float = 1.0,
    weight_ce: float = 1.0,
    batch_dice: bool = False,
    include_background: bool = False,
    smooth: float = SMOOTH,
    ignore_label: int | None = None,
) -> CompoundLoss:
    """Soft Dice + cross-entropy, weights 1 and 1: nnU-Net's default ``DC_and_CE_loss``.

    Examples
    --------
    >>> round(float(dice_ce()(torch.zeros(1, 2, 4), torch.tensor([[0, 1, 1, 0]]))), 4)  # (1 - 0.5) + log 2
    1.1931
    """
    dice = SoftDiceLoss(batch_dice, include_background, smooth, ignore_label)
    return CompoundLoss([dice, CrossEntropyLoss(ignore_label)], [weight_dice, weight_ce])


@register_loss("dice_focal")
def dice_focal(
    weight_dice: float = 1.0,
    weight_focal: float = 1.0,
    gamma: float = FOCAL_GAMMA,
    batch_dice: bool = False,
    include_background: bool = False,
    smooth: float = SMOOTH,
    ignore_label: int | None = None,
) -> CompoundLoss:
    """Soft Dice + focal loss (gamma 2), weights 1 and 1.

    Examples
    --------
    >>> round(float(dice_focal()(torch.zeros(1, 2, 4), torch.tensor([[0, 1, 1, 0]]))), 4)  # 0.5 + 0.25 log 2
    0.6733
    """
    dice = SoftDiceLoss(batch_dice, include_background, smooth, ignore_label)
    return CompoundLoss([dice, FocalLoss(gamma, ignore_label)], [weight_dice, weight_focal])


@register_loss("tversky_ce")
def tversky_ce(
    weight_tversky: float = 1.0,
    weight_ce: float = 1.0,
    alpha: float = TVERSKY_ALPHA,
    beta: float = TVERSKY_BETA,
    batch_dice: bool = False,
    include_background: bool = False,
    smooth: float = SMOOTH,
    ignore_label: int | None = None,
) -> CompoundLoss:
    """Tversky (alpha 0.3, beta 0.7) + cross-entropy, weights 1 and 1.

    Examples
    --------
    >>> round(float(tversky_ce()(torch.zeros(1, 2, 4), torch.tensor([[0, 1, 1, 0]]))), 4)  # (1 - 0.5) + log 2
    1.1931
    """
    tversky = TverskyLoss(
        alpha=alpha,
        beta=beta,
        batch_dice=batch_dice,
        include_background=include_background,
        smooth=smooth,
        ignore_label=ignore_label,
    )
    return CompoundLoss([tversky, CrossEntropyLoss(ignore_label)], [weight_tversky, weight_ce])
