"""Per-channel intensity normalisation schemes, looked up by name in :data:`NORMALIZERS`.

Each scheme is a small function ``(image, mask, setting) -> statistics`` that normalises one channel
*in place* and returns the numbers it used (recorded in the case properties). A new scheme is one
registration::

    @register_normalizer("clip_to_unit")
    def clip_to_unit(image, mask, setting):
        np.clip(image, -1, 1, out=image)
        return {}

and the plans can then name it in ``ChannelNormalization(scheme="clip_to_unit")``.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from autounet.planners.plans import ChannelNormalization
from autounet.registry import Registry

#: Smallest standard deviation (or intensity range) divided by, as in nnU-Net: a constant image becomes 0
#: instead of NaN/Inf.
MIN_SCALE = 1e-8

#: Largest value ``rgb_to_0_1`` accepts (8-bit colour images; nnU-Net's ``RGBTo01Normalization`` asserts the same).
RGB_MAX = 255.0


class Normalizer(Protocol):
    """Normalise one channel in place and return the statistics used.

    Parameters
    ----------
    image : ndarray of float32, shape ``spatial``
        One channel, already cropped; changed in place.
    mask : ndarray of bool, shape ``spatial``, or None
        The non-zero region (holes filled); given when the plans set ``use_mask`` for this channel.
    setting : ChannelNormalization
        The planned scheme and its dataset-level numbers (``clip_range``, ``mean``, ``std`` for CT).
    """

    def __call__(self, image: np.ndarray, mask: np.ndarray | None, setting: ChannelNormalization) -> dict[str, float]:
        ...


NORMALIZERS: Registry[Normalizer] = Registry("normalization scheme")


def register_normalizer(name: str) -> Callable[[Normalizer], Normalizer]:
    """Decorator registering a normalisation function under ``name`` (see the module docstring)."""
    return NORMALIZERS.register(name)


def normalize_channel(image: np.ndarray, mask: np.ndarray | None, setting: ChannelNormalization) -> dict[str, float]:
    """Apply the scheme named by ``setting.scheme`` to ``image`` in place; return the statistics used.

    Examples
    --------
    >>> image = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    >>> normalize_channel(image, None, ChannelNormalization("zscore"))
    {'mean': 2.0, 'std': 0.816496580927726}
    >>> image.round(3)
    array([-1.225,  0.   ,  1.225], dtype=float32)
    """
    return NORMALIZERS.get(setting.scheme)(image, mask, setting)


@register_normalizer("zscore")
def zscore(image: np.ndarray, mask: np.ndarray | None, setting: ChannelNormalization) -> dict[str, float]:
    """Per-image z-score; with ``use_mask`` the statistics come from inside the mask and outside becomes 0.

    Notes
    -----
    nnU-Net v2 ``ZScoreNormalization``.
    """
    if setting.use_mask and mask is not None and not mask.all():
        inside = image[mask]
        mean = float(inside.mean(dtype=np.float64)) if inside.size else 0.0
        std = float(inside.std(dtype=np.float64)) if inside.size else 1.0
        image -= np.float32(mean)
        image /= np.float32(max(std, MIN_SCALE))
        image[~mask] = 0
    else:
        mean = float(image.mean(dtype=np.float64))
        std = float(image.std(dtype=np.float64))
        image -= np.float32(mean)
        image /= np.float32(max(std, MIN_SCALE))
    return {"mean": mean, "std": std}


@register_normalizer("ct")
def ct(image: np.ndarray, mask: np.ndarray | None, setting: ChannelNormalization) -> dict[str, float]:
    """Clip to the dataset's foreground percentiles, then z-score with the dataset's foreground mean/std.

    Notes
    -----
    nnU-Net v2 ``CTNormalization`` (0.5/99.5 percentiles, mean and std of foreground voxels of all cases).
    """
    if setting.clip_range is None or setting.mean is None or setting.std is None:
        raise ValueError(
            "ct normalisation needs clip_range, mean and std in the plans (dataset foreground statistics); "
            're-run "autounet plan" or add them to the channel\'s normalization entry'
        )
    low, high = setting.clip_range
    np.clip(image, low, high, out=image)
    image -= np.float32(setting.mean)
    image /= np.float32(max(setting.std, MIN_SCALE))
    return {"clip_low": low, "clip_high": high, "mean": setting.mean, "std": setting.std}


@register_normalizer("none")
def none(image: np.ndarray, mask: np.ndarray | None, setting: ChannelNormalization) -> dict[str, float]:
    """Leave intensities as they are (only the dtype becomes float32)."""
    return {}


@register_normalizer("rescale_to_0_1")
def rescale_to_0_1(image: np.ndarray, mask: np.ndarray | None, setting: ChannelNormalization) -> dict[str, float]:
    """Per-image min/max rescaling to [0, 1].

    Notes
    -----
    nnU-Net v2 ``RescaleTo01Normalization``.
    """
    low = float(image.min()) if image.size else 0.0
    high = float(image.max()) if image.size else 0.0
    image -= np.float32(low)
    image /= np.float32(max(high - low, MIN_SCALE))
    return {"min": low, "max": high}


@register_normalizer("rgb_to_0_1")
def rgb_to_0_1(image: np.ndarray, mask: np.ndarray | None, setting: ChannelNormalization) -> dict[str, float]:
    """Divide 8-bit colour values by 255.

    Raises
    ------
    ValueError
        If the channel holds values outside 0..255 (not an 8-bit colour image).
    """
    if image.size and (image.min() < 0 or image.max() > RGB_MAX):
        raise ValueError(
            f"rgb_to_0_1 expects 8-bit values in 0..255 but found {float(image.min())}..{float(image.max())}; "
            'use "rescale_to_0_1" or "zscore" for this channel in the plans'
        )
    image /= np.float32(RGB_MAX)
    return {}
