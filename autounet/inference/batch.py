"""Predict many cases into a folder: reading and preprocessing the next case and writing the previous one overlap
with the network; finished cases can be skipped; a failing case is reported and the others still finish."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from autounet.dataset.dataset import read_case_images
from autounet.dicom.cases import read_dicom_channels
from autounet.dicom.seg_writer import write_dicom_seg
from autounet.errors import AutounetError, DatasetError
from autounet.inference.export import (
    OutputOptions,
    model_checksum,
    output_paths,
    write_map,
    write_probabilities,
    write_segmentation,
)
from autounet.inference.inputs import InputCase
from autounet.io import read_image_geometry
from autounet.io.nifti_raw import count_nonfinite_nifti
from autounet.parallel import default_workers
from autounet.jsonio import write_json
from autounet.locks import folder_lock
from autounet.separate_folders import require_separate_output
from autounet.progress import progress_bar
from autounet.typing import PathType

if TYPE_CHECKING:
    from autounet.inference.predictor import InferredCase, PreparedCase, Predictor

logger = logging.getLogger(__name__)

REPORT_FILE = "prediction_report.json"
#: Below this many voxels per case (256**3), ``workers=None`` predicts several cases at a time, one per core.
SMALL_CASE_VOXELS = 2**24


@dataclass
class PredictionReport:
    """What a folder prediction did: cases written, skipped as finished, and failed (with the reason)."""

    output_dir: Path
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    case_seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        text = f"{len(self.written)} case(s) written to {self.output_dir} in {self.seconds:.1f} s"
        if self.skipped:
            text += f", {len(self.skipped)} already finished (skipped)"
        if self.failed:
            text += f", {len(self.failed)} failed:\n" + "\n".join(f"  {case}: {why}" for case, why in self.failed.items())
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "output_dir": str(self.output_dir),
            "written": self.written,
            "skipped": self.skipped,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "case_seconds": {k: round(v, 3) for k, v in self.case_seconds.items()},
            "settings": self.settings,
        }


def predict_cases(
    predictor: "Predictor",
    cases: Sequence[InputCase],
    output_dir: PathType,
    *,
    save_probabilities: bool = False,
    save_uncertainty: bool = False,
    skip_finished: bool = False,
    workers: int | None = None,
    progress: bool = True,
    output_options: OutputOptions | None = None,
) -> PredictionReport:
    """Predict ``cases`` and write their outputs to ``output_dir`` (see :meth:`Predictor.predict_files`), holding the
    folder's write lock (another run writing there is refused, named) and never writing into an input's folder."""
    folders = {Path(f).parent: case.case_id for case in reversed(cases) for f in case.files}
    require_separate_output(output_dir, {f"of {case_id}": folder for folder, case_id in folders.items()},
                            allow_nested=True)
    with folder_lock(output_dir, "autounet predict"):
        return _predict_cases(predictor, cases, output_dir, save_probabilities=save_probabilities,
                              save_uncertainty=save_uncertainty, skip_finished=skip_finished, workers=workers,
                              progress=progress, output_options=output_options)


def _predict_cases(
    predictor: "Predictor",
    cases: Sequence[InputCase],
    output_dir: PathType,
    *,
    save_probabilities: bool = False,
    save_uncertainty: bool = False,
    skip_finished: bool = False,
    workers: int | None = None,
    progress: bool = True,
    output_options: OutputOptions | None = None,
) -> PredictionReport:
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    output_options = output_options or OutputOptions()
    report = PredictionReport(output_dir, settings=_settings(predictor, save_probabilities, save_uncertainty))
    report.settings["output_format"] = output_options.output_format
    with_disagreement = save_uncertainty and predictor.num_members > 1
    todo = []
    for case in cases:
        paths = output_paths(output_dir, case.case_id, case.output_extension)
        try:
            formats = output_options.outputs(bool(case.dicom), case.case_id)
        except DatasetError:
            formats = (True, True)  # never complete: the case fails with the message when predicted
        if skip_finished and paths.is_complete(save_probabilities, save_uncertainty, with_disagreement, *formats):
            report.skipped.append(case.case_id)
        else:
            todo.append(case)
    seg_options = _with_model_identity(output_options, predictor, todo)
    dicom_sources: dict[str, Any] = {}  # case id -> source series (headers only) for its Segmentation
    start = time.perf_counter()
    workers = resolve_workers(workers, todo, predictor.device)
    report.settings["workers"] = workers

    def prepare(case: InputCase) -> "PreparedCase":
        if case.problem:
            raise DatasetError(case.problem)
        output_options.outputs(bool(case.dicom), case.describe())  # refuse a Segmentation of non-DICOM input early
        if case.dicom:
            image, reference = read_dicom_channels(case.dicom, resample=output_options.dicom_resample)
            dicom_sources[case.case_id] = reference.without_voxels()
        else:
            image = read_case_images(case.files)
            _check_finite(case)
        return predictor.prepare(image, case.case_id)

    def finish(case: InputCase, inferred: "InferredCase") -> None:
        prediction = predictor.finish(inferred, probabilities=save_probabilities, uncertainty=save_uncertainty)
        paths = output_paths(output_dir, case.case_id, case.output_extension)
        image_file, dicom_seg = output_options.outputs(bool(case.dicom), case.case_id)
        if save_probabilities:
            assert prediction.probabilities is not None
            write_probabilities(paths.probabilities, prediction.probabilities, predictor.label_values)
        if save_uncertainty:
            assert prediction.entropy is not None
            write_map(paths.entropy, prediction.entropy, prediction.geometry)
            if prediction.disagreement is not None:
                write_map(paths.disagreement, prediction.disagreement, prediction.geometry)
        if dicom_seg:  # before the image file: a failed geometry proof leaves no segmentation of the case at all
            assert paths.dicom_seg is not None
            write_dicom_seg(paths.dicom_seg, prediction.segmentation, dicom_sources.pop(case.case_id),
                            predictor.plans.labels, seg_options)
        if image_file:
            write_segmentation(paths.segmentation, prediction.segmentation, prediction.geometry)  # last: marks the case done

    if workers > 1:
        _predict_in_parallel(todo, workers, lambda c: finish(c, predictor.infer(prepare(c), save_uncertainty)), report, progress)
        report.seconds = time.perf_counter() - start
        write_json(output_dir / REPORT_FILE, report.to_dict())
        return report

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="autounet-io") if workers > 0 else None
    prepared_queue: deque[tuple[InputCase, Future]] = deque()
    exports: deque[tuple[InputCase, float, Future]] = deque()
    bar = progress_bar(len(todo), "predict", enabled=progress, leave=True)
    next_index = 0

    def refill() -> None:
        nonlocal next_index
        while pool is not None and next_index < len(todo) and len(prepared_queue) < workers:
            prepared_queue.append((todo[next_index], pool.submit(prepare, todo[next_index])))
            next_index += 1

    def collect(block: bool) -> None:
        while exports and (block or exports[0][2].done() or len(exports) > workers):
            case, started, future = exports.popleft()
            _record(report, case, started, future.result, bar)

    try:
        for index, case in enumerate(todo):
            started = time.perf_counter()
            if pool is None:
                _record(report, case, started, lambda c=case: finish(c, predictor.infer(prepare(c), save_uncertainty)), bar)
                continue
            refill()
            queued_case, future = prepared_queue.popleft()
            assert queued_case is case
            try:
                prepared = future.result()
                refill()
                inferred = predictor.infer(prepared, keep_disagreement=save_uncertainty)
                del prepared
            except Exception as err:  # one bad case must not stop the others
                _fail(report, case, err, bar)
                continue
            exports.append((case, started, pool.submit(finish, case, inferred)))
            del inferred
            collect(block=False)
        collect(block=True)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    report.seconds = time.perf_counter() - start
    write_json(output_dir / REPORT_FILE, report.to_dict())
    for case_id, reason in report.failed.items():
        logger.error("%s failed: %s", case_id, reason)
    return report


def _with_model_identity(options: OutputOptions, predictor: "Predictor", cases: Sequence[InputCase]):
    """The Segmentation options with the model's name and weights checksum filled in (hashed only when needed)."""
    seg = options.seg
    if not any(case.dicom for case in cases) or options.output_format == "nifti":
        return seg
    checkpoints = [fold.path for folds in predictor.models.values() for fold in folds if getattr(fold, "path", None)]
    name = seg.algorithm_name if seg.algorithm_name != "autounet" else f"autounet {predictor.plans.dataset_name}"
    parameters = {"configurations": ",".join(predictor.configurations),
                  "folds": ",".join(str(f.fold) for name_ in predictor.configurations for f in predictor.models[name_]),
                  **dict(seg.parameters)}
    return replace(seg, algorithm_name=name, model_checksum=seg.model_checksum or model_checksum(checkpoints),
                   parameters=parameters)


def resolve_workers(workers: int | None, cases: Sequence[InputCase], device: torch.device) -> int:
    """``workers`` as given, or the automatic choice: as many cases at a time as there are cores (at most the
    number of cases) on the CPU when the first case has fewer than :data:`SMALL_CASE_VOXELS` voxels, else 1."""
    if workers is not None:
        if workers < 0:
            raise ValueError(f"workers must be 0 or more, got {workers}")
        return int(workers)
    if device.type != "cpu" or len(cases) < 2:
        return 1
    try:
        shape, channels, _ = read_image_geometry(cases[0].files[0])
    except (OSError, ValueError):
        return 1
    if int(np.prod(shape)) * channels >= SMALL_CASE_VOXELS:
        return 1
    return max(1, min(default_workers(), len(cases)))


def _predict_in_parallel(todo: Sequence[InputCase], workers: int, run, report: PredictionReport, progress: bool) -> None:
    """Run whole cases (read, predict, write) in ``workers`` threads, each case's tensor operations on
    ``cores // workers`` threads: the network's many small operations then never wait for each other's threads,
    which is faster for small images and much faster when other programs share the cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, default_workers() // workers))
    bar = progress_bar(len(todo), "predict", enabled=progress, leave=True)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="autounet-case") as pool:
            started = time.perf_counter()
            futures = [(case, pool.submit(_timed, run, case)) for case in todo]
            for case, future in futures:
                _record(report, case, started, future.result, bar)
                if case.case_id in report.case_seconds:
                    report.case_seconds[case.case_id] = future.result()
    finally:
        bar.close()
        torch.set_num_threads(previous)


def _timed(run, case: InputCase) -> float:
    started = time.perf_counter()
    run(case)
    return time.perf_counter() - started


def _check_finite(case: InputCase) -> None:
    """Refuse NaN/Inf voxels in NIfTI files: ITK reads them as 0, which would change the prediction silently."""
    for path in case.files:
        count = count_nonfinite_nifti(path)
        if count:
            raise DatasetError(
                f"{path}: {count} NaN/Inf voxel(s), which the NIfTI reader turns into 0 (a silently different image); "
                "replace them (e.g. with the minimum intensity) and predict again"
            )


def _record(report: PredictionReport, case: InputCase, started: float, run, bar) -> None:
    try:
        run()
    except Exception as err:  # one bad case must not stop the others
        _fail(report, case, err, bar)
        return
    report.written.append(case.case_id)
    report.case_seconds[case.case_id] = time.perf_counter() - started
    bar.update()


def _fail(report: PredictionReport, case: InputCase, err: Exception, bar) -> None:
    logger.debug("case %s failed", case.case_id, exc_info=True)
    message = str(err) if isinstance(err, (AutounetError, OSError, ValueError)) else f"{type(err).__name__}: {err}"
    if isinstance(err, MemoryError):
        message = (f"out of memory{f' ({err})' if str(err) else ''}{_memory_need(case, report)}; cases predicted at the same time each hold "
                   "their own copy: use --workers 0 (one case at a time), a smaller --tile-batch-size, or a machine "
                   "with more memory")
    if not any(str(f) in message for f in case.files):
        message = f"{case.describe()}: {message}"
    report.failed[case.case_id] = message
    bar.update()


#: Copies of the case's class scores held at the peak of :meth:`Predictor.finish`: the summed scores on the network's
#: grid, the resampled probabilities on the input grid and their average over the ensemble.
PREDICTION_SCORE_COPIES = 3


def estimate_prediction_memory_bytes(voxels: float, channels: int, num_classes: int) -> float:
    """About how much memory predicting one case needs: its float32 image plus the class scores.

    Examples
    --------
    >>> round(estimate_prediction_memory_bytes(512 * 512 * 300, 1, 3) / 1e9, 1)  # one CT volume, three classes
    3.1
    """
    float32_bytes = 4
    return voxels * float32_bytes * (channels + PREDICTION_SCORE_COPIES * num_classes)


def _memory_need(case: InputCase, report: PredictionReport) -> str:
    """``": case X needs about N GB (shape ...)"`` from the image headers, or ``""`` if they are unreadable."""
    try:
        shape, channels = read_image_geometry(case.files[0])[:2]
        channels *= len(case.files)
    except Exception:  # the estimate is a courtesy; the memory error is what matters
        return ""
    num_classes = int(report.settings.get("num_classes") or 2)
    needed = estimate_prediction_memory_bytes(float(np.prod(shape)), channels, num_classes)
    return f": case {case.case_id} needs about {needed / 1e9:.1f} GB (shape {tuple(shape)}, {num_classes} classes)"


def _settings(predictor: "Predictor", save_probabilities: bool, save_uncertainty: bool) -> dict[str, Any]:
    return {
        "model_dir": str(predictor.model_dir) if predictor.model_dir else None,
        "configurations": list(predictor.configurations),
        "folds": {name: [f.fold for f in folds] for name, folds in predictor.models.items()},
        "checkpoints": {name: [str(f.path) for f in folds] for name, folds in predictor.models.items()},
        "step_size": predictor.step_size,
        "mirroring": predictor.mirroring,
        "postprocessing": predictor.postprocessing.to_dict() if predictor.postprocessing else None,
        "save_probabilities": save_probabilities,
        "save_uncertainty": save_uncertainty,
        "device": str(predictor.device),
        "num_classes": len(predictor.label_values),
    }
