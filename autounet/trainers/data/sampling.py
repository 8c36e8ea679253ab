"""Where to cut a training patch from a case: random or centred on foreground, padded past the border."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: nnU-Net's share of each batch that is forced to contain foreground (``oversample_foreground_percent = 0.33``).
DEFAULT_FOREGROUND_FRACTION = 1 / 3


def forced_foreground_slots(batch_size: int, foreground_fraction: float = DEFAULT_FOREGROUND_FRACTION) -> list[bool]:
    """Which samples of a batch must contain foreground: the last ``round(batch_size * fraction)`` ones.

    At least one sample is forced whenever ``foreground_fraction > 0`` so that small batches (2) still see
    foreground, like nnU-Net's ``_oversample_last_XX_percent``.

    Examples
    --------
    >>> forced_foreground_slots(7)
    [False, False, False, False, False, True, True]
    >>> forced_foreground_slots(2)
    [False, True]
    >>> forced_foreground_slots(3, 0.0)
    [False, False, False]
    """
    if not 0.0 <= foreground_fraction <= 1.0:
        raise ValueError(f"foreground_fraction must be within [0, 1], got {foreground_fraction}")
    forced = round(batch_size * foreground_fraction)
    if foreground_fraction > 0:
        forced = max(forced, 1)
    return [index >= batch_size - forced for index in range(batch_size)]


def sample_patch_start(
    shape: Sequence[int],
    patch_size: Sequence[int],
    rng: np.random.Generator,
    foreground: Mapping[int, np.ndarray] | None = None,
) -> tuple[int, ...]:
    """Lower corner of a patch; it may lie outside the image (the caller pads), like nnU-Net's ``get_bbox``.

    Parameters
    ----------
    shape : sequence of int
        Spatial shape of the case.
    patch_size : sequence of int
        Spatial size of the patch to cut, same number of axes.
    rng : numpy.random.Generator
    foreground : mapping label -> ndarray of shape (N, ndim), optional
        Foreground voxel coordinates per label. When given and not all empty, a label is chosen uniformly among
        those with voxels, then one of its voxels, and the patch is centred on it (clipped to the allowed range).
        Otherwise the start is uniform over all positions that keep at least half a patch inside the image.

    Returns
    -------
    tuple of int
        Start index per axis (may be negative, or reach past the image end when it is smaller than the patch).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> sample_patch_start((10, 10), (4, 4), rng, {1: np.array([[5, 5]])})
    (3, 3)
    >>> sample_patch_start((2, 10), (4, 4), rng, {1: np.array([[0, 9]])})  # image smaller than patch: padded
    (-1, 6)
    """
    if len(shape) != len(patch_size):
        raise ValueError(
            f"patch_size has {len(patch_size)} axes but the case has {len(shape)}; pass one per spatial axis"
        )
    size = np.asarray(shape, dtype=int)
    patch = np.asarray(patch_size, dtype=int)
    # Pad images smaller than the patch symmetrically; extra freedom of movement is allowed where they are larger.
    need_to_pad = np.maximum(patch - size, 0)
    lower = -(need_to_pad // 2)
    upper = size + need_to_pad // 2 + need_to_pad % 2 - patch
    labels = [label for label, points in (foreground or {}).items() if len(points) > 0]
    if labels:
        label = labels[int(rng.integers(len(labels)))]
        points = foreground[label]  # type: ignore[index]
        voxel = np.asarray(points[int(rng.integers(len(points)))], dtype=int)
        start = np.clip(voxel - patch // 2, lower, upper)
    else:
        start = np.array([int(rng.integers(lo, hi + 1)) for lo, hi in zip(lower, upper)])
    return tuple(int(s) for s in start)


def crop_with_padding(array: np.ndarray, start: Sequence[int], patch_size: Sequence[int], pad_value: float) -> np.ndarray:
    """Cut ``array[..., start:start + patch_size]`` over the trailing axes, padding with ``pad_value`` outside.

    Parameters
    ----------
    array : ndarray of shape (C, *spatial)
        May be a memory map: only the patch is read.
    start : sequence of int
        Lower corner per spatial axis, possibly negative.
    patch_size : sequence of int
    pad_value : float

    Returns
    -------
    ndarray of shape (C, *patch_size), same dtype as ``array``

    Examples
    --------
    >>> crop_with_padding(np.arange(4).reshape(1, 4), (-1,), (3,), -1)
    array([[-1,  0,  1]])
    """
    spatial = array.shape[1:]
    source, target = [slice(None)], [slice(None)]
    for size, begin, length in zip(spatial, start, patch_size):
        lo, hi = max(begin, 0), min(begin + length, size)
        source.append(slice(lo, max(hi, lo)))
        target.append(slice(lo - begin, lo - begin + max(hi - lo, 0)))
    out = np.full((array.shape[0], *patch_size), pad_value, dtype=array.dtype)
    out[tuple(target)] = array[tuple(source)]
    return out
