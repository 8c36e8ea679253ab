"""Pooling per axis, strides, kernel sizes, patch rounding and features per stage."""

from __future__ import annotations

import pytest

from autounet.errors import PlansError
from autounet.planners.topology import (
    plan_convs_per_stage,
    plan_features_per_stage,
    plan_topology,
    round_up_to_multiple,
)


def test_isotropic_pools_every_axis_while_it_keeps_four_voxels():
    topology = plan_topology((1.0, 1.0, 1.0), (128, 128, 128))
    assert topology.num_pool_per_axis == (5, 5, 5)  # 128 -> 4
    assert topology.strides == ((1, 1, 1),) + ((2, 2, 2),) * 5
    assert topology.kernel_sizes == ((3, 3, 3),) * 6
    assert topology.shape_divisor == (32, 32, 32) and topology.patch_size == (128, 128, 128)


def test_anisotropic_axis_waits_and_uses_kernel_one():
    topology = plan_topology((10.0, 0.5, 0.5), (14, 384, 320))
    # in-plane pools 4 times (spacing 0.5 -> 8 mm, within 2x of 10 mm) before z joins
    assert topology.strides[1:5] == ((1, 2, 2),) * 4
    assert topology.strides[5] == (2, 2, 2)
    assert topology.kernel_sizes[:4] == ((1, 3, 3),) * 4
    assert topology.kernel_sizes[4:] == ((3, 3, 3),) * 3
    assert topology.patch_size == (14, 384, 320)


def test_an_axis_stops_pooling_below_eight_voxels():
    topology = plan_topology((1.0, 1.0, 1.0), (8, 64, 64))
    assert topology.num_pool_per_axis == (1, 4, 4)


def test_a_single_remaining_axis_needs_twelve_voxels():
    assert plan_topology((1.0, 1.0), (11, 4)).n_stages == 1
    assert plan_topology((1.0, 1.0), (12, 4)).num_pool_per_axis == (1, 0)


def test_tiny_patch_gives_one_stage():
    topology = plan_topology((1.0, 1.0, 1.0), (6, 6, 6))
    assert topology.n_stages == 1 and topology.kernel_sizes == ((3, 3, 3),)


def test_patch_is_rounded_up_to_the_total_stride():
    assert plan_topology((1.0, 1.0, 1.0), (36, 50, 35)).patch_size == (40, 56, 40)
    assert plan_topology((1.0, 1.0, 1.0), (36, 50.5, 35)).patch_size == (40, 56, 40)


@pytest.mark.parametrize(
    "spacing, patch, match",
    [
        ((1.0, 1.0, 1.0), (64, 64), "patch_size has 2 axes but spacing has 3"),
        ((1.0, 0.0, 1.0), (64, 64, 64), "must be positive"),
        ((1.0, 1.0, 1.0), (64, 0, 64), "must be positive"),
    ],
)
def test_topology_errors(spacing, patch, match):
    with pytest.raises(PlansError, match=match):
        plan_topology(spacing, patch)


def test_round_up_to_multiple():
    assert round_up_to_multiple((30, 64, 65), (8, 16, 1)) == (32, 64, 65)


@pytest.mark.parametrize(
    "n_stages, ndim, expected",
    [
        (1, 3, (32,)),
        (6, 3, (32, 64, 128, 256, 320, 320)),
        (8, 2, (32, 64, 128, 256, 512, 512, 512, 512)),
    ],
)
def test_features_double_per_stage_up_to_the_cap(n_stages, ndim, expected):
    assert plan_features_per_stage(n_stages, ndim) == expected


def test_width_knob():
    assert plan_features_per_stage(4, 3, base_features=16) == (16, 32, 64, 128)


def test_two_convs_per_stage():
    assert plan_convs_per_stage(5) == ((2,) * 5, (2,) * 4)
