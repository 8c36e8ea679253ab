"""Training batches from the preprocessed store: random patches, one third forced onto foreground, augmented.

Every batch is a pure function of ``(seed, rank, iteration)``: the loader derives its random generator (and the
NumPy global state the batchgenerators transforms read) from those three numbers. Batches are therefore the same
whether they are made in this process or in background workers, in any number, and a resumed run continues with
exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from autounet.planners.context_slices import check_context_slices, stack_context_slices
from autounet.trainers.data.augmentation import AugmentationPlan, build_transforms, seg_pad_value
from autounet.trainers.data.sampling import (
    DEFAULT_FOREGROUND_FRACTION,
    crop_with_padding,
    forced_foreground_slots,
    sample_patch_start,
)



class CaseSource(Protocol):
    """What the loader needs from a preprocessed store (``autounet.preprocessing.open_preprocessed``)."""

    @property
    def case_ids(self) -> Sequence[str]: ...

    def load(self, case_id: str, mmap: bool = True) -> tuple[np.ndarray, np.ndarray, Mapping[str, Any]]: ...

    def foreground_locations(self, case_id: str) -> Mapping[int, np.ndarray]: ...

    def properties(self, case_id: str) -> Any: ...


def batch_seed(seed: int, rank: int, iteration: int) -> np.random.SeedSequence:
    """The seed sequence of one batch: batches depend on nothing but these three numbers.

    Examples
    --------
    >>> a = np.random.default_rng(batch_seed(0, 0, 5)).integers(1000)
    >>> b = np.random.default_rng(batch_seed(0, 0, 5)).integers(1000)
    >>> bool(a == b)
    True
    """
    return np.random.SeedSequence([int(seed), int(rank), int(iteration)])


class PatchLoader:
    """Iterator over augmented training (or validation) batches; usable as a batchgenerators data loader.

    Parameters
    ----------
    source : CaseSource
        The preprocessed store.
    case_ids : sequence of str
        Cases to draw from (drawn uniformly with replacement).
    batch_size : int
        Samples per batch (on this rank).
    augmentation : AugmentationPlan
        Patch sizes and transforms; ``augmentation.enabled=False`` for validation batches.
    foreground_fraction : float
        Share of each batch centred on a foreground voxel (default 1/3, nnU-Net's).
    seed, rank : int
        Randomness of the whole run and of this process in a multi-GPU run.
    start_iteration : int
        Index of the first batch this iterator yields (a resumed run starts where it stopped).
    num_workers : int
        Worker processes sharing the iterations (set by :class:`~autounet.trainers.data.pipeline.BatchStream`).
    label_values : sequence of int, optional
        The dataset's label values, sorted; when they are not ``0, 1, ..., K-1`` the stored labels are mapped to
        class indices (class ``i`` is the ``i``-th smallest value, as inference assumes).
    context_slices : int
        2.5D input of a 2D patch from 3D cases: slices ``z - k .. z + k`` around the sampled slice ``z`` (clamped at
        the volume's edges) become ``C * (2k + 1)`` channels, ordered as
        :func:`autounet.planners.context_slices.stack_context_slices` orders them. 0 is plain 2D.

    Notes
    -----
    With ``k`` batchgenerators workers, worker ``w`` makes the batches of iterations ``start + w``, ``start + w + k``,
    ... and ``MultiThreadedAugmenter`` returns them round-robin, so the sequence is the same as in-process.
    """

    def __init__(
        self,
        source: CaseSource,
        case_ids: Sequence[str],
        batch_size: int,
        augmentation: AugmentationPlan,
        foreground_fraction: float = DEFAULT_FOREGROUND_FRACTION,
        seed: int = 0,
        rank: int = 0,
        start_iteration: int = 0,
        num_workers: int = 1,
        label_values: Sequence[int] | None = None,
        context_slices: int = 0,
    ) -> None:
        if not case_ids:
            raise ValueError("no cases to train on; check the split (splits.json) and the preprocessed store")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.source = source
        self.case_ids = sorted(case_ids)
        self.batch_size = batch_size
        self.augmentation = augmentation
        self.foreground_fraction = foreground_fraction
        self.seed = seed
        self.rank = rank
        self.start_iteration = start_iteration
        self.num_workers = max(1, num_workers)
        self._next_iteration = start_iteration
        values = tuple(sorted(int(v) for v in label_values)) if label_values is not None else None
        self.label_values = None if values is None or values == tuple(range(len(values))) else values
        self.context_slices = check_context_slices(context_slices, len(augmentation.patch_size))
        self._transforms: Any = None

    # batchgenerators' MultiThreadedAugmenter calls this in each worker before the first batch.
    def set_thread_id(self, thread_id: int) -> None:
        self._next_iteration = self.start_iteration + thread_id

    def __iter__(self) -> "PatchLoader":
        return self

    def __next__(self) -> dict[str, Any]:
        batch = self.batch(self._next_iteration)
        self._next_iteration += self.num_workers
        return batch

    def batch(self, iteration: int) -> dict[str, Any]:
        """The batch of ``iteration``: ``{"data": (B, C, *patch) float32, "seg": (B, 1, *patch) int16, "keys",
        "iteration"}``."""
        rng = np.random.default_rng(batch_seed(self.seed, self.rank, iteration))
        raw = self._cut_patches(rng)
        if self._transforms is None:
            self._transforms = build_transforms(self.augmentation)
        transforms = self._transforms
        # batchgenerators draws from NumPy's and Python's global generators: seed both for this batch, and restore
        # them afterwards so that in-process use does not disturb anybody else's random numbers.
        saved_numpy, saved_python = np.random.get_state(), random.getstate()
        transform_seed = int(rng.integers(2**32))
        np.random.seed(transform_seed)
        random.seed(transform_seed)
        try:
            out = transforms(**raw)
        finally:
            np.random.set_state(saved_numpy)
            random.setstate(saved_python)
        return {
            "data": np.ascontiguousarray(out["data"], dtype=np.float32),
            "seg": np.ascontiguousarray(out["seg"]).astype(np.int16),
            "keys": raw["keys"],
            "iteration": iteration,
        }

    def _cut_patches(self, rng: np.random.Generator) -> dict[str, Any]:
        patch = self.augmentation.initial_patch_size
        pad_value = seg_pad_value(self.augmentation)
        data_patches, seg_patches, keys = [], [], []
        for force_foreground in forced_foreground_slots(self.batch_size, self.foreground_fraction):
            case_id = self.case_ids[int(rng.integers(len(self.case_ids)))]
            data, seg, _ = self.source.load(case_id, mmap=True)
            foreground = self.source.foreground_locations(case_id) if force_foreground else None
            if len(patch) == data.ndim - 2:
                data, seg, foreground = _pick_slice(data, seg, foreground, rng, self.context_slices)
            start = sample_patch_start(data.shape[1:], patch, rng, foreground)
            data_patches.append(crop_with_padding(data, start, patch, 0).astype(np.float32, copy=False))
            seg_patch = crop_with_padding(seg, start, patch, pad_value).astype(np.int16, copy=False)
            if self.label_values is not None:
                seg_patch = to_class_indices(seg_patch, self.label_values)
            seg_patches.append(seg_patch)
            keys.append(case_id)
        return {"data": np.stack(data_patches), "seg": np.stack(seg_patches).astype(np.float32), "keys": keys}


def to_class_indices(seg: np.ndarray, label_values: Sequence[int]) -> np.ndarray:
    """Map label values to class indices (position in the sorted ``label_values``); negative values are kept.

    Examples
    --------
    >>> to_class_indices(np.array([0, 4, 1, -1, 4]), (0, 1, 4)).tolist()
    [0, 2, 1, -1, 2]
    """
    indices = np.searchsorted(np.asarray(label_values), seg).astype(np.int16)
    return np.where(seg < 0, seg, indices).astype(np.int16)


def _pick_slice(
    data: np.ndarray,
    seg: np.ndarray,
    foreground: Mapping[int, np.ndarray] | None,
    rng: np.random.Generator,
    context_slices: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray] | None]:
    """One axis-0 slice of a 3D case for 2D training: on a foreground voxel when requested, else uniform.

    With ``context_slices`` the image slice comes with its neighbours as channels; the label is the centre slice's.
    """
    labels = [label for label, points in (foreground or {}).items() if len(points) > 0]
    if labels:
        label = labels[int(rng.integers(len(labels)))]
        points = np.asarray(foreground[label])  # type: ignore[index]
        index = int(points[int(rng.integers(len(points)))][0])
        in_slice = {label: points[points[:, 0] == index][:, 1:]}
    else:
        index = int(rng.integers(data.shape[1]))
        in_slice = None
    return stack_context_slices(data, index, context_slices), seg[:, index], in_slice
