"""Initial patch, tiny-image enlargement, the shrinking step and the memory loop."""

from __future__ import annotations

import pytest

from autounet.errors import PlansError
from autounet.planners.memory import fits_memory
from autounet.planners.patch_size import (
    axis_to_shrink,
    enlarge_tiny_patch,
    initial_patch_size,
    plan_patch_size,
    shrink_patch_once,
)


@pytest.mark.parametrize(
    "spacing, median, expected",
    [
        ((1.0, 1.0, 1.0), (500, 500, 500), (256, 256, 256)),  # 256^3 voxels, isotropic
        ((2.0, 1.0, 1.0), (500, 500, 500), (161, 323, 323)),  # aspect ratio 1/spacing at 256^3 voxels
        ((1.0, 1.0, 1.0), (36, 50, 35), (36, 50, 35)),  # clipped to the median image
        ((1.0, 1.0), (3000, 3000), (2048, 2048)),  # 2D starts at 2048^2
        ((0.5, 1.0), (3000, 3000), (2896, 1448)),
    ],
)
def test_initial_patch_size(spacing, median, expected):
    assert initial_patch_size(spacing, median) == expected


def test_tiny_images_get_a_patch_with_one_pooling():
    assert enlarge_tiny_patch((5, 6, 7), (1.0, 1.0, 1.0)) == (8, 8, 8)
    assert enlarge_tiny_patch((2, 6, 6), (5.0, 1.0, 1.0)) == (2, 8, 8)  # coarse axis left alone
    assert enlarge_tiny_patch((6, 6, 6), (1.0, 3.0, 3.0)) == (12, 6, 6)  # one fine axis needs 12 voxels
    assert enlarge_tiny_patch((24, 24, 24), (1.0, 1.0, 1.0)) == (24, 24, 24)


def test_axis_to_shrink_is_the_largest_relative_to_the_median():
    assert axis_to_shrink((128, 128, 128), (100, 400, 400)) == 0
    assert axis_to_shrink((64, 64, 64), (64, 64, 64)) == 2  # ties: the last axis, like nnU-Net


def test_shrinking_does_not_skip_sizes_when_the_stride_drops():
    # 256 has stride 64 (6 pools to 4); 192 would be skipped by subtracting 64, 224 = 7 x 32 is kept
    assert shrink_patch_once((256, 256, 256), (1.0, 1.0, 1.0), (256, 256, 256), (64, 64, 64)) == (256, 256, 224)


def test_plan_fits_the_budget_and_only_just():
    plan = plan_patch_size((1.0, 1.0, 1.0), (512, 512, 512), num_classes=2)
    assert plan.shrink_steps > 0
    assert fits_memory(plan.memory_estimate, 2, 3)
    assert plan.patch_size == (128, 128, 128) and plan.topology.n_stages == 6


def test_more_memory_gives_a_larger_patch_and_less_a_smaller_one():
    sizes = [
        plan_patch_size((1.0, 1.0, 1.0), (512, 512, 512), gb).patch_size for gb in (2.0, 8.0, 32.0)
    ]
    volumes = [a * b * c for a, b, c in sizes]
    assert volumes[0] < volumes[1] < volumes[2]


def test_larger_planning_batch_gives_a_smaller_patch():
    two = plan_patch_size((1.0, 1.0, 1.0), (512, 512, 512)).patch_size
    eight = plan_patch_size((1.0, 1.0, 1.0), (512, 512, 512), batch_size=8).patch_size
    assert eight[0] * eight[1] * eight[2] < two[0] * two[1] * two[2]


def test_images_smaller_than_any_patch():
    plan = plan_patch_size((1.0, 1.0, 1.0), (5, 6, 6))
    assert plan.patch_size == (8, 8, 8) and plan.topology.n_stages == 2 and plan.enlarged_axes == (0, 1, 2)


def test_budget_too_small_for_any_patch_is_refused():
    with pytest.raises(PlansError, match="raise --gpu-memory or lower --batch-size"):
        plan_patch_size((1.0, 1.0, 1.0), (64, 64, 64), 0.0001)


def test_planning_batch_must_be_positive():
    with pytest.raises(PlansError, match="batch_size must be at least 1"):
        plan_patch_size((1.0, 1.0, 1.0), (64, 64, 64), batch_size=0)
