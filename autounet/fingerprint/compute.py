"""Compute a dataset's fingerprint, in parallel over cases, deterministic, reusing an unchanged result."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from autounet.cropping import box_shape, bounding_box
from autounet.dataset import Dataset
from autounet.dataset.dataset import read_case_images
from autounet.dataset.regions import refuse_region_labels
from autounet.dataset.training_case import (
    require_declared_labels,
    require_label_on_image_grid,
    require_matching_case_files,
    require_one_dimensionality,
    require_usable_image,
)
from autounet.errors import DatasetError
from autounet.fingerprint.schema import FINGERPRINT_VERSION, CaseFingerprint, Fingerprint, IntensityStats
from autounet.io import read_image
from autounet.io.formats import input_stat
from autounet.jsonio import read_json
from autounet.parallel import auto_workers, map_with_progress
from autounet.plausibility import median_spacing, spacing_outlier
from autounet.typing import PathType

logger = logging.getLogger(__name__)

#: Foreground voxels sampled per case and channel for the intensity statistics (nnU-Net uses 10,000 too):
#: enough for stable 0.5/99.5 percentiles while bounding memory to cases x 10,000 values.
DEFAULT_SAMPLES_PER_CASE = 10_000
DEFAULT_SEED = 1234


def fingerprint_case(
    case_id: str,
    image_files: Iterable[PathType],
    label_file: PathType,
    num_channels: int | None = None,
    samples_per_case: int = DEFAULT_SAMPLES_PER_CASE,
    seed: int = DEFAULT_SEED,
    label_values: Sequence[int] | None = None,
) -> tuple[CaseFingerprint, list[np.ndarray]]:
    """Fingerprint one case.

    Parameters
    ----------
    case_id : str
        The case's identifier (seeds its sampling).
    image_files : iterable of path
        One file per channel, or one file holding all channels.
    label_file : path
        The label map.
    num_channels : int, optional
        Channels dataset.json declares.
    samples_per_case : int
        Foreground intensities sampled per channel.
    seed : int
        Seed of the sampling.
    label_values : sequence of int, optional
        Label values dataset.json declares: a label map holding others is refused before its values are counted
        (one voxel of 2**40 would otherwise ask for a count array of 8 TiB).

    Returns
    -------
    CaseFingerprint
        Spacing, shape, shape after cropping to the non-zero region, relative size after crop and label
        voxel counts.
    list of ndarray
        Per channel, a seeded sample of at most ``samples_per_case`` foreground intensities (label > 0).
    """
    image = read_case_images([Path(p) for p in image_files], num_channels)
    require_usable_image(image, image_files)  # NaN samples would make every intensity statistic NaN
    label = read_image(label_file)
    data, seg = image.data, require_label_on_image_grid(label, image, label_file)
    if seg.dtype.kind == "f":
        if not np.all(np.isfinite(seg)) or not np.all(np.equal(np.mod(seg, 1), 0)):
            raise DatasetError(
                f"{label_file}: label map holds non-integer values; labels must be whole numbers "
                "(re-export with nearest-neighbour interpolation)"
            )
    if seg.min() < 0:
        raise DatasetError(f"{label_file}: label map holds negative values ({int(seg.min())}); labels must be >= 0")
    seg = seg.astype(np.int64, copy=False)

    box = bounding_box(np.any(data != 0, axis=0))  # holes do not change the box, so no filling is needed
    shape = data.shape[1:]
    cropped = box_shape(box)
    rng = np.random.default_rng([seed, _stable_int(case_id)])
    foreground = np.flatnonzero(seg.ravel() > 0)
    if foreground.size > samples_per_case:
        foreground = np.sort(rng.choice(foreground, samples_per_case, replace=False))
    samples = [np.asarray(channel.ravel()[foreground], dtype=np.float32) for channel in data]
    label_voxels = _label_voxels(seg, label_values, label_file)
    case = CaseFingerprint(
        case_id=case_id,
        spacing=tuple(image.geometry.spacing),
        shape=tuple(int(s) for s in shape),
        shape_after_crop=tuple(int(s) for s in cropped),
        relative_size_after_crop=float(np.prod(cropped) / max(np.prod(shape), 1)),
        label_voxels=label_voxels,
    )
    return case, samples


#: Label maps whose values are all below this are counted with ``np.bincount`` (one counter per value up to the
#: largest); larger values are counted by sorting, which needs memory per voxel, never per value.
_BINCOUNT_LIMIT = 1 << 16


def _label_voxels(seg: np.ndarray, declared: Sequence[int] | None, label_file: PathType) -> dict[int, int]:
    """Voxels per label value of a non-negative integer label map; undeclared values are refused before counting
    allocates anything per value.

    Examples
    --------
    >>> _label_voxels(np.array([0, 2, 2]), (0, 1, 2), "l.nii.gz")
    {0: 1, 2: 2}
    >>> _label_voxels(np.array([0, 2**40]), (0, 1), "l.nii.gz")
    Traceback (most recent call last):
    ...
    autounet.errors.DatasetError: l.nii.gz: label value(s) 1099511627776 (1 voxels) not declared in dataset.json (declared: 0, 1); relabel these voxels, or add the values to 'labels' in dataset.json
    """
    high = int(seg.max()) if seg.size else 0
    if high >= _BINCOUNT_LIMIT or (declared is not None and high > max(declared, default=0)):
        values, counts = np.unique(seg, return_counts=True)
        found = {int(v): int(n) for v, n in zip(values, counts)}
        if declared is not None:
            require_declared_labels(found, declared, label_file)
        return found
    counts = np.bincount(seg.ravel())
    return {int(v): int(n) for v, n in enumerate(counts) if n > 0}


def _require_consistent_cases(dataset: Dataset, cases: tuple[CaseFingerprint, ...]) -> None:
    """Refuse label values dataset.json does not declare and 2D cases among 3D ones (or the reverse)."""
    declared = dataset.description.label_values
    for case, entry in zip(cases, dataset.training):
        require_declared_labels(case.label_voxels, declared, entry.label_file or entry.case_id)
    require_one_dimensionality(
        {case.case_id: case.shape[0] == 1 for case in cases},
        {entry.case_id: entry.image_files[0] for entry in dataset.training},
    )
    require_plausible_spacings(cases, {entry.case_id: entry.image_files[0] for entry in dataset.training})


def require_plausible_spacings(cases: Sequence[CaseFingerprint], image_files: dict[str, Path]) -> None:
    """Refuse cases whose spacing is off the dataset's median by a unit mix-up (more than 10x along an axis).

    Parameters
    ----------
    cases : sequence of CaseFingerprint
        Every case's fingerprint.
    image_files : dict of str to Path
        Each case's (first) image file, for the message.

    Raises
    ------
    DatasetError
        Naming each such case's file, its spacing and the median.
    """
    if len(cases) < 3:
        return
    median = median_spacing([case.spacing for case in cases])
    odd = [(case, problem) for case in cases
           if (problem := spacing_outlier(case.spacing, median, case.shape[0] == 1)) is not None]
    if odd:
        listed = "; ".join(f"{image_files.get(case.case_id, case.case_id)}: {problem}" for case, problem in odd[:5])
        more = f"; and {len(odd) - 5} more" if len(odd) > 5 else ""
        raise DatasetError(
            f"implausible spacing, compared with the dataset's median: {listed}{more}. Resampled to a common spacing "
            "such a case shrinks to almost nothing or blows up: check the header's unit (mm expected) and voxel size, "
            "or remove the case"
        )


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")


def _fingerprint_task(args: tuple) -> tuple[CaseFingerprint, list[np.ndarray]]:
    return fingerprint_case(*args)


def inputs_signature(dataset: Dataset, samples_per_case: int, seed: int) -> str:
    """Hash of everything a fingerprint depends on: file names, sizes, modification times and settings."""
    digest = hashlib.sha256()
    digest.update(json.dumps([FINGERPRINT_VERSION, samples_per_case, seed, dataset.description.to_dict()]).encode())
    for case in dataset.training:
        for path in (*case.image_files, case.label_file):
            size, mtime = input_stat(path) if path is not None else (-1, -1)  # a DICOM series folder: all its files
            digest.update(f"{path}|{size}|{mtime}\n".encode())
    return digest.hexdigest()


def compute_fingerprint(
    dataset: Dataset,
    output: PathType | None = None,
    workers: int | None = None,
    samples_per_case: int = DEFAULT_SAMPLES_PER_CASE,
    seed: int = DEFAULT_SEED,
    reuse: bool = True,
    progress: bool = True,
) -> Fingerprint:
    """Fingerprint every training case of ``dataset``.

    Parameters
    ----------
    dataset : Dataset
        From :func:`autounet.dataset.load_dataset`.
    output : str or Path, optional
        Where to write ``fingerprint.json``. If it exists and its inputs signature matches, it is loaded
        instead of recomputed (unless ``reuse`` is False).
    workers : int, optional
        Worker processes (default: number of CPU cores, at most 8). ``1`` runs in this process.
    samples_per_case : int
        Foreground voxels sampled per case and channel for intensity statistics.
    seed : int
        Seed of the sampling; the result does not depend on ``workers`` or case order.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Fingerprint
    """
    refuse_region_labels(dataset.description, str(dataset.root / "dataset.json"))
    if not dataset.training:
        raise DatasetError(f"{dataset.root}: no training cases found; check dataset.json and imagesTr/")
    missing_labels = [c.case_id for c in dataset.training if c.label_file is None]
    if missing_labels:
        raise DatasetError(
            f"{dataset.root}: training cases without a label file: {', '.join(missing_labels[:5])}; "
            'run "autounet check" to list every problem'
        )
    require_matching_case_files(dataset)
    signature = inputs_signature(dataset, samples_per_case, seed)
    if output is not None and reuse and Path(output).is_file():
        try:
            existing = Fingerprint.from_dict(read_json(output))
            if existing.signature == signature:
                logger.info("inputs unchanged since %s; reusing it", output)
                return existing
        except Exception:  # an unreadable old file is simply recomputed
            logger.info("could not reuse %s; recomputing", output)
    tasks = [
        (case.case_id, case.image_files, case.label_file, dataset.num_channels, samples_per_case, seed,
         dataset.description.label_values)
        for case in dataset.training
    ]
    total_bytes = sum(max(input_stat(p)[0], 0) for c in dataset.training for p in (*c.image_files, c.label_file) if p is not None)
    workers = auto_workers(total_bytes, workers)
    results = map_with_progress(_fingerprint_task, tasks, workers=workers, progress=progress, description="fingerprint")
    cases = tuple(case for case, _ in results)
    _require_consistent_cases(dataset, cases)
    intensity = tuple(
        IntensityStats.from_samples(np.concatenate([samples[c] for _, samples in results]))
        for c in range(dataset.num_channels)
    )
    fingerprint = Fingerprint(
        dataset_name=dataset.name,
        channel_names=dataset.description.channel_names,
        labels=dict(dataset.description.labels),
        cases=cases,
        intensity=intensity,
        is_2d=all(case.shape[0] == 1 for case in cases),
        signature=signature,
    )
    if output is not None:
        fingerprint.save(output)
    return fingerprint
