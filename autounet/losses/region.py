"""Overlap losses on softmax probabilities: soft Dice, Tversky and focal Tversky (computed in float32)."""

from __future__ import annotations

import torch
from torch import nn

from autounet.losses.labels import one_hot, split_target
from autounet.losses.registry import register_loss

SMOOTH = 1e-5
"""Added to numerator and denominator of Dice/Tversky, nnU-Net's ``smooth`` (keeps empty classes finite)."""

TVERSKY_ALPHA, TVERSKY_BETA = 0.3, 0.7
"""Weights of false positives and false negatives (Salehi et al. 2017, best F2 setting)."""

FOCAL_TVERSKY_GAMMA = 0.75
"""Exponent on ``1 - TI``: Abraham & Khan 2019 use ``1 / gamma`` with gamma = 4/3."""

_MIN_BASE = 1e-6
"""Lower bound of ``1 - TI`` before a fractional power, whose gradient is infinite at 0."""


def overlap_statistics(
    logits: torch.Tensor,
    target: torch.Tensor,
    include_background: bool = False,
    batch_dice: bool = False,
    ignore_label: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Soft true positives, predicted volume and true volume per class, in float32.

    Parameters
    ----------
    logits : Tensor of shape (N, C, *spatial)
        Network output, any float dtype; softmax is taken in float32 with autocast disabled.
    target : Tensor of shape (N, 1, *spatial) or (N, *spatial)
        Integer labels.
    include_background : bool
        Keep class 0 (nnU-Net leaves it out).
    batch_dice : bool
        Sum over the batch as if it were one image (shape ``(C,)``) instead of per image (``(N, C)``).
    ignore_label : int, optional
        Voxels with this label count nowhere.

    Returns
    -------
    tp, predicted, true : Tensor of shape (N, C') or (C',)

    Raises
    ------
    ValueError
        When the logits have one channel or the target's shape does not match.

    Examples
    --------
    >>> logits = torch.log(torch.tensor([[[0.1, 0.2, 0.8, 0.9], [0.9, 0.8, 0.2, 0.1]]]))
    >>> tp, predicted, true = overlap_statistics(logits, torch.tensor([[1, 1, 0, 0]]))
    >>> [round(float(v), 4) for v in (tp[0, 0], predicted[0, 0], true[0, 0])]
    [1.7, 2.0, 2.0]
    """
    with torch.autocast(device_type=logits.device.type, enabled=False):
        labels, valid = split_target(target, logits, ignore_label)
        if logits.shape[1] < 2:
            raise ValueError(
                f"logits have {logits.shape[1]} channel; softmax losses need one channel per class, background included"
            )
        probabilities = torch.softmax(logits.float(), dim=1)
        with torch.no_grad():
            truth = one_hot(labels, probabilities.shape[1])
        if not include_background:
            probabilities, truth = probabilities[:, 1:], truth[:, 1:]
        if valid is not None:
            mask = valid.unsqueeze(1).float()
            probabilities, truth = probabilities * mask, truth * mask
        axes = tuple(range(2, probabilities.ndim))
        tp = (probabilities * truth).sum(axes)
        predicted = probabilities.sum(axes)
        true = truth.sum(axes)
        if batch_dice:
            tp, predicted, true = tp.sum(0), predicted.sum(0), true.sum(0)
    return tp, predicted, true


class _OverlapLoss(nn.Module):
    def __init__(
        self,
        batch_dice: bool = False,
        include_background: bool = False,
        smooth: float = SMOOTH,
        ignore_label: int | None = None,
    ) -> None:
        super().__init__()
        self.batch_dice = batch_dice
        self.include_background = include_background
        self.smooth = smooth
        self.ignore_label = ignore_label

    def _statistics(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return overlap_statistics(logits, target, self.include_background, self.batch_dice, self.ignore_label)


@register_loss("dice")
class SoftDiceLoss(_OverlapLoss):
    """``1 - mean soft Dice`` over foreground classes (nnU-Net's MemoryEfficientSoftDiceLoss, offset by 1).

    Parameters
    ----------
    batch_dice : bool
        Pool the whole batch per class before the ratio (nnU-Net's ``batch_dice``).
    include_background : bool
        Also score class 0.
    smooth : float
        Added to numerator and denominator.
    ignore_label : int, optional
        Label of voxels that contribute nothing.

    Notes
    -----
    nnU-Net returns ``-dice``; this returns ``1 - dice`` so a perfect prediction scores 0. Gradients are equal.

    Examples
    --------
    >>> logits = torch.log(torch.tensor([[[0.1, 0.2, 0.8, 0.9], [0.9, 0.8, 0.2, 0.1]]]))
    >>> round(float(SoftDiceLoss()(logits, torch.tensor([[1, 1, 0, 0]]))), 4)  # 1 - 2 * 1.7 / 4
    0.15
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        tp, predicted, true = self._statistics(logits, target)
        dice = (2 * tp + self.smooth) / (predicted + true + self.smooth).clamp_min(1e-8)
        return 1 - dice.mean()


@register_loss("tversky")
class TverskyLoss(_OverlapLoss):
    """``1 - mean Tversky index`` with false positives weighted ``alpha`` and false negatives ``beta``.

    Parameters
    ----------
    alpha, beta : float
        Weights of false positives (default 0.3) and false negatives (default 0.7); 0.5 and 0.5 give Dice.
    batch_dice, include_background, smooth, ignore_label
        As in :class:`SoftDiceLoss`.

    Examples
    --------
    >>> logits = torch.log(torch.tensor([[[0.1, 0.2, 0.8, 0.9], [0.9, 0.8, 0.2, 0.1]]]))
    >>> round(float(TverskyLoss(alpha=0.5, beta=0.5)(logits, torch.tensor([[1, 1, 0, 0]]))), 4)
    0.15
    """

    def __init__(
        self,
        alpha: float = TVERSKY_ALPHA,
        beta: float = TVERSKY_BETA,
        batch_dice: bool = False,
        include_background: bool = False,
        smooth: float = SMOOTH,
        ignore_label: int | None = None,
    ) -> None:
        super().__init__(batch_dice, include_background, smooth, ignore_label)
        self.alpha = alpha
        self.beta = beta

    def tversky_index(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-class Tversky index, shape ``(N, C')`` or ``(C',)``."""
        tp, predicted, true = self._statistics(logits, target)
        false_positives, false_negatives = predicted - tp, true - tp
        denominator = tp + self.alpha * false_positives + self.beta * false_negatives + self.smooth
        return (tp + self.smooth) / denominator.clamp_min(1e-8)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1 - self.tversky_index(logits, target).mean()


@register_loss("focal_tversky")
class FocalTverskyLoss(TverskyLoss):
    """``mean((1 - Tversky index) ** gamma)``, gamma 0.75 (Abraham & Khan 2019), focusing on hard classes.

    Parameters
    ----------
    gamma : float
        Exponent applied to ``1 - TI`` per class.
    alpha, beta, batch_dice, include_background, smooth, ignore_label
        As in :class:`TverskyLoss`.

    Examples
    --------
    >>> logits = torch.log(torch.tensor([[[0.1, 0.2, 0.8, 0.9], [0.9, 0.8, 0.2, 0.1]]]))
    >>> round(float(FocalTverskyLoss(alpha=0.5, beta=0.5)(logits, torch.tensor([[1, 1, 0, 0]]))), 4)  # 0.15 ** 0.75
    0.241
    """

    def __init__(
        self,
        gamma: float = FOCAL_TVERSKY_GAMMA,
        alpha: float = TVERSKY_ALPHA,
        beta: float = TVERSKY_BETA,
        batch_dice: bool = False,
        include_background: bool = False,
        smooth: float = SMOOTH,
        ignore_label: int | None = None,
    ) -> None:
        super().__init__(alpha, beta, batch_dice, include_background, smooth, ignore_label)
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        base = (1 - self.tversky_index(logits, target)).clamp_min(_MIN_BASE)
        return (base**self.gamma).mean()
