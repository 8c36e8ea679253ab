"""Preprocess every training case of a dataset: in parallel, resumable, skipping unchanged cases."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from autounet.dataset import Case, Dataset, load_dataset
from autounet.dataset.dataset import read_case_images, require_safe_case_ids
from autounet.safe_names import checked_name
from autounet.dataset.regions import refuse_region_labels
from autounet.dataset.training_case import require_matching_case_files, require_usable_image
from autounet.errors import AutounetError, DatasetError, DiskFullError, PlansError
from autounet.io import read_image, read_image_geometry
from autounet.io.formats import input_stat
from autounet.parallel import auto_workers, map_with_progress
from autounet.planners.plans import Plans, load_plans
from autounet.preprocessing.case import preprocess_case, preprocessing_key
from autounet.preprocessing.foreground import (
    DEFAULT_SEED,
    MAX_LOCATIONS_PER_LABEL,
    MIN_COVERAGE,
    case_rng,
    sample_foreground_locations,
)
from autounet.preprocessing.properties import PREPROCESSING_VERSION
from autounet.preprocessing.resampling import RESAMPLING_BACKENDS, ResamplingBackend
from autounet.preprocessing.store import (
    STORE_FORMAT_VERSION,
    case_files,
    folder_lock,
    read_case_record,
    read_manifest,
    remove_case,
    remove_stale_temporaries,
    write_case,
    write_manifest,
)
from autounet.typing import PathType

logger = logging.getLogger(__name__)

#: How many failing cases an error message lists before summarising the rest.
MAX_REPORTED_FAILURES = 5


def configuration_hash(plans: Plans, configuration_name: str, resampling_backend: str = "auto") -> str:
    """Hash of everything in the plans that changes a configuration's preprocessed arrays.

    Batch size, patch size or network changes do not alter the arrays and do not count; spacing,
    normalisation, resampling, transposition, label values, the backend and the preprocessing version do.
    """
    configuration = plans.configuration(configuration_name)
    payload = {
        "preprocessing_version": PREPROCESSING_VERSION,
        "transpose_forward": list(plans.transpose_forward),
        "spacing": list(configuration.spacing),
        "normalization": [n.to_dict() for n in configuration.normalization],
        "resampling": configuration.resampling.to_dict(),
        "label_values": list(plans.label_values),
        "foreground_sampling": [MAX_LOCATIONS_PER_LABEL, MIN_COVERAGE, DEFAULT_SEED],
        "resampling_backend": resampling_backend,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def case_inputs(case: Case, root: Path) -> list[list[Any]]:
    """``[file, size, mtime_ns]`` of each input file; the file is relative to the dataset root when inside it.

    Relative names keep a moved (``mv``) dataset recognised as unchanged.
    """
    records = []
    root_text = os.path.abspath(root)
    for path in (*case.image_files, case.label_file):
        if path is None:
            continue
        size, mtime = input_stat(path)  # a DICOM series folder counts all its files
        name = os.path.abspath(path)
        if name.startswith(root_text + os.sep):
            name = name[len(root_text) + 1 :]
        records.append([name, size, mtime])
    return records


def case_signature(config_hash: str, inputs: list[list[Any]]) -> str:
    """Signature of one case's inputs under one configuration: equal signatures mean nothing to redo."""
    return hashlib.sha256(json.dumps([config_hash, inputs]).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class _Target:
    configuration: str
    folder: str
    signature: str
    inputs: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class _CaseTask:
    case_id: str
    image_files: tuple[Path, ...]
    label_file: Path
    num_channels: int
    plans: Plans
    targets: tuple[_Target, ...]
    resampling_backend: ResamplingBackend


def preprocess_dataset(
    dataset: Dataset | PathType,
    plans: Plans | PathType,
    configurations: Sequence[str] | None,
    output_dir: PathType,
    workers: int | None = None,
    progress: bool = True,
    resampling_backend: ResamplingBackend = "auto",
    force: bool = False,
) -> dict[str, Path]:
    """Preprocess all training cases for the given configurations.

    Parameters
    ----------
    dataset : Dataset or path
        From :func:`autounet.dataset.load_dataset`, or its folder.
    plans : Plans or path
        From :func:`autounet.planners.plans.load_plans`, or a plans JSON file.
    configurations : sequence of str or None
        Configuration names, e.g. ``["3d_fullres", "2d"]``; None for all in the plans. Configurations
        sharing a ``data_identifier`` (``3d_cascade_fullres`` and ``3d_fullres``) share one folder and are
        computed once; configurations with identical preprocessing are computed once per case.
    output_dir : path
        Parent folder; each configuration's cases go to ``output_dir/<data_identifier>/``.
    workers : int, optional
        Worker processes (default: 1 for small datasets, else the CPU count). Peak memory is about
        ``workers`` times that of one case.
    progress : bool
        Show a progress bar.
    resampling_backend : {"auto", "reference", "separable"}
        See :mod:`autounet.preprocessing.resampling`; part of the signature (changing it recomputes).
    force : bool
        Recompute every case even if its inputs and plans did not change.

    Returns
    -------
    dict of str to Path
        Configuration name -> folder holding its cases (open with :func:`open_preprocessed`).

    Raises
    ------
    DatasetError
        If the dataset has no labelled training cases, or cases fail (all failures are listed; the other
        cases are kept and a re-run only redoes the failed ones).
    PlansError
        If a configuration is unknown, or two configurations share a data identifier but differ in
        preprocessing.
    """
    dataset = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    refuse_region_labels(dataset.description, str(dataset.root / "dataset.json"))
    plans = plans if isinstance(plans, Plans) else load_plans(plans)
    if resampling_backend not in RESAMPLING_BACKENDS:
        raise ValueError(
            f"unknown resampling backend {resampling_backend!r}; choose one of {', '.join(RESAMPLING_BACKENDS)}"
        )
    _check_dataset(dataset, plans)
    output_dir = Path(output_dir)
    names = list(configurations) if configurations else list(plans.configurations)
    groups = _group_by_identifier(plans, names, resampling_backend)

    with ExitStack() as locks:
        for identifier in groups:
            locks.enter_context(folder_lock(output_dir / identifier))
        _run(dataset, plans, groups, output_dir, workers, progress, resampling_backend, force)
    return {name: output_dir / _identifier(plans, name) for name in names}


def _run(
    dataset: Dataset,
    plans: Plans,
    groups: dict[str, list[str]],
    output_dir: Path,
    workers: int | None,
    progress: bool,
    resampling_backend: ResamplingBackend,
    force: bool,
) -> None:
    """Reconcile each folder, preprocess the missing cases, write the manifests; raise listing failures."""
    manifests: dict[str, dict[str, Any]] = {}
    todo: dict[str, list[_Target]] = {}
    for identifier, members in groups.items():
        folder = output_dir / identifier
        config_hash = configuration_hash(plans, members[0], resampling_backend)
        manifests[identifier], missing = _reconcile_folder(folder, dataset, plans, members, config_hash, force)
        manifests[identifier]["resampling_backend"] = resampling_backend  # inference preprocesses new images alike
        for case_id, (signature, inputs) in missing.items():
            todo.setdefault(case_id, []).append(
                _Target(members[0], str(folder), signature, tuple(tuple(i) for i in inputs))
            )
        logger.info("%s: %d cases to preprocess, %d unchanged", identifier,
                    len(missing), len(manifests[identifier]["cases"]))

    tasks = [
        _CaseTask(case.case_id, case.image_files, Path(str(case.label_file)), dataset.num_channels, plans,
                  tuple(todo[case.case_id]), resampling_backend)
        for case in dataset.training
        if case.case_id in todo  # every training case has a label file: checked by _check_dataset
    ]
    total_bytes = sum(os.path.getsize(p) for task in tasks for p in (*task.image_files, task.label_file) if os.path.exists(p))
    results = map_with_progress(
        _preprocess_task, tasks, workers=auto_workers(total_bytes, workers), progress=progress,
        description="preprocess",
    )

    failures = []
    for task, result in zip(tasks, results):
        if "error" in result:
            failures.append(result["error"])
            continue
        for identifier, entry in result["entries"].items():
            manifests[identifier]["cases"][task.case_id] = entry
    for identifier, manifest in manifests.items():
        manifest["complete"] = len(manifest["cases"]) == len(dataset.training)
        write_manifest(output_dir / identifier, manifest)
    if failures:
        shown = "\n  ".join(failures[:MAX_REPORTED_FAILURES])
        more = f"\n  ... and {len(failures) - MAX_REPORTED_FAILURES} more" if len(failures) > MAX_REPORTED_FAILURES else ""
        raise DatasetError(
            f"{len(failures)} of {len(dataset.training)} cases could not be preprocessed:\n  {shown}{more}\n"
            "the other cases are stored; fix these and re-run to finish"
        )


def _identifier(plans: Plans, name: str) -> str:
    configuration = plans.configuration(name)
    return checked_name(configuration.data_identifier or configuration.name, f"{name} data_identifier")


def _check_dataset(dataset: Dataset, plans: Plans) -> None:
    if not dataset.training:
        raise DatasetError(f"{dataset.root}: no training cases found; check dataset.json and imagesTr/")
    unlabelled = [case.case_id for case in dataset.training if case.label_file is None]
    if unlabelled:
        raise DatasetError(
            f"{dataset.root}: training cases without a label file: {', '.join(unlabelled[:5])}; "
            'run "autounet check" to list every problem'
        )
    require_matching_case_files(dataset)
    require_safe_case_ids(dataset)  # case ids name the stored files: refuse "../x" before anything is written
    if dataset.num_channels != len(plans.channel_names):
        raise PlansError(
            f"the plans are for {len(plans.channel_names)} channel(s) but {dataset.root} has {dataset.num_channels}; "
            "plan this dataset first"
        )


def _group_by_identifier(plans: Plans, names: list[str], backend: str) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        groups.setdefault(_identifier(plans, name), []).append(name)
    for identifier, members in groups.items():
        hashes = {name: configuration_hash(plans, name, backend) for name in members}
        if len(set(hashes.values())) > 1:
            raise PlansError(
                f"configurations {', '.join(members)} share the data identifier {identifier!r} but preprocess "
                "differently (spacing, normalisation or resampling); give them different data_identifier values"
            )
    return groups


def _reconcile_folder(
    folder: Path, dataset: Dataset, plans: Plans, members: list[str], config_hash: str, force: bool
) -> tuple[dict[str, Any], dict[str, tuple[str, list[list[Any]]]]]:
    """Keep complete, unchanged cases; remove stale ones; return the manifest and the cases to compute."""
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)
    previous = read_manifest(folder) or {"cases": {}}
    kept: dict[str, Any] = {}
    missing: dict[str, tuple[str, list[list[Any]]]] = {}
    for case in dataset.training:
        inputs = case_inputs(case, dataset.root)
        signature = case_signature(config_hash, inputs)
        entry = previous["cases"].get(case.case_id)
        if force:
            entry = None
        elif not (isinstance(entry, dict) and entry.get("signature") == signature
                  and all(path.is_file() for path in case_files(folder, case.case_id).values())):
            record = read_case_record(folder, case.case_id)  # a case finished by a killed run is reused too
            entry = None
            if record is not None and record.get("signature") == signature:
                entry = _manifest_entry(signature, inputs, record.get("shape_after_resampling", []))
        if entry is not None:
            kept[case.case_id] = entry
        else:
            remove_case(folder, case.case_id)
            missing[case.case_id] = (signature, inputs)
    known = {case.case_id for case in dataset.training}
    for case_id in previous["cases"]:
        if case_id not in known:
            logger.info("%s: removing %s, which is no longer in the dataset", folder, case_id)
            remove_case(folder, case_id)
    configuration = plans.configuration(members[0])
    manifest = {
        "format_version": STORE_FORMAT_VERSION,
        "data_identifier": folder.name,
        "configurations": members,
        "configuration_hash": config_hash,
        "transpose_forward": list(plans.transpose_forward),
        "spacing": list(configuration.spacing),
        "normalization": [n.to_dict() for n in configuration.normalization],
        "label_values": list(plans.label_values),
        "dataset": str(dataset.root),
        "num_training_cases": len(dataset.training),
        "complete": not missing,
        "cases": kept,
    }
    write_manifest(folder, manifest)  # drops stale entries before any case is recomputed
    return manifest, missing


def _preprocess_task(task: _CaseTask) -> dict[str, Any]:
    """Preprocess one case for every target folder; runs in a worker process."""
    try:
        return {"entries": _preprocess_case_targets(task), "peak_rss_mb": _peak_rss_mb()}
    except DiskFullError as err:
        return {"error": f"{task.case_id}: {err}", "disk_full": True}
    except OSError as err:
        if err.errno == errno.ENOSPC:
            folder = Path(task.targets[0].folder)
            free_mb = shutil.disk_usage(folder).free / 1e6 if folder.exists() else 0.0
            return {"error": f"{task.case_id}: the disk holding {folder} is full ({free_mb:.0f} MB free); "
                             "free some space or choose another output folder, then re-run", "disk_full": True}
        return {"error": f"{task.case_id}: {err}"}
    except MemoryError:
        return {"error": f"{task.case_id}: out of memory while preprocessing {', '.join(map(str, task.image_files))}"
                         f"{_memory_need(task)}; each worker process holds one case: use fewer --workers "
                         "(--workers 1 holds one case at a time) or a machine with more memory"}
    except (AutounetError, ValueError) as err:
        return {"error": f"{task.case_id}: {err}"}


def _preprocess_case_targets(task: _CaseTask) -> dict[str, Any]:
    image = read_case_images(list(task.image_files), task.num_channels)
    require_usable_image(image, task.image_files)  # ITK reads NaN/Inf in NIfTI files as 0: look at the bytes
    label = read_image(task.label_file)
    foreground_labels = [v for v in task.plans.label_values if v > 0]
    by_key: dict[Any, list[_Target]] = {}
    for target in task.targets:
        by_key.setdefault(preprocessing_key(task.plans, target.configuration, image.geometry.spacing), []).append(target)
    entries = {}
    for targets in by_key.values():  # one key at a time: at most one preprocessed copy in memory
        data, seg, properties = preprocess_case(
            image, task.plans, targets[0].configuration, label,
            resampling_backend=task.resampling_backend, case_id=task.case_id,
        )
        assert seg is not None  # a label was given
        locations = sample_foreground_locations(seg[0], foreground_labels, case_rng(task.case_id))
        for target in targets:
            folder = Path(target.folder)
            stored = replace(properties, data_identifier=folder.name, foreground_file=f"{task.case_id}_fg.npz")
            write_case(folder, data, seg, stored, locations, target.signature)
            entries[folder.name] = _manifest_entry(
                target.signature, [list(record) for record in target.inputs], properties.shape_after_resampling
            )
        del data, seg, locations
    return entries


#: Peak memory of preprocessing one case, in units of its float32 input plus output: measured 1.6-1.9 and bounded
#: by 3 in tests/preprocessing/test_memory.py; the decoded file is held besides.
PEAK_MEMORY_FACTOR = 3.0


def estimate_case_memory_bytes(input_voxels: float, output_voxels: float, channels: int) -> float:
    """About how much memory preprocessing one case needs, from its voxel counts before and after resampling.

    Examples
    --------
    >>> round(estimate_case_memory_bytes(512 * 512 * 300, 512 * 512 * 300, 1) / 1e9, 1)  # one CT volume
    2.2
    """
    float32_bytes = 4
    return (PEAK_MEMORY_FACTOR * (input_voxels + output_voxels) + input_voxels) * channels * float32_bytes


def _memory_need(task: _CaseTask) -> str:
    """``": it needs about X GB (shape ...)"``, estimated from the image headers, or ``""`` if they are unreadable."""
    try:
        shape, channels = read_image_geometry(task.image_files[0])[0], 0
        for path in task.image_files:
            channels += read_image_geometry(path)[1]
        spacing = read_image_geometry(task.image_files[0])[2].spacing
        target = task.plans.configuration(task.targets[0].configuration).spacing
        zoom = float(np.prod(spacing) / np.prod(target)) if len(target) == len(spacing) else 1.0
    except Exception:  # the estimate is a courtesy; the memory error is what matters
        return ""
    voxels = float(np.prod(shape))
    needed = estimate_case_memory_bytes(voxels, max(voxels * zoom, 1.0), channels)
    return f": this case needs about {needed / 1e9:.1f} GB (shape {tuple(shape)}, {channels} channel(s))"


def _manifest_entry(signature: str, inputs: list[list[Any]], shape: Sequence[int]) -> dict[str, Any]:
    return {"signature": signature, "inputs": inputs, "shape": [int(s) for s in shape]}


def _peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far (Linux reports kB, macOS bytes; None on Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if os.uname().sysname != "Darwin" else peak / 1024**2
