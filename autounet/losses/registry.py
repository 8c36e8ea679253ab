"""The loss registry: losses register a constructor under a lower_snake name."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from autounet.registry import Registry

LOSSES: Registry[Callable[..., nn.Module]] = Registry("loss")
"""Every segmentation loss, by registry name (``"dice_ce"``, ``"focal"``, ...)."""


def register_loss(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a loss class or factory under ``name``.

    The loss is called as ``loss(logits, target)`` with logits ``(N, C, *spatial)`` and integer labels
    ``(N, 1, *spatial)`` or ``(N, *spatial)`` and returns a scalar float32 tensor.

    Examples
    --------
    In a module imported by ``autounet/losses/__init__.py``::

        @register_loss("l1_softmax")
        class L1SoftmaxLoss(nn.Module):
            def forward(self, logits, target):
                ...
    """
    return LOSSES.register(name)


def create_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build the loss registered as ``name``.

    Raises
    ------
    KeyError
        For an unknown name; the message lists the losses and the closest match.

    Examples
    --------
    >>> type(create_loss("dice_ce", batch_dice=True)).__name__
    'CompoundLoss'
    >>> create_loss("dcie")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    KeyError: 'unknown loss "dcie"; available: ce, dice, dice_ce, ... Did you mean "dice"?'
    """
    factory = LOSSES.get(name)
    accepted = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise ValueError(
                f'loss "{name}" has no parameter {", ".join(unknown)}; its parameters are '
                f'{", ".join(accepted) or "none"} (check --loss-kwargs or the plans\' loss_kwargs)'
            )
    return factory(**kwargs)


def list_losses() -> list[str]:
    """Sorted names of the registered losses.

    Examples
    --------
    >>> "dice_ce" in list_losses()
    True
    """
    return LOSSES.names()
