"""Resampling rules and the label guarantee (no new values), for both backends."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from autounet.planners.plans import ResamplingPlan
from autounet.preprocessing.resampling import (
    compute_new_shape,
    resample_data,
    resample_labels,
    resample_probabilities,
    resolve_backend,
    separate_z_axis,
)

BACKENDS = ("reference", "separable")


@pytest.mark.parametrize(
    "shape, spacing, target, expected",
    [
        ((20, 100, 100), (5.0, 0.8, 0.8), (5.0, 1.0, 1.0), (20, 80, 80)),
        ((35, 51, 35), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (35, 51, 35)),
        ((10, 10, 10), (1.0, 1.0, 1.0), (0.5, 2.0, 3.0), (20, 5, 3)),
        ((1, 584, 565), (999.0, 1.0, 1.0), (999.0, 2.0, 2.0), (1, 292, 282)),
    ],
)
def test_compute_new_shape(shape, spacing, target, expected):
    assert compute_new_shape(shape, spacing, target) == expected


@pytest.mark.parametrize(
    "current, target, expected",
    [
        ((5.0, 0.7, 0.7), (5.0, 1.0, 1.0), 0),  # anisotropic input: z apart
        ((0.7, 0.7, 5.0), (0.7, 0.7, 5.0), 2),
        ((1.0, 1.0, 1.0), (4.0, 1.0, 1.0), 0),  # anisotropic target
        ((1.0, 1.0, 1.0), (2.0, 2.0, 2.0), None),
        ((5.0, 5.0, 1.0), (5.0, 5.0, 1.0), None),  # two coarse axes: nothing apart (nnU-Net)
        ((2.9, 1.0, 1.0), (2.9, 1.0, 1.0), None),  # below the threshold of 3
    ],
)
def test_separate_z_axis(current, target, expected):
    assert separate_z_axis(current, target, 3.0) == expected


def test_unknown_backend_lists_the_choices():
    with pytest.raises(ValueError, match="choose one of auto, reference, separable"):
        resolve_backend("torch", 10)


def _random_labels(shape, values, seed):
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    bins = np.quantile(smooth, np.linspace(0, 1, len(values) + 1)[1:-1])
    return np.asarray(values, dtype=np.int8)[np.digitize(smooth, bins)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "shape, new_shape, spacing, target",
    [
        ((12, 30, 28), (12, 45, 42), (4.0, 1.0, 1.0), (4.0, 2 / 3, 2 / 3)),  # anisotropic, in-plane up
        ((12, 30, 28), (30, 15, 14), (1.0, 1.0, 1.0), (0.4, 2.0, 2.0)),  # mixed up/down, 3D
        ((16, 24, 24), (8, 12, 12), (1.0, 1.0, 1.0), (2.0, 2.0, 2.0)),  # exact halving: ties everywhere
        ((1, 40, 36), (1, 17, 50), (999.0, 1.0, 1.0), (999.0, 40 / 17, 0.72)),  # 2D
    ],
)
def test_labels_never_gain_values(backend, shape, new_shape, spacing, target):
    values = [-1, 0, 1, 2, 5]
    seg = _random_labels(shape, values, seed=sum(shape))
    out = resample_labels(seg, new_shape, spacing, target, backend=backend)
    assert out.shape == new_shape and out.dtype == seg.dtype
    assert set(np.unique(out)) <= set(values)


@pytest.mark.parametrize("backend", BACKENDS)
def test_label_resampling_keeps_a_thin_structure(backend):
    seg = np.zeros((1, 20, 20), np.uint8)
    seg[0, 5:15, 9:11] = 3  # two voxels wide
    out = resample_labels(seg, (1, 40, 40), (999, 1, 1), (999, 0.5, 0.5), backend=backend)
    assert set(np.unique(out)) == {0, 3} and (out == 3).sum() == pytest.approx(4 * (seg == 3).sum(), rel=0.15)


def test_label_backends_agree():
    seg = _random_labels((20, 40, 44), [0, 1, 2, 3], seed=3)
    for new_shape in [(30, 60, 50), (10, 20, 22), (20, 33, 61)]:
        reference = resample_labels(seg, new_shape, (1, 1, 1), (1, 1, 1), backend="reference")
        fast = resample_labels(seg, new_shape, (1, 1, 1), (1, 1, 1), backend="separable")
        assert np.mean(reference != fast) < 1e-3


def test_anisotropic_labels_use_nearest_along_the_coarse_axis():
    seg = np.zeros((4, 6, 6), np.uint8)
    seg[1] = 1
    seg[2] = 2
    out = resample_labels(seg, (8, 6, 6), (4.0, 1.0, 1.0), (2.0, 1.0, 1.0))
    np.testing.assert_array_equal(out[:, 0, 0], [0, 0, 1, 1, 2, 2, 0, 0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_data_is_clipped_to_its_input_range(backend):
    data = np.zeros((1, 8, 8, 8), np.float32)
    data[0, :, :, 4:] = 1.0  # a step: a cubic spline overshoots it
    out = resample_data(data, (8, 8, 19), (1, 1, 1), (1, 1, 8 / 19), backend=backend)
    assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0


def test_unchanged_shape_returns_the_data():
    data = np.ones((2, 4, 5, 6), np.float32)
    assert resample_data(data, (4, 5, 6), (1, 1, 1), (1, 1, 1)) is data


def test_data_channels_are_independent():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(2, 10, 12, 14)).astype(np.float32)
    both = resample_data(data, (15, 9, 20), (1, 1, 1), (2 / 3, 4 / 3, 0.7))
    first = resample_data(data[:1], (15, 9, 20), (1, 1, 1), (2 / 3, 4 / 3, 0.7))
    np.testing.assert_array_equal(both[:1], first)


def test_anisotropic_data_is_nearest_along_z_by_default():
    data = np.zeros((1, 3, 4, 4), np.float32)
    data[0, 1] = 1.0
    out = resample_data(data, (6, 4, 4), (4.0, 1.0, 1.0), (2.0, 1.0, 1.0))
    np.testing.assert_array_equal(out[0, :, 0, 0], [0, 0, 1, 1, 0, 0])
    spline_z = resample_data(data, (6, 4, 4), (4.0, 1.0, 1.0), (2.0, 1.0, 1.0), ResamplingPlan(order_z=3))
    assert 0 < spline_z[0, 1, 0, 0] < 1  # order_z=3 blends slices


@pytest.mark.parametrize("backend", BACKENDS)
def test_probabilities_are_linear_and_keep_their_sum(backend):
    rng = np.random.default_rng(1)
    raw = rng.random((3, 6, 10, 10)).astype(np.float32)
    probabilities = raw / raw.sum(axis=0, keepdims=True)
    out = resample_probabilities(probabilities, (12, 17, 23), (2, 1, 1), (1, 10 / 17, 10 / 23), backend=backend)
    np.testing.assert_allclose(out.sum(axis=0), 1.0, atol=1e-5)
    assert out.min() >= 0 and out.max() <= 1
