"""Batch size: as many samples as the memory budget allows, at least 2, at most 5% of the dataset per batch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from autounet.errors import PlansError
from autounet.planners.memory import REFERENCE_MEMORY_GB, memory_budget, reference_batch_size

#: Smallest planned batch size (nnU-Net's ``UNet_min_batch_size``); instance norm and the Dice loss need >1.
MIN_BATCH_SIZE = 2

#: A batch sees at most this fraction of the dataset's voxels (nnU-Net's ``max_dataset_covered``), an
#: overfitting precaution for small datasets of small images.
MAX_DATASET_FRACTION = 0.05


def batch_size_for_memory(memory_estimate: float, ndim: int, memory_budget_gb: float = REFERENCE_MEMORY_GB) -> int:
    """Samples of ``memory_estimate`` that fill the budget: ``round(budget / estimate * reference_batch_size)``.

    Examples
    --------
    >>> batch_size_for_memory(19174400, 3)
    58
    >>> batch_size_for_memory(19174400, 3, memory_budget_gb=4)
    29
    """
    if not memory_estimate > 0:
        raise PlansError(f"memory estimate must be positive, got {memory_estimate}")
    return int(round(memory_budget(ndim, memory_budget_gb) / memory_estimate * reference_batch_size(ndim)))


def batch_size_cap(patch_size: Sequence[int], dataset_voxels: float, max_fraction: float = MAX_DATASET_FRACTION) -> int:
    """Batch size at which one batch covers ``max_fraction`` (5%) of the dataset's voxels (rounded).

    Examples
    --------
    >>> batch_size_cap((40, 56, 40), 36 * 50 * 35 * 260)
    9
    """
    return int(round(dataset_voxels * max_fraction / float(np.prod(patch_size, dtype=np.float64))))


def plan_batch_size(
    memory_estimate: float,
    patch_size: Sequence[int],
    dataset_voxels: float,
    memory_budget_gb: float = REFERENCE_MEMORY_GB,
    min_batch_size: int = MIN_BATCH_SIZE,
    max_fraction: float = MAX_DATASET_FRACTION,
) -> int:
    """Batch size of a configuration.

    Rule: as many samples as fit the budget (:func:`batch_size_for_memory`), but no more than one batch covering
    5% of the dataset's voxels (:func:`batch_size_cap`), and never fewer than 2.

    Parameters
    ----------
    memory_estimate : float
        Memory estimate of one sample (U-Net proxy units).
    patch_size : sequence of int
        The planned patch; its length says 2D or 3D.
    dataset_voxels : float
        Approximate voxels in the dataset: median image voxels at the configuration's spacing x number of cases.
    memory_budget_gb : float
        GPU memory to plan for.
    min_batch_size : int
        Lower bound.
    max_fraction : float
        Largest fraction of the dataset one batch may cover.

    Returns
    -------
    int

    Notes
    -----
    nnU-Net v2 ``ExperimentPlanner.get_plans_for_configuration``.

    Examples
    --------
    Hippocampus 3d_fullres: memory allows 58 samples, the 5% cap allows 9.

    >>> plan_batch_size(19174400, (40, 56, 40), 36 * 50 * 35 * 260)
    9

    A single small case: the cap is below 2, so the minimum wins.

    >>> plan_batch_size(2847744, (24, 24, 24), 24 ** 3)
    2
    """
    by_memory = batch_size_for_memory(memory_estimate, len(patch_size), memory_budget_gb)
    cap = batch_size_cap(patch_size, dataset_voxels, max_fraction)
    return max(min(by_memory, cap), min_batch_size)
