"""Segmentation losses behind a registry, plus deep-supervision helpers.

Every loss is called as ``loss(logits, target)`` with logits ``(N, C, *spatial)`` in any float dtype and integer
labels ``(N, 1, *spatial)`` or ``(N, *spatial)``; it computes in float32 (safe under bfloat16 autocast) and returns
a scalar. Add a loss with ``@register_loss("name")`` on a class or factory in a module imported below.

>>> import torch
>>> loss = DeepSupervisionLoss(create_loss("dice_ce"))
>>> outputs = [torch.randn(2, 3, 8, 8), torch.randn(2, 3, 4, 4)]
>>> targets = downsample_target(torch.randint(0, 3, (2, 1, 8, 8)), [1.0, 0.5])
>>> bool(torch.isfinite(loss(outputs, targets)))
True
"""

from __future__ import annotations

from autounet.losses.deep_supervision import (
    DeepSupervisionLoss,
    deep_supervision_scales,
    deep_supervision_weights,
    downsample_target,
)
from autounet.losses.registry import LOSSES, create_loss, list_losses, register_loss

# Importing a loss module registers its losses.
from autounet.losses import compound, pixelwise, region  # noqa: E402,F401  isort: skip

__all__ = [
    "LOSSES",
    "DeepSupervisionLoss",
    "create_loss",
    "deep_supervision_scales",
    "deep_supervision_weights",
    "downsample_target",
    "list_losses",
    "register_loss",
]
