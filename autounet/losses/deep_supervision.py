"""Deep supervision: per-level loss weights, per-level targets and the wrapper that sums the weighted losses."""

from __future__ import annotations

from collections.abc import Sequence
import torch
import torch.nn.functional as F
from torch import nn


def deep_supervision_weights(n_levels: int) -> list[float]:
    """nnU-Net's level weights: 1, 1/2, 1/4, ... with the lowest-resolution level set to 0, normalised to sum 1.

    Parameters
    ----------
    n_levels : int
        Number of network outputs, full resolution first. A single level gets weight 1.

    Returns
    -------
    list of float

    Examples
    --------
    >>> deep_supervision_weights(3)
    [0.6666666666666666, 0.3333333333333333, 0.0]
    >>> deep_supervision_weights(1)
    [1.0]
    """
    if n_levels < 1:
        raise ValueError(f"n_levels must be at least 1, got {n_levels}")
    if n_levels == 1:
        return [1.0]
    weights = [0.5**level for level in range(n_levels)]
    weights[-1] = 0.0
    total = sum(weights)
    return [w / total for w in weights]


def deep_supervision_scales(strides: Sequence[Sequence[int]]) -> list[tuple[float, ...]]:
    """Per-level scale of the deep-supervision outputs relative to the input, from the network's strides.

    Parameters
    ----------
    strides : sequence of sequence of int
        The network's per-stage strides (``strides[0]`` is the stem, all ones).

    Returns
    -------
    list of tuple of float
        ``n_stages - 1`` entries, full resolution (all ones) first; pass to :func:`downsample_target`.

    Examples
    --------
    >>> deep_supervision_scales([[1, 1, 1], [1, 2, 2], [2, 2, 2]])
    [(1.0, 1.0, 1.0), (1.0, 0.5, 0.5)]
    """
    scales = []
    total = [1] * len(strides[0])
    for stride in strides[:-1]:
        total = [t * s for t, s in zip(total, stride)]
        scales.append(tuple(1.0 / t for t in total))
    return scales


def _downsample_one(labels: torch.Tensor, scale: tuple[float, ...]) -> torch.Tensor:
    """Nearest-neighbour downsampling of ``(N, C, *spatial)`` labels to ``round(size * scale)`` per axis."""
    spatial = labels.shape[2:]
    size = [round(n * s) for n, s in zip(spatial, scale)]
    steps = [n // m if m > 0 else 0 for n, m in zip(spatial, size)]
    if all(m > 0 and step * m == n for n, m, step in zip(spatial, size, steps)):
        # Whole-number factors: a strided view picks the same voxels as nearest-exact, without a copy.
        index = [slice(None), slice(None)] + [slice(step // 2, None, step) for step in steps]
        return labels[tuple(index)]
    return F.interpolate(labels.float(), size=size, mode="nearest-exact").to(labels.dtype)


def downsample_target(target: torch.Tensor, scales: Sequence[float | Sequence[float]]) -> list[torch.Tensor]:
    """One label map per deep-supervision level, by nearest-neighbour pooling (nnU-Net's ``nearest-exact``).

    Parameters
    ----------
    target : Tensor of shape (N, 1, *spatial) or (N, *spatial)
        Integer labels at full resolution.
    scales : sequence of float or sequence of sequence of float
        Per level, the output size relative to the input (one float for all axes, or one per axis),
        for example from :func:`deep_supervision_scales`.

    Returns
    -------
    list of Tensor
        Same layout and dtype as ``target``, each axis resized to ``round(size * scale)`` as nnU-Net does;
        whole-number factors return strided views (no copy).

    Examples
    --------
    >>> target = torch.arange(16).reshape(1, 1, 4, 4)
    >>> [t.shape[2:] for t in downsample_target(target, [1.0, 0.5, (1.0, 0.25)])]
    [torch.Size([4, 4]), torch.Size([2, 2]), torch.Size([4, 1])]
    >>> downsample_target(target, [0.5])[0].tolist()
    [[[[5, 7], [13, 15]]]]
    """
    has_channel = target.ndim >= 3 and target.shape[1] == 1
    labels = target if has_channel else target.unsqueeze(1)
    n_spatial = labels.ndim - 2
    levels = []
    for scale in scales:
        per_axis = (float(scale),) * n_spatial if isinstance(scale, (int, float)) else tuple(float(s) for s in scale)
        if len(per_axis) != n_spatial:
            raise ValueError(f"scale {scale} has {len(per_axis)} axes but the target has {n_spatial} spatial axes")
        level = labels if all(s == 1 for s in per_axis) else _downsample_one(labels, per_axis)
        levels.append(level if has_channel else level[:, 0])
    return levels


class DeepSupervisionLoss(nn.Module):
    """Weighted sum of ``loss`` over deep-supervision levels; levels with weight 0 are skipped.

    Parameters
    ----------
    loss : nn.Module
        Called as ``loss(logits, target)`` per level.
    weights : sequence of float, optional
        One per level, full resolution first; default :func:`deep_supervision_weights` of the number of outputs.

    Examples
    --------
    >>> from autounet.losses import create_loss
    >>> loss = DeepSupervisionLoss(create_loss("ce"))
    >>> outputs = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 1, 1)]
    >>> targets = downsample_target(torch.zeros(1, 1, 4, 4, dtype=torch.long), [1.0, 0.5, 0.25])
    >>> round(float(loss(outputs, targets)), 4)  # log 2 at every level
    0.6931
    """

    def __init__(self, loss: nn.Module, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.loss = loss
        self.weights = None if weights is None else tuple(float(w) for w in weights)

    def forward(
        self, outputs: torch.Tensor | Sequence[torch.Tensor], targets: torch.Tensor | Sequence[torch.Tensor]
    ) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            target = targets if isinstance(targets, torch.Tensor) else targets[0]
            return self.loss(outputs, target)
        if isinstance(targets, torch.Tensor) or len(targets) != len(outputs):
            received = "one tensor" if isinstance(targets, torch.Tensor) else f"{len(targets)} targets"
            raise ValueError(
                f"got {len(outputs)} outputs but {received}; pass one target per output (see downsample_target)"
            )
        weights = self.weights if self.weights is not None else deep_supervision_weights(len(outputs))
        if len(weights) != len(outputs):
            raise ValueError(f"got {len(outputs)} outputs but {len(weights)} weights; pass one weight per output")
        terms = [w * self.loss(o, t) for o, t, w in zip(outputs, targets, weights) if w != 0]
        return torch.stack(terms).sum()
