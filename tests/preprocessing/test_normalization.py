"""Normalisation schemes: hand-computed results, the mask, errors, and registering a new scheme."""

from __future__ import annotations

import numpy as np
import pytest

from autounet.planners.plans import ChannelNormalization
from autounet.preprocessing.normalization import NORMALIZERS, normalize_channel, register_normalizer


def test_zscore_whole_image():
    image = np.array([[0.0, 2.0], [4.0, 6.0]], dtype=np.float32)
    stats = normalize_channel(image, None, ChannelNormalization("zscore"))
    assert stats["mean"] == pytest.approx(3.0)
    assert image.mean() == pytest.approx(0.0, abs=1e-6) and image.std() == pytest.approx(1.0, abs=1e-6)


def test_zscore_inside_mask_uses_mask_statistics_and_zeroes_outside():
    image = np.array([0.0, 0.0, 10.0, 20.0, 30.0], dtype=np.float32)
    mask = image > 0
    stats = normalize_channel(image, mask, ChannelNormalization("zscore", use_mask=True))
    assert stats["mean"] == pytest.approx(20.0)
    np.testing.assert_allclose(image, [0, 0, -1.2247449, 0, 1.2247449], atol=1e-6)


def test_zscore_ignores_mask_when_not_planned():
    image = np.array([0.0, 0.0, 10.0, 20.0], dtype=np.float32)
    stats = normalize_channel(image, None, ChannelNormalization("zscore", use_mask=False))
    assert stats["mean"] == pytest.approx(7.5)


def test_ct_clips_then_uses_dataset_statistics():
    image = np.array([-1000.0, 0.0, 50.0, 3000.0], dtype=np.float32)
    setting = ChannelNormalization("ct", clip_range=(-100.0, 200.0), mean=50.0, std=25.0)
    normalize_channel(image, None, setting)
    np.testing.assert_allclose(image, [-6.0, -2.0, 0.0, 6.0])


def test_ct_without_statistics_says_how_to_fix():
    with pytest.raises(ValueError, match="needs clip_range, mean and std"):
        normalize_channel(np.zeros(3, np.float32), None, ChannelNormalization("ct"))


@pytest.mark.parametrize(
    "scheme, values, expected",
    [
        ("none", [1.0, 5.0], [1.0, 5.0]),
        ("rescale_to_0_1", [10.0, 15.0, 20.0], [0.0, 0.5, 1.0]),
        ("rgb_to_0_1", [0.0, 51.0, 255.0], [0.0, 0.2, 1.0]),
    ],
)
def test_simple_schemes(scheme, values, expected):
    image = np.array(values, dtype=np.float32)
    normalize_channel(image, None, ChannelNormalization(scheme))
    np.testing.assert_allclose(image, expected, atol=1e-6)


def test_constant_image_becomes_zero_not_nan():
    image = np.full(4, 7.0, dtype=np.float32)
    normalize_channel(image, None, ChannelNormalization("zscore"))
    assert np.all(image == 0)


def test_rgb_out_of_range_is_refused():
    with pytest.raises(ValueError, match="expects 8-bit values"):
        normalize_channel(np.array([0.0, 300.0], np.float32), None, ChannelNormalization("rgb_to_0_1"))


def test_unknown_scheme_suggests_the_closest():
    with pytest.raises(KeyError, match='Did you mean "zscore"'):
        normalize_channel(np.zeros(2, np.float32), None, ChannelNormalization("zscor"))  # type: ignore[arg-type]


def test_a_new_scheme_is_one_registration():
    name = "test_clip_to_unit"
    if name not in NORMALIZERS:
        @register_normalizer(name)
        def clip_to_unit(image, mask, setting):
            np.clip(image, -1, 1, out=image)
            return {}

    image = np.array([-3.0, 0.5, 3.0], np.float32)
    normalize_channel(image, None, ChannelNormalization(name))  # type: ignore[arg-type]
    np.testing.assert_array_equal(image, [-1.0, 0.5, 1.0])
