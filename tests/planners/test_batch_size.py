"""Batch size: memory, the 5% dataset cap and the minimum of 2."""

from __future__ import annotations

import pytest

from autounet.errors import PlansError
from autounet.planners.batch_size import batch_size_cap, batch_size_for_memory, plan_batch_size


def test_memory_limited():
    # Liver 2d: estimate 82.9e6 fits 85e6 / 82.9e6 * 12 = 12 samples; the dataset is huge
    assert plan_batch_size(82_894_848, (512, 512), 1.5e10) == 12


def test_dataset_cap_limited():
    assert batch_size_cap((40, 56, 40), 36 * 50 * 35 * 260) == 9
    assert plan_batch_size(19_174_400, (40, 56, 40), 36 * 50 * 35 * 260) == 9


def test_never_below_two():
    assert plan_batch_size(2_847_744, (24, 24, 24), 24**3 * 5) == 2  # cap would be 0
    assert plan_batch_size(600e6, (128, 128, 128), 1e12) == 2  # memory would be 2 * 560 / 600 -> 2


def test_budget_scales_the_memory_limit():
    assert batch_size_for_memory(19_174_400, 3, 8.0) == 58
    assert batch_size_for_memory(19_174_400, 3, 16.0) == 117
    assert batch_size_for_memory(651_840, 2, 8.0) == 1565


def test_single_case_dataset():
    assert plan_batch_size(19_174_400, (40, 56, 40), 36 * 50 * 35) == 2


def test_estimate_must_be_positive():
    with pytest.raises(PlansError, match="memory estimate must be positive"):
        batch_size_for_memory(0, 3)
