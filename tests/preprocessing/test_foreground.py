"""Foreground location sampling: caps, coverage, determinism."""

from __future__ import annotations

import numpy as np

from autounet.preprocessing.foreground import case_rng, sample_foreground_locations


def test_small_labels_keep_every_voxel_and_absent_labels_are_empty():
    seg = np.zeros((4, 5, 6), np.int8)
    seg[1, 2, 3] = 2
    seg[0, 0, :2] = 1
    seg[3, 4, 5] = -1  # outside the mask: never foreground
    locations = sample_foreground_locations(seg, [1, 2, 3], case_rng("a"))
    np.testing.assert_array_equal(locations[1], [[0, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(locations[2], [[1, 2, 3]])
    assert locations[3].shape == (0, 3)


def test_large_labels_are_capped_but_keep_one_percent():
    seg = np.ones((100, 100, 150), np.uint8)  # 1.5 M voxels of label 1
    seg[:10, :10, :10] = 2  # 1000 voxels of label 2
    locations = sample_foreground_locations(seg, [1, 2], case_rng("b"), max_per_label=1000)
    assert len(locations[1]) == 14_990  # 1 % of its 1,499,000 voxels beats the cap of 1000
    assert len(locations[2]) == 1000
    assert np.all(seg[tuple(locations[1].T)] == 1)
    assert len(np.unique(locations[1], axis=0)) == 14_990  # no duplicates


def test_sampling_depends_only_on_case_and_seed():
    seg = (np.random.default_rng(0).random((30, 30, 30)) > 0.5).astype(np.uint8)
    first = sample_foreground_locations(seg, [1], case_rng("case_7"), max_per_label=50, min_coverage=0)
    again = sample_foreground_locations(seg, [1], case_rng("case_7"), max_per_label=50, min_coverage=0)
    other = sample_foreground_locations(seg, [1], case_rng("case_8"), max_per_label=50, min_coverage=0)
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])
