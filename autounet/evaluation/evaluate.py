"""Evaluate predictions against references: folders of label files, or arrays in memory."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from autounet.dataset.description import parse_dataset_json
from autounet.errors import DatasetError
from autounet.evaluation.metrics import (
    DEFAULT_NSD_TOLERANCE_MM,
    check_label_values,
    compute_metrics,
    empty_pair_metrics,
    region_key,
)
from autounet.evaluation.result import CaseResult, EvaluationResult
from autounet.io import Image, read_image
from autounet.io.formats import SUPPORTED_EXTENSIONS, file_extension, strip_extension
from autounet.jsonio import read_json
from autounet.parallel import auto_workers, map_with_progress
from autounet.typing import PathType

logger = logging.getLogger(__name__)

#: Geometry differences below these are rounding in file headers, not a different geometry.
SPACING_RTOL = 1e-3
ORIGIN_ATOL_MM = 1e-2
DIRECTION_ATOL = 1e-3

Regions = Mapping[str, Sequence[int]] | Sequence[Sequence[int]]


@dataclass(frozen=True)
class _CaseOutput:
    """What a worker sends back for one case: metrics, or why there are none."""

    case_id: str
    metrics: dict[str, dict[str, float]] | None = None
    reference_values: tuple[int, ...] = ()
    prediction_values: tuple[int, ...] = ()
    num_voxels: int = 0
    reference_file: str = ""
    prediction_file: str = ""
    note: str = ""
    warning: str = ""
    failure: str = ""


@dataclass(frozen=True)
class _Task:
    case_id: str
    labels: tuple[int, ...] | None
    regions: dict[str, tuple[int, ...]]
    nsd_tolerance_mm: float
    reference: Any  # Path, or ndarray for evaluate_cases
    prediction: Any  # Path, ndarray, or None (missing: scored as empty)
    spacing_mm: tuple[float, ...] | None = None


def evaluate_cases(
    pairs: Iterable[tuple[str, np.ndarray, np.ndarray, Sequence[float]]],
    labels: Sequence[int] | None = None,
    regions: Regions | None = None,
    nsd_tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM,
    workers: int | None = 1,
    progress: bool = False,
) -> EvaluationResult:
    """Evaluate label maps held in memory (e.g. the final validation of a training fold).

    Parameters
    ----------
    pairs : iterable of (case_id, reference, prediction, spacing_mm)
        ``reference`` and ``prediction`` are integer label maps of one shape in array axis order,
        ``(z, y, x)`` (2D: ``(1, y, x)``), optionally with a leading channel axis of length 1;
        ``spacing_mm`` has one value per spatial axis.
    labels : sequence of int, optional
        Label values to evaluate. Default: every non-zero value found in any reference.
    regions : mapping of str to sequence of int, or sequence of sequences, optional
        Regions (unions of label values) evaluated in addition to the labels.
    nsd_tolerance_mm : float
        Tolerance of the normalized surface Dice in mm.
    workers : int, optional
        Processes to use (default 1: arrays are copied to each worker, which rarely pays off).
    progress : bool
        Show a progress bar.

    Returns
    -------
    EvaluationResult
        A pair that cannot be evaluated (different shapes, non-integer values) is listed in
        ``failures`` and the others are still evaluated.

    Examples
    --------
    >>> ref = np.zeros((1, 8, 8), np.uint8); ref[0, 2:6, 2:6] = 1
    >>> result = evaluate_cases([("a", ref, ref, (999.0, 1.0, 1.0))])
    >>> result.labels, result.mean["1"]["Dice"], result.mean["1"]["HD95"]
    (('1',), 1.0, 0.0)
    """
    if not math.isfinite(nsd_tolerance_mm) or nsd_tolerance_mm < 0:
        raise ValueError(f"nsd_tolerance_mm must be a finite distance >= 0 in mm, got {nsd_tolerance_mm}")
    label_values, region_map = _normalize_labels(labels, regions)
    tasks = [
        _Task(str(case_id), label_values, region_map, float(nsd_tolerance_mm), reference, prediction,
              tuple(float(s) for s in spacing))
        for case_id, reference, prediction, spacing in pairs
    ]
    outputs = map_with_progress(_evaluate_task, tasks, workers=workers, progress=progress, description="evaluate")
    return _collect(outputs, label_values, region_map, float(nsd_tolerance_mm))


def evaluate_folders(
    reference_dir: PathType,
    prediction_dir: PathType,
    labels: Sequence[int] | None = None,
    regions: Regions | None = None,
    output: PathType | None = None,
    workers: int | None = None,
    nsd_tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM,
    file_ending: str | None = None,
    allow_missing: bool = False,
    progress: bool = True,
) -> EvaluationResult:
    """Evaluate every prediction file against the reference file of the same name.

    Parameters
    ----------
    reference_dir, prediction_dir : str or Path
        Folders of label files named ``CASE.ext`` (any format :func:`autounet.io.read_image` reads;
        the two folders may use different formats). Hidden files and other file types are ignored.
    labels : sequence of int, optional
        Label values to evaluate. Default: every non-zero value found in any reference.
    regions : mapping of str to sequence of int, or sequence of sequences, optional
        Regions (unions of label values) evaluated in addition to the labels.
    output : str or Path, optional
        Folder for ``summary.json``, ``metrics_per_case.csv`` and ``metrics_mean.csv`` (or a path
        ending in ``.json`` for the summary). Default: nothing is written.
    workers : int, optional
        Processes; default: one for small folders, else the number of cores.
    nsd_tolerance_mm : float
        Tolerance of the normalized surface Dice in mm.
    file_ending : str, optional
        Only consider files ending with this (e.g. ``".nii.gz"``); needed when a folder holds the same
        case in two formats.
    allow_missing : bool
        If False (default), a reference case without a prediction is an error. If True, such cases are
        scored as all-background predictions (Dice 0 for every label present) and listed in
        ``missing_predictions``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    EvaluationResult
        Cases that cannot be evaluated (unreadable file, shape mismatch, non-integer values) are listed
        in ``failures`` with a message naming the file; all others are evaluated. Predictions without
        a reference are listed in ``unmatched_predictions``. Metrics use the reference's spacing;
        differing geometry is reported in ``warnings``.

    Raises
    ------
    FileNotFoundError
        If a folder does not exist.
    DatasetError
        If the reference folder holds no label files, a case appears twice in one folder, or a
        prediction is missing and ``allow_missing`` is False.
    """
    reference_dir, prediction_dir = Path(reference_dir), Path(prediction_dir)
    if not math.isfinite(nsd_tolerance_mm) or nsd_tolerance_mm < 0:
        raise ValueError(f"nsd_tolerance_mm must be a finite distance >= 0 in mm, got {nsd_tolerance_mm}")
    if not reference_dir.is_dir():
        raise FileNotFoundError(f"{reference_dir}: reference folder not found; pass the folder holding the label files")
    if not prediction_dir.is_dir():
        raise FileNotFoundError(f"{prediction_dir}: prediction folder not found; run \"autounet predict\" or fix the path")
    references = find_label_files(reference_dir, file_ending)
    predictions = find_label_files(prediction_dir, file_ending)
    if not references:
        hint = f"; pass {reference_dir / 'labelsTr'} instead" if (reference_dir / "labelsTr").is_dir() else ""
        raise DatasetError(
            f"{reference_dir}: no reference label files ({file_ending or ', '.join(SUPPORTED_EXTENSIONS)}){hint}"
        )
    missing = sorted(set(references) - set(predictions))
    unmatched = sorted(set(predictions) - set(references))
    if missing and not allow_missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DatasetError(
            f"{prediction_dir}: {len(missing)} of {len(references)} reference cases have no prediction ({shown}); "
            "predict them, or pass allow_missing=True (--allow-missing) to score them as empty predictions"
        )
    for case_id in missing:
        logger.warning("%s: no prediction in %s; scored as an empty prediction", case_id, prediction_dir)
    if unmatched:
        logger.warning("%d prediction file(s) in %s have no reference and are ignored: %s",
                       len(unmatched), prediction_dir, ", ".join(unmatched[:5]))
    label_values, region_map = _normalize_labels(labels, regions)
    tasks = [
        _Task(case_id, label_values, region_map, float(nsd_tolerance_mm), path, predictions.get(case_id))
        for case_id, path in sorted(references.items())
    ]
    total_bytes = sum(p.stat().st_size for p in list(references.values()) + list(predictions.values()))
    outputs = map_with_progress(
        _evaluate_task, tasks, workers=auto_workers(total_bytes, workers), progress=progress, description="evaluate"
    )
    result = _collect(
        outputs, label_values, region_map, float(nsd_tolerance_mm), missing=tuple(missing), unmatched=tuple(unmatched),
        reference_dir=str(reference_dir), prediction_dir=str(prediction_dir),
    )
    if output is not None:
        result.save(output)
    return result


def find_label_files(folder: PathType, file_ending: str | None = None) -> dict[str, Path]:
    """Label files of a folder by case id (file name without extension); hidden files are skipped.

    Raises
    ------
    FileNotFoundError
        If the folder does not exist.
    DatasetError
        If two files have the same case id (e.g. ``a.nii.gz`` and ``a.png``) and no ``file_ending`` is given.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder not found; check the path")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if file_ending is not None:
            if not path.name.endswith(file_ending):
                continue
            case_id = path.name[: len(path.name) - len(file_ending)]
        elif file_extension(path) in SUPPORTED_EXTENSIONS:
            case_id = strip_extension(path)
        else:
            continue
        if case_id in files:
            raise DatasetError(
                f"{folder}: case {case_id} is there twice ({files[case_id].name}, {path.name}); "
                "pass file_ending (--file-ending) to choose one format"
            )
        files[case_id] = path
    return files


def labels_from_dataset_json(path: PathType) -> tuple[list[int], dict[str, tuple[int, ...]], str]:
    """``(foreground label values, regions, file_ending)`` declared in a ``dataset.json`` (MSD or nnU-Net v2)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dataset.json not found; pass the dataset's dataset.json or use --labels")
    description = parse_dataset_json(read_json(path), source=str(path))
    labels = sorted(v for v in description.labels.values() if v != 0)
    return labels, dict(description.regions), description.file_ending


def _normalize_labels(
    labels: Sequence[int] | None, regions: Regions | None
) -> tuple[tuple[int, ...] | None, dict[str, tuple[int, ...]]]:
    label_values = None if labels is None else tuple(int(v) for v in labels)
    if regions is None:
        return label_values, {}
    items = regions.items() if isinstance(regions, Mapping) else ((region_key(r), r) for r in regions)
    return label_values, {str(name): tuple(int(v) for v in values) for name, values in items}


def _read_label_map(path: Path, what: str) -> Image:
    image = read_image(path)
    if image.num_channels != 1:
        raise ValueError(f"{path}: the {what} has {image.num_channels} channels; expected a label map with one channel")
    if 0 in image.spatial_shape:
        raise ValueError(f"{path}: the {what} has no voxels (shape {image.spatial_shape}); re-export the file")
    return image


def _geometry_warning(reference: Image, prediction: Image) -> str:
    ref, pred = reference.geometry, prediction.geometry
    problems = []
    if not np.allclose(ref.spacing, pred.spacing, rtol=SPACING_RTOL, atol=0):
        problems.append(f"spacing {pred.spacing} vs {ref.spacing}")
    if not np.allclose(ref.origin, pred.origin, rtol=0, atol=ORIGIN_ATOL_MM):
        problems.append(f"origin {pred.origin} vs {ref.origin}")
    if not np.allclose(ref.direction, pred.direction, rtol=0, atol=DIRECTION_ATOL):
        problems.append("direction differs")
    if not problems:
        return ""
    return f"{prediction.source}: geometry differs from the reference ({'; '.join(problems)}); metrics use the reference spacing"


@dataclass(frozen=True)
class _Pair:
    """The two label maps of a case, loaded, with the names to use in messages."""

    reference: np.ndarray
    prediction: np.ndarray
    spacing_mm: tuple[float, ...]
    reference_name: str
    prediction_name: str
    note: str = ""
    warning: str = ""


def _load_pair(task: _Task) -> _Pair:
    if isinstance(task.reference, np.ndarray):
        reference, prediction = np.asarray(task.reference), np.asarray(task.prediction)
        spacing = tuple(task.spacing_mm or ())
        # Accept a leading channel axis of length 1, as in autounet.io.Image.data.
        if reference.ndim == len(spacing) + 1 and reference.shape[0] == 1:
            reference = reference[0]
        if prediction.ndim == len(spacing) + 1 and prediction.shape[0] == 1:
            prediction = prediction[0]
        return _Pair(reference, prediction, spacing, f"case {task.case_id} reference", f"case {task.case_id} prediction")
    reference_image = _read_label_map(Path(task.reference), "reference")
    reference = reference_image.data[0]
    if task.prediction is None:
        return _Pair(reference, np.zeros(reference.shape, np.uint8), reference_image.geometry.spacing,
                     str(task.reference), "(missing)", note="missing prediction: scored as empty")
    prediction_image = _read_label_map(Path(task.prediction), "prediction")
    return _Pair(reference, prediction_image.data[0], reference_image.geometry.spacing, str(task.reference),
                 str(task.prediction), warning=_geometry_warning(reference_image, prediction_image))


def _nonzero_values(labels: np.ndarray) -> tuple[int, ...]:
    """Sorted non-zero values of an integer label map (bincount is much faster than unique on big volumes)."""
    if labels.size and labels.dtype.kind in "iu" and labels.min() >= 0 and labels.max() < 2**16:
        return tuple(int(v) for v in np.flatnonzero(np.bincount(labels.ravel())) if v != 0)
    return tuple(int(v) for v in np.unique(labels) if v != 0)


def _evaluate_task(task: _Task) -> _CaseOutput:
    """Evaluate one case; any problem becomes a ``failure`` message instead of an exception."""
    is_file = not isinstance(task.reference, np.ndarray)
    files = {"reference_file": str(task.reference) if is_file else "",
             "prediction_file": str(task.prediction) if is_file and task.prediction is not None else ""}
    try:
        pair = _load_pair(task)
        if pair.reference.shape != pair.prediction.shape:
            raise ValueError(
                f"{pair.prediction_name}: shape {pair.prediction.shape} differs from the reference's "
                f"{pair.reference.shape} ({pair.reference_name}); write predictions in the geometry of the reference images"
            )
        reference = check_label_values(pair.reference, pair.reference_name)
        prediction = check_label_values(pair.prediction, pair.prediction_name)
        reference_values, prediction_values = _nonzero_values(reference), _nonzero_values(prediction)
        labels = task.labels if task.labels is not None else tuple(sorted(set(reference_values) | set(prediction_values)))
        metrics = compute_metrics(reference, prediction, labels, pair.spacing_mm, task.regions, task.nsd_tolerance_mm)
    except Exception as err:  # noqa: BLE001 - one bad case must not stop the others; the message names it
        logger.debug("case %s failed", task.case_id, exc_info=True)
        message = str(err) if isinstance(err, (ValueError, OSError)) else f"{type(err).__name__}: {err}"
        return _CaseOutput(task.case_id, failure=message or type(err).__name__, **files)
    return _CaseOutput(task.case_id, metrics, reference_values, prediction_values, int(reference.size),
                       note=pair.note, warning=pair.warning, **files)


def _collect(
    outputs: list[_CaseOutput],
    labels: tuple[int, ...] | None,
    regions: dict[str, tuple[int, ...]],
    nsd_tolerance_mm: float,
    missing: tuple[str, ...] = (),
    unmatched: tuple[str, ...] = (),
    reference_dir: str = "",
    prediction_dir: str = "",
) -> EvaluationResult:
    good = [out for out in outputs if not out.failure]
    failures = {out.case_id: out.failure for out in outputs if out.failure}
    for case_id, message in failures.items():
        logger.warning("case %s not evaluated: %s", case_id, message)
    if labels is None:
        labels = tuple(sorted({v for out in good for v in out.reference_values}))
        if good and not labels and not regions:
            raise DatasetError(
                "no reference contains a foreground label (all are background), so there is nothing to evaluate; "
                "pass labels=[...] (--labels) to evaluate the predictions against empty references"
            )
    keys = tuple(str(v) for v in labels) + tuple(regions)
    warnings: dict[str, str] = {}
    cases = []
    for out in sorted(good, key=lambda o: o.case_id):
        assert out.metrics is not None
        # With labels inferred, a case was measured only on its own values: fill in the others (empty in
        # both) and drop values that no reference has.
        metrics = {key: out.metrics.get(key) or empty_pair_metrics(out.num_voxels) for key in keys}
        notes = [out.warning] if out.warning else []
        expected_values = set(labels) | set(out.reference_values) | {v for values in regions.values() for v in values}
        extra = sorted(set(out.prediction_values) - expected_values)
        if extra:
            notes.append(f"prediction holds label values {extra} that are in neither the reference nor the evaluated labels")
        if notes:
            warnings[out.case_id] = "; ".join(notes)
            logger.warning("case %s: %s", out.case_id, warnings[out.case_id])
        cases.append(CaseResult(out.case_id, metrics, out.reference_file, out.prediction_file, out.note))
    return EvaluationResult(
        labels=keys,
        cases=tuple(cases),
        nsd_tolerance_mm=nsd_tolerance_mm,
        missing_predictions=missing,
        unmatched_predictions=unmatched,
        failures=failures,
        warnings=warnings,
        reference_dir=reference_dir,
        prediction_dir=prediction_dir,
    )
