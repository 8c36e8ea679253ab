"""Sample voxel locations of each foreground label, so training can centre patches on rare structures."""

from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np

#: Locations kept per label and case (nnU-Net ``DefaultPreprocessor``: ``num_samples = 10000``).
MAX_LOCATIONS_PER_LABEL = 10_000

#: ... but at least this fraction of a label's voxels, so large structures stay covered (nnU-Net's
#: ``min_percent_coverage = 0.01``).
MIN_COVERAGE = 0.01

#: Seed of the sampling; each case also mixes in a hash of its identifier so results do not depend on order.
DEFAULT_SEED = 1234


def case_rng(case_id: str, seed: int = DEFAULT_SEED) -> np.random.Generator:
    """Random generator of one case: the same for the same ``(case_id, seed)`` in any process."""
    stable = int.from_bytes(hashlib.sha1(case_id.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, stable])


def sample_foreground_locations(
    seg: np.ndarray,
    labels: Iterable[int],
    rng: np.random.Generator,
    max_per_label: int = MAX_LOCATIONS_PER_LABEL,
    min_coverage: float = MIN_COVERAGE,
) -> dict[int, np.ndarray]:
    """Seeded sample of voxel coordinates per label.

    Parameters
    ----------
    seg : ndarray of int, shape ``spatial``
        Label map (values <= 0 are background or outside the mask).
    labels : iterable of int
        Foreground label values to report; absent ones get an empty ``(0, ndim)`` array.
    rng : numpy.random.Generator
        Source of randomness, e.g. :func:`case_rng`.
    max_per_label, min_coverage
        At most ``max(max_per_label, ceil(min_coverage * count))`` locations per label.

    Returns
    -------
    dict of int to ndarray of int32, shape (N, ndim)
        Coordinates in array axis order, sorted (row-major).

    Examples
    --------
    >>> seg = np.zeros((1, 4, 4), np.int8); seg[0, 1, 2] = 1; seg[0, 3, 0] = 1
    >>> sample_foreground_locations(seg, [1, 2], np.random.default_rng(0))
    {1: array([[0, 1, 2],
           [0, 3, 0]], dtype=int32), 2: array([], shape=(0, 3), dtype=int32)}
    """
    labels = sorted(int(v) for v in labels if int(v) > 0)
    flat = seg.reshape(-1)
    foreground = np.flatnonzero(flat > 0)
    values = flat[foreground]
    order = np.argsort(values, kind="stable")  # groups the labels, keeping row-major order inside each
    foreground, values = foreground[order], values[order]
    result: dict[int, np.ndarray] = {}
    for label in labels:
        start, stop = np.searchsorted(values, [label, label + 1])
        hits = foreground[start:stop]
        keep = min(hits.size, max(max_per_label, int(np.ceil(hits.size * min_coverage))))
        if keep < hits.size:
            hits = np.sort(hits[rng.choice(hits.size, keep, replace=False)])
        result[label] = np.stack(np.unravel_index(hits, seg.shape), axis=1).astype(np.int32).reshape(-1, seg.ndim)
    return result
