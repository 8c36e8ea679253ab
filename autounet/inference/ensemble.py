"""Combine predictions: softmax and fold averaging in a configuration's space, the cascade's one-hot input, mapping
probabilities back to the input geometry, averaging configurations there, and the label map."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike
import torch

from autounet.planners.plans import Plans
from autounet.preprocessing.properties import CaseProperties
from autounet.preprocessing.restore import restore_to_original


def softmax_(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the class axis (0) of ``(K, *spatial)`` float32 logits, in place (no second copy).

    Examples
    --------
    >>> softmax_(torch.tensor([[0.0, 2.0], [0.0, 0.0]])).sum(0).round(decimals=4).tolist()
    [1.0, 1.0]
    """
    logits -= logits.max(dim=0, keepdim=True).values
    logits.exp_()
    logits /= logits.sum(dim=0, keepdim=True)
    return logits


class FoldAverage:
    """Running mean of the fold probabilities of one configuration, plus each fold's arg-max for the disagreement.

    Parameters
    ----------
    keep_argmax : bool
        Keep every fold's arg-max (uint8, one per voxel) to compute :meth:`disagreement`.
    """

    def __init__(self, keep_argmax: bool = False) -> None:
        self.keep_argmax = keep_argmax
        self.total: torch.Tensor | None = None
        self.count = 0
        self.argmaxes: list[torch.Tensor] = []

    def add(self, logits: torch.Tensor) -> None:
        """Add one fold's logits ``(K, *spatial)`` (consumed: turned into probabilities in place)."""
        probabilities = softmax_(logits)
        if self.keep_argmax:
            self.argmaxes.append(probabilities.argmax(0).to(torch.uint8))
        if self.total is None:
            self.total = probabilities
        else:
            self.total += probabilities
        self.count += 1

    def mean(self) -> torch.Tensor:
        assert self.total is not None, "no fold was added"
        if self.count > 1:
            self.total /= self.count
            self.count = 1
        return self.total

    def disagreement(self) -> torch.Tensor | None:
        """Fraction of folds whose arg-max differs from the arg-max of the mean, per voxel (None for one fold)."""
        if len(self.argmaxes) < 2:
            return None
        consensus = self.mean().argmax(0).to(torch.uint8)
        differ = torch.zeros(consensus.shape, dtype=torch.float32)
        for argmax in self.argmaxes:
            differ += argmax != consensus
        return differ / len(self.argmaxes)


def one_hot_foreground(segmentation: np.ndarray, label_values: Sequence[int], dtype: DTypeLike = np.float32) -> np.ndarray:
    """One channel per foreground label value (``label_values`` without 0, in order): the cascade's extra input.

    Parameters
    ----------
    segmentation : ndarray of int, shape (1, *spatial) or (*spatial)
        The previous stage's segmentation on this stage's grid (values outside ``label_values``, such as the
        ``-1`` outside the non-zero mask, give all-zero channels).

    Examples
    --------
    >>> one_hot_foreground(np.array([0, 1, 2, -1]), (0, 1, 2)).tolist()
    [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]
    """
    seg = segmentation[0] if segmentation.ndim > 1 and segmentation.shape[0] == 1 else segmentation
    foreground = [v for v in label_values if v != 0]
    out = np.zeros((len(foreground), *seg.shape), dtype=dtype)
    for channel, value in enumerate(foreground):
        out[channel] = seg == value
    return out


def to_original_geometry(probabilities: np.ndarray, properties: CaseProperties, plans: Plans, configuration: str) -> np.ndarray:
    """Class probabilities ``(K, *preprocessed)`` on the input image grid (certain background outside the crop box).

    Uses the preprocessing stage's inverse, :func:`~autounet.preprocessing.restore.restore_to_original`.

    Returns
    -------
    ndarray of float32, shape (K, *properties.original_shape)
    """
    _, restored = restore_to_original(
        probabilities,
        properties,
        label_values=plans.label_values,
        return_probabilities=True,
        resampling=plans.configuration(configuration).resampling,
    )
    return restored


def map_to_original_geometry(values: np.ndarray, properties: CaseProperties, plans: Plans, configuration: str) -> np.ndarray:
    """A per-voxel map ``(*preprocessed)`` in [0, 1] (e.g. the fold disagreement) on the input grid, 0 outside the
    crop box, resampled like probabilities."""
    _, restored = restore_to_original(
        values[None].astype(np.float32, copy=False),
        properties,
        label_values=(1,),  # one channel that is not background: filled with 0 outside the crop box
        return_probabilities=True,
        resampling=plans.configuration(configuration).resampling,
    )
    return restored[0]


def segmentation_to_original(probabilities: np.ndarray, properties: CaseProperties, plans: Plans, configuration: str) -> np.ndarray:
    """Label map on the input grid from probabilities in a configuration's space: resample to the cropped shape,
    arg-max, un-crop (background outside), un-transpose; class ``i`` becomes label value ``plans.label_values[i]``."""
    return restore_to_original(
        probabilities,
        properties,
        label_values=plans.label_values,
        resampling=plans.configuration(configuration).resampling,
    )


def labels_from_probabilities(probabilities: np.ndarray, label_values: Sequence[int]) -> np.ndarray:
    """Arg-max over classes mapped to label values, in the smallest integer dtype that holds them.

    Examples
    --------
    >>> labels_from_probabilities(np.array([[0.9, 0.1], [0.1, 0.9]]), (0, 4)).tolist()
    [0, 4]
    """
    values = tuple(int(v) for v in label_values)
    dtype = segmentation_dtype(values)
    argmax = np.argmax(probabilities, axis=0)
    if values == tuple(range(len(values))):
        return argmax.astype(dtype)
    return np.asarray(values, dtype=dtype)[argmax]


def segmentation_dtype(label_values: tuple[int, ...]) -> np.dtype:
    """Smallest integer dtype holding the label values (uint8 for up to 255).

    Examples
    --------
    >>> segmentation_dtype((0, 1, 2)), segmentation_dtype((0, 300))
    (dtype('uint8'), dtype('uint16'))
    """
    low, high = min(label_values), max(label_values)
    for dtype in (np.uint8, np.uint16, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    raise ValueError(f"label values {low}..{high} do not fit a 32-bit integer")
