"""The fast separable path agrees with scipy.ndimage.zoom (the spline reference) to float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from autounet.preprocessing import separable
from autounet.preprocessing.resampling import resample_data, resample_labels


def _smooth_volume(shape, seed=0):
    return ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=shape), 1.5).astype(np.float32) * 100


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("shape, new_shape", [((20, 30, 25), (31, 17, 40)), ((9, 40, 40), (9, 64, 23)), ((1, 33, 47), (1, 70, 20))])
def test_matches_ndimage_zoom(order, shape, new_shape):
    volume = _smooth_volume(shape)
    zoom = np.array(new_shape) / np.array(shape)
    reference = ndimage.zoom(volume.astype(np.float64), zoom, order=order, mode="nearest", grid_mode=True)
    fast = separable.resample(volume, new_shape, (order,) * 3)
    assert fast.dtype == np.float32 and fast.shape == reference.shape
    np.testing.assert_allclose(fast, reference, atol=1e-5 * np.ptp(volume))


def test_anisotropic_data_paths_agree():
    data = _smooth_volume((2, 12, 48, 40))
    args = ((24, 60, 50), (5.0, 0.8, 0.8), (2.5, 0.64, 0.64))
    reference = resample_data(data, *args, backend="reference")
    fast = resample_data(data, *args, backend="separable")
    assert np.abs(reference - fast).max() <= 1e-5 * np.ptp(data)


def test_labels_agree_with_per_label_reference():
    # Exact ties (two labels at 0.5) are broken by float rounding in the reference and by the smaller value
    # here, so a handful of boundary voxels may differ.
    seg = np.zeros((18, 40, 40), np.int16)
    grid = np.indices(seg.shape)
    seg[((grid - np.array([9, 20, 20])[:, None, None, None]) ** 2).sum(0) < 80] = 1
    seg[((grid - np.array([9, 14, 22])[:, None, None, None]) ** 2).sum(0) < 15] = 300
    for new_shape in [(27, 60, 52), (9, 20, 20)]:
        reference = resample_labels(seg, new_shape, (1, 1, 1), (1, 1, 1), backend="reference")
        fast = resample_labels(seg, new_shape, (1, 1, 1), (1, 1, 1), backend="separable")
        assert np.mean(fast != reference) < 1e-3


def test_a_label_smaller_than_the_sampling_step_may_vanish_but_nothing_new_appears():
    seg = np.zeros((1, 1, 9), np.uint8)
    seg[0, 0, 4] = 7
    out = separable.resample_labels(seg, (1, 1, 2), (0, 0, 1))
    assert set(np.unique(out)) <= {0, 7}


def test_cubic_label_interpolation_falls_back_to_the_whole_volume():
    seg = np.zeros((1, 12, 12), np.uint8)
    seg[0, 3:9, 3:9] = 1
    out = separable.resample_labels(seg, (1, 24, 24), (0, 3, 3))
    assert set(np.unique(out)) == {0, 1} and 100 < (out == 1).sum() < 190
