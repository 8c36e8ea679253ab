"""Normalisation scheme per channel name, the non-zero mask rule and the CT statistics."""

from __future__ import annotations

import pytest

from autounet.errors import PlansError
from autounet.fingerprint import IntensityStats
from autounet.planners.normalization import normalization_scheme, plan_normalization, plan_use_mask_for_norm

STATS = IntensityStats(mean=100.0, median=90.0, std=50.0, min=-1000.0, max=3000.0, percentile_00_5=-50.0, percentile_99_5=300.0)


@pytest.mark.parametrize(
    "name, scheme",
    [
        ("CT", "ct"), ("ct", "ct"), (" CT ", "ct"),
        ("MRI", "zscore"), ("T1", "zscore"), ("T2", "zscore"), ("FLAIR", "zscore"), ("ADC", "zscore"),
        ("t1gd", "zscore"), ("US", "zscore"), ("zscore", "zscore"), ("", "zscore"),
        ("noNorm", "none"), ("NONORM", "none"), ("none", "none"),
        ("rescale_to_0_1", "rescale_to_0_1"), ("rgb_to_0_1", "rgb_to_0_1"), ("RGB_to_0_1", "rgb_to_0_1"),
        ("CT_arterial", "zscore"),  # only the exact name selects CT, as in nnU-Net
    ],
)
def test_scheme_from_channel_name(name, scheme):
    assert normalization_scheme(name) == scheme


@pytest.mark.parametrize(
    "relative_size, expected",
    [(1.0, (True, False, False)), (0.75, (False, False, False)), (0.749, (True, False, False)), (0.36, (True, False, False))],
)
def test_mask_only_for_zscore_when_cropping_shrank_images(relative_size, expected):
    masks = plan_use_mask_for_norm(["zscore", "ct", "rescale_to_0_1"], relative_size)
    assert masks == (expected if relative_size < 0.75 else (False, False, False))


def test_forced_mask_overrides_the_crop_rule():
    assert plan_use_mask_for_norm(["zscore", "none"], 1.0, force=True) == (True, False)
    assert plan_use_mask_for_norm(["zscore"], 0.3, force=False) == (False,)


def test_ct_gets_foreground_clip_mean_and_std():
    (ct,) = plan_normalization(["CT"], [STATS], 1.0)
    assert ct.scheme == "ct" and not ct.use_mask
    assert ct.clip_range == (-50.0, 300.0) and ct.mean == 100.0 and ct.std == 50.0


def test_multichannel_mri_with_skull_stripping():
    planned = plan_normalization(["FLAIR", "T1w", "t1gd", "T2w"], [STATS] * 4, 0.3612)
    assert [n.scheme for n in planned] == ["zscore"] * 4
    assert all(n.use_mask and n.clip_range is None and n.mean is None for n in planned)


def test_explicit_schemes_carry_no_statistics():
    planned = plan_normalization(["noNorm", "rescale_to_0_1", "rgb_to_0_1"], [STATS] * 3, 0.5)
    assert [(n.scheme, n.use_mask, n.mean) for n in planned] == [
        ("none", False, None), ("rescale_to_0_1", False, None), ("rgb_to_0_1", False, None)
    ]


def test_one_intensity_entry_per_channel_is_required():
    with pytest.raises(PlansError, match="2 channel names but intensity statistics for 1"):
        plan_normalization(["T2", "ADC"], [STATS], 1.0)
