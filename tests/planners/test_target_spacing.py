"""Target spacing (median, anisotropic 10th percentile), transposition and resampled median shapes."""

from __future__ import annotations

import pytest

from autounet.errors import PlansError
from autounet.planners.target_spacing import (
    is_anisotropic,
    median_resampled_shape,
    plan_target_spacing,
    plan_transpose,
    resampled_shape,
    transpose_values,
)


@pytest.mark.parametrize(
    "spacings, shapes, expected",
    [
        # plain median per axis
        ([[1, 1, 1], [2, 1, 1], [3, 0.5, 0.5]], [[50, 60, 60]] * 3, (2.0, 1.0, 1.0)),
        # a single case is its own median
        ([[2.5, 0.7, 0.7]], [[90, 512, 512]], (2.5, 0.7, 0.7)),
        # anisotropic spacing and voxels: 10th percentile of the coarse axis (np.percentile, linear)
        ([[5, 0.5, 0.5], [4, 0.5, 0.5], [6, 0.5, 0.5]], [[20, 300, 300]] * 3, (4.2, 0.5, 0.5)),
        # coarse spacing but not fewer voxels: the median stays
        ([[5, 0.5, 0.5], [4, 0.5, 0.5], [6, 0.5, 0.5]], [[200, 300, 300]] * 3, (5.0, 0.5, 0.5)),
        # fewer voxels but spacing within 3x: the median stays
        ([[1.4, 0.5, 0.5], [1.6, 0.5, 0.5]], [[20, 300, 300]] * 2, (1.5, 0.5, 0.5)),
        # the coarse axis may be the last one
        ([[0.5, 0.5, 5], [0.5, 0.5, 4], [0.5, 0.5, 6]], [[300, 300, 20]] * 3, (0.5, 0.5, 4.2)),
    ],
)
def test_target_spacing_rule(spacings, shapes, expected):
    assert plan_target_spacing(spacings, shapes) == pytest.approx(expected)


def test_percentile_finer_than_other_axes_is_clamped_just_above_them():
    # median z = 4 > 3 x 1.0, but the 10th percentile (0.5) would be finer than y/x: clamp to 1.0 + 1e-5
    spacings = [[0.5, 1.0, 1.0]] * 3 + [[4.0, 1.0, 1.0]] * 7
    assert plan_target_spacing(spacings, [[10, 200, 200]] * 10) == pytest.approx((1.00001, 1.0, 1.0))


def test_extreme_anisotropy_keeps_the_coarse_axis():
    spacings = [[10.0, 0.5, 0.5]] * 30
    assert plan_target_spacing(spacings, [[16, 400, 400]] * 30) == (10.0, 0.5, 0.5)


@pytest.mark.parametrize(
    "spacings, shapes, match",
    [
        ([], [], "one row per case"),
        ([[1, 1, 1]], [[1, 1, 1], [2, 2, 2]], "one spacing and one shape per case"),
        ([[0, 1, 1]], [[10, 10, 10]], "must be positive"),
    ],
)
def test_target_spacing_errors(spacings, shapes, match):
    with pytest.raises(PlansError, match=match):
        plan_target_spacing(spacings, shapes)


@pytest.mark.parametrize(
    "spacing, forward, backward",
    [
        ((3.0, 0.5, 0.5), (0, 1, 2), (0, 1, 2)),
        ((0.8, 2.5, 0.8), (1, 0, 2), (1, 0, 2)),
        ((0.8, 0.7, 2.5), (2, 0, 1), (1, 2, 0)),
        ((1.0, 1.0, 1.0), (0, 1, 2), (0, 1, 2)),  # ties keep the first axis
    ],
)
def test_transpose_puts_coarsest_axis_first(spacing, forward, backward):
    assert plan_transpose(spacing) == (forward, backward)
    assert transpose_values(transpose_values(spacing, forward), backward) == spacing


def test_2d_data_is_never_transposed():
    assert plan_transpose((999.0, 1.0, 1.0), is_2d=True) == ((0, 1, 2), (0, 1, 2))
    assert plan_transpose((1.0, 2.0)) == ((0, 1), (0, 1))


def test_is_anisotropic():
    assert is_anisotropic((3.1, 1.0, 1.0)) and not is_anisotropic((3.0, 1.0, 1.0))


def test_resampled_shapes_round_per_case_then_take_the_median():
    assert resampled_shape((10, 20, 20), (2.0, 0.5, 0.5), (1.0, 1.0, 1.0)) == (20, 10, 10)
    assert resampled_shape((3, 3, 3), (1.0, 1.0, 1.0), (2.0, 2.0, 2.0)) == (2, 2, 2)  # 1.5 rounds to even
    median = median_resampled_shape([[1, 1, 1], [2, 2, 2]], [[10, 10, 10], [10, 10, 11]], (1, 1, 1))
    assert median == (15.0, 15.0, 16.0)
