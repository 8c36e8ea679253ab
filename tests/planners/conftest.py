"""Planner test helpers: synthetic fingerprints built from spacings and shapes alone (no images)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from autounet.fingerprint import CaseFingerprint, Fingerprint, IntensityStats
from autounet.planners import DeviceInfo

NO_GPU = DeviceInfo()

CT_STATS = IntensityStats(mean=99.4, median=101.0, std=39.4, min=-1024.0, max=3071.0, percentile_00_5=-17.0, percentile_99_5=201.0)
MRI_STATS = IntensityStats(mean=69.8, median=64.0, std=28.6, min=0.0, max=486.0, percentile_00_5=20.0, percentile_99_5=165.0)


def make_fingerprint(
    spacings: Sequence[Sequence[float]],
    shapes: Sequence[Sequence[int]],
    channel_names: Sequence[str] = ("MRI",),
    labels: dict[str, int] | None = None,
    relative_size: float = 1.0,
    is_2d: bool = False,
) -> Fingerprint:
    """A fingerprint with one case per (spacing, shape) pair; CT channels get CT-like statistics."""
    cases = tuple(
        CaseFingerprint(f"case_{i:03d}", tuple(map(float, sp)), tuple(map(int, sh)), tuple(map(int, sh)), relative_size)
        for i, (sp, sh) in enumerate(zip(spacings, shapes))
    )
    intensity = tuple(CT_STATS if name.casefold() == "ct" else MRI_STATS for name in channel_names)
    return Fingerprint(
        dataset_name="synthetic",
        channel_names=tuple(channel_names),
        labels=labels or {"background": 0, "target": 1},
        cases=cases,
        intensity=intensity,
        is_2d=is_2d,
        signature="sig",
    )


@pytest.fixture
def make_fp():
    """The :func:`make_fingerprint` factory."""
    return make_fingerprint


@pytest.fixture
def no_gpu() -> DeviceInfo:
    """A machine without a GPU (so plans do not depend on where the tests run)."""
    return NO_GPU
