"""Per-channel intensity normalisation: which scheme each channel gets and whether it uses the non-zero mask."""

from __future__ import annotations

from collections.abc import Sequence

from autounet.errors import PlansError
from autounet.fingerprint.schema import IntensityStats
from autounet.planners.plans import ChannelNormalization

#: Channel names (compared case-insensitively, surrounding spaces ignored) that select a scheme other than
#: z-score. The nnU-Net names (``nnunetv2/preprocessing/normalization/map_channel_name_to_normalization.py``)
#: plus our own scheme names, so a channel can also be named after the scheme it wants.
SCHEME_BY_CHANNEL_NAME: dict[str, str] = {
    "ct": "ct",
    "nonorm": "none",
    "none": "none",
    "zscore": "zscore",
    "rescale_to_0_1": "rescale_to_0_1",
    "rgb_to_0_1": "rgb_to_0_1",
}

#: Scheme of every other channel name (MRI, T1, T2, FLAIR, ADC, ...): per-image z-score.
DEFAULT_SCHEME = "zscore"

#: Restrict normalisation to the non-zero mask when cropping to it shrank the median image below this fraction
#: of its size (nnU-Net: ``median_relative_size_after_cropping < 3 / 4``), e.g. skull-stripped brain MRI.
MASK_RELATIVE_SIZE_THRESHOLD = 0.75

#: Schemes that may use the non-zero mask (they leave voxels outside it at zero). nnU-Net's
#: ``leaves_pixels_outside_mask_at_zero_if_use_mask_for_norm_is_true`` is True only for z-score.
MASKABLE_SCHEMES = frozenset({"zscore"})


def normalization_scheme(channel_name: str) -> str:
    """Normalisation scheme selected by a channel (modality) name.

    Rule: ``CT`` selects ``"ct"``; ``noNorm`` selects ``"none"``; ``rescale_to_0_1`` and ``rgb_to_0_1`` select
    themselves; ``zscore`` and ``none`` are accepted as explicit names; any other name (``MRI``, ``T2``,
    ``FLAIR``, ``ADC``, ...) selects per-image ``"zscore"``. Case and surrounding spaces are ignored.

    Parameters
    ----------
    channel_name : str
        The name from ``dataset.json`` (``channel_names`` or MSD ``modality``).

    Returns
    -------
    str
        One of ``"zscore"``, ``"ct"``, ``"none"``, ``"rescale_to_0_1"``, ``"rgb_to_0_1"``.

    Notes
    -----
    nnU-Net v2 ``get_normalization_scheme``: the same lookup, ``ZScoreNormalization`` by default.

    Examples
    --------
    >>> [normalization_scheme(n) for n in ("CT", "MRI", "T2", "noNorm", "rescale_to_0_1", "RGB_to_0_1")]
    ['ct', 'zscore', 'zscore', 'none', 'rescale_to_0_1', 'rgb_to_0_1']
    """
    return SCHEME_BY_CHANNEL_NAME.get(str(channel_name).strip().casefold(), DEFAULT_SCHEME)


def plan_use_mask_for_norm(
    schemes: Sequence[str], median_relative_size_after_crop: float, force: bool | None = None
) -> tuple[bool, ...]:
    """Whether each channel is normalised inside the non-zero mask only.

    Rule: when cropping to the non-zero region shrank the median image below 3/4 of its size (the background is
    mostly zero, as in skull-stripped MRI), z-score channels use the mask; other schemes never do. ``force``
    (nnU-Net's ``use_mask_for_norm`` key in ``dataset.json``) turns the mask on (True) or off (False) for all
    maskable channels regardless of the crop size.

    Examples
    --------
    >>> plan_use_mask_for_norm(["zscore", "ct"], 0.36)
    (True, False)
    >>> plan_use_mask_for_norm(["zscore"], 1.0), plan_use_mask_for_norm(["zscore"], 1.0, force=True)
    ((False,), (True,))
    """
    if force is None:
        use_mask = median_relative_size_after_crop < MASK_RELATIVE_SIZE_THRESHOLD
    else:
        use_mask = bool(force)
    return tuple(use_mask and scheme in MASKABLE_SCHEMES for scheme in schemes)


def plan_normalization(
    channel_names: Sequence[str],
    intensity: Sequence[IntensityStats],
    median_relative_size_after_crop: float,
    use_mask_for_norm: bool | None = None,
) -> tuple[ChannelNormalization, ...]:
    """Normalisation of every input channel.

    Rule: the scheme comes from the channel name (:func:`normalization_scheme`); the mask from the crop size
    (:func:`plan_use_mask_for_norm`). CT channels are clipped to the dataset's foreground 0.5 and 99.5
    percentiles and z-scored with the foreground mean and standard deviation; z-score channels use each image's
    own statistics at preprocessing time, so they carry no numbers here.

    Parameters
    ----------
    channel_names : sequence of str
        One name per input channel.
    intensity : sequence of IntensityStats
        Foreground intensity statistics per channel, same order.
    median_relative_size_after_crop : float
        Median over cases of (voxels after cropping to the non-zero region) / (voxels before).
    use_mask_for_norm : bool, optional
        Force the non-zero mask on or off (None: decide from the crop size).

    Returns
    -------
    tuple of ChannelNormalization

    Raises
    ------
    PlansError
        If there is not one intensity entry per channel.

    Examples
    --------
    >>> ct = IntensityStats(mean=100.0, median=90.0, std=50.0, min=-1000.0, max=3000.0,
    ...                     percentile_00_5=-50.0, percentile_99_5=300.0)
    >>> plan_normalization(["CT"], [ct], 1.0)[0]
    ChannelNormalization(scheme='ct', use_mask=False, clip_range=(-50.0, 300.0), mean=100.0, std=50.0)
    >>> plan_normalization(["FLAIR"], [ct], 0.5)[0]
    ChannelNormalization(scheme='zscore', use_mask=True, clip_range=None, mean=None, std=None)
    """
    if len(intensity) != len(channel_names):
        raise PlansError(
            f"{len(channel_names)} channel names but intensity statistics for {len(intensity)} channels; "
            "recompute the fingerprint so it has one entry per channel"
        )
    schemes = [normalization_scheme(name) for name in channel_names]
    masks = plan_use_mask_for_norm(schemes, median_relative_size_after_crop, use_mask_for_norm)
    planned = []
    for scheme, use_mask, stats in zip(schemes, masks, intensity):
        if scheme == "ct":
            planned.append(
                ChannelNormalization(
                    scheme="ct",
                    use_mask=use_mask,
                    clip_range=(float(stats.percentile_00_5), float(stats.percentile_99_5)),
                    mean=float(stats.mean),
                    std=float(stats.std),
                )
            )
        else:
            planned.append(ChannelNormalization(scheme=scheme, use_mask=use_mask))  # type: ignore[arg-type]
    return tuple(planned)
