"""Augmentation of a cascade's previous-stage segmentation, and its move from the labels to the input channels.

The loader carries the previous stage's segmentation as label channel 1 (``autounet.trainers.cascade``), so the
spatial transform moves it with the image and no intensity transform touches it. At the end of the pipeline
:class:`PreviousStageToOneHot` turns it into one input channel per foreground class, the layout inference feeds
(``autounet.inference.ensemble.one_hot_foreground``). Two transforms then make it look like a worse prediction than
it is, so the cascade learns to correct its input rather than copy it (nnU-Net v2's cascade augmentation, with its
probabilities): :class:`RandomMorphology` dilates, erodes, opens or closes each class map, and
:class:`RemoveRandomComponent` deletes one small connected component. They draw from NumPy's global generator,
which the loader seeds per batch, so batches stay replayable.
"""

from __future__ import annotations

import numpy as np
from batchgenerators.transforms.abstract_transforms import AbstractTransform  # type: ignore[import-untyped]
from scipy import ndimage

#: nnU-Net v2 (``get_training_transforms`` when cascaded): probability per sample of the morphological operation,
#: and the range of its ball radius in voxels.
P_MORPHOLOGY, MORPHOLOGY_RADIUS = 0.4, (1, 8)
#: Probability per sample of removing a connected component, and the largest share of the patch a component may
#: cover to be removed (larger ones are kept: removing them would make the input useless rather than imperfect).
P_REMOVE_COMPONENT, REMOVE_COMPONENT_MAX_FRACTION = 0.2, 0.15
OPERATIONS = ("dilation", "erosion", "opening", "closing")


class PreviousStageToOneHot(AbstractTransform):
    """``seg`` (B, 2, ...) -> ``seg`` (B, 1, ...) and ``num_classes - 1`` one-hot channels appended to ``data``.

    Label channel 1 holds class indices (0 background, negative outside the image); class ``c`` becomes input
    channel ``C + c - 1``.

    Examples
    --------
    >>> batch = {"data": np.zeros((1, 1, 3), np.float32), "seg": np.array([[[0, 1, 1], [2, 1, -1]]], np.float32)}
    >>> out = PreviousStageToOneHot(3)(**batch)
    >>> out["data"][0].tolist(), out["seg"].shape
    ([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], (1, 1, 3))
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = int(num_classes)

    def __call__(self, **batch):
        seg, data = batch["seg"], batch["data"]
        previous = np.rint(seg[:, 1])
        one_hot = np.stack([previous == c for c in range(1, self.num_classes)], axis=1).astype(data.dtype)
        batch["data"] = np.concatenate([data, one_hot], axis=1)
        batch["seg"] = seg[:, :1]
        return batch


def _ball_operation(mask: np.ndarray, operation: str, radius: float) -> np.ndarray:
    """Binary ``operation`` with a ball of ``radius`` voxels, through distance transforms (cost independent of the
    radius, unlike a structuring element)."""

    def dilate(m: np.ndarray) -> np.ndarray:
        return m | (ndimage.distance_transform_edt(~m) <= radius) if m.any() else m

    def erode(m: np.ndarray) -> np.ndarray:
        return ndimage.distance_transform_edt(m) > radius if m.any() else m

    if operation == "dilation":
        return dilate(mask)
    if operation == "erosion":
        return erode(mask)
    if operation == "opening":
        return dilate(erode(mask))
    return erode(dilate(mask))


class RandomMorphology(AbstractTransform):
    """With probability ``p`` per sample, dilate, erode, open or close every one-hot channel in ``channels`` (in
    random order, each with its own operation and ball radius); voxels a channel gains leave the other channels, so
    the channels stay one-hot."""

    def __init__(self, channels: tuple[int, ...], p_per_sample: float = P_MORPHOLOGY, radius: tuple[int, int] = MORPHOLOGY_RADIUS) -> None:
        self.channels = tuple(channels)
        self.p_per_sample = p_per_sample
        self.radius = radius

    def __call__(self, **batch):
        data = batch["data"]
        for sample in range(data.shape[0]):
            if np.random.uniform() >= self.p_per_sample:
                continue
            for channel in np.random.permutation(self.channels):
                before = data[sample, channel] > 0.5
                operation = OPERATIONS[np.random.randint(len(OPERATIONS))]
                after = _ball_operation(before, operation, np.random.randint(self.radius[0], self.radius[1] + 1))
                data[sample, channel] = after
                gained = after & ~before
                for other in self.channels:
                    if other != channel:
                        data[sample, other][gained] = 0
        return batch


class RemoveRandomComponent(AbstractTransform):
    """With probability ``p`` per sample, remove from each channel in ``channels`` one connected component, drawn
    among those covering at most ``max_fraction`` of the patch."""

    def __init__(self, channels: tuple[int, ...], p_per_sample: float = P_REMOVE_COMPONENT,
                 max_fraction: float = REMOVE_COMPONENT_MAX_FRACTION) -> None:
        self.channels = tuple(channels)
        self.p_per_sample = p_per_sample
        self.max_fraction = max_fraction

    def __call__(self, **batch):
        data = batch["data"]
        for sample in range(data.shape[0]):
            if np.random.uniform() >= self.p_per_sample:
                continue
            for channel in self.channels:
                components, count = ndimage.label(data[sample, channel] > 0.5)
                if count == 0:
                    continue
                sizes = np.bincount(components.ravel())[1:]
                small = np.flatnonzero(sizes <= self.max_fraction * components.size) + 1
                if len(small):
                    data[sample, channel][components == small[np.random.randint(len(small))]] = 0
        return batch


def previous_stage_transforms(num_classes: int, augment: bool, probability_scale: float = 1.0) -> list:
    """The cascade's last transforms: move the previous segmentation to one-hot input channels (the last
    ``num_classes - 1`` channels of ``data``), then, when training, degrade it."""
    transforms: list = [PreviousStageToOneHot(num_classes)]
    if augment:
        channels = tuple(range(-(num_classes - 1), 0))
        transforms += [
            RandomMorphology(channels, P_MORPHOLOGY * probability_scale),
            RemoveRandomComponent(channels, P_REMOVE_COMPONENT * probability_scale),
        ]
    return transforms
