"""``run_pipeline``: from a raw dataset to a trained, selected, post-processed model in one call.

Every stage is idempotent, so re-running after a kill (or after adding folds or configurations) continues
where the last run stopped: the fingerprint is reused when the images did not change, plans are kept once
written (edit them by hand and re-run), preprocessed cases are skipped when unchanged, folds resume from their
latest checkpoint and finished folds are skipped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from autounet.dataset import load_dataset
from autounet.inference.find_best import find_best
from autounet.layout import FOLD_SUMMARY_FILE, ResultsLayout
from autounet.pipeline.budget import MIN_USEFUL_FOLD_SECONDS, SELECTION_RESERVE_FRACTION, budget_per_fold
from autounet.pipeline.fold import train_fold
from autounet.pipeline.prepare import DEFAULT_FOLDS, PrepareOptions, prepare_results
from autounet.pipeline.timing import StageLog
from autounet.trainers.config import TrainingConfig
from autounet.typing import PathType

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """What :func:`run_pipeline` does.

    Attributes
    ----------
    configurations : tuple of str or None
        Configurations to train; default every planned one.
    folds : tuple
        Cross-validation folds to train (default all five); ``("all",)`` trains one model on every case.
    budget_seconds : float or None
        Wall-clock budget of the whole run. Training gets what the earlier stages left, shared equally among
        the folds still to train (recomputed before each fold, so time a fold saves goes to the next).
    training : TrainingConfig
        Schedule, device, precision and overrides used for every fold (its ``budget_seconds`` is set per fold).
    workers : int or None
        Worker processes for fingerprint, preprocessing and evaluation.
    check : bool
        Run ``autounet check`` first and stop on errors.
    replan : bool
        Plan again even when ``plans.json`` exists (by default an existing, possibly hand-edited plan is kept).
    gpu_memory_gb : float or None
        Memory budget for planning (default: the 8 GB reference).
    network : str or None
        Network family for every configuration (default: the plans').
    find_best, report : bool
        Select the best configuration/ensemble with post-processing, and write the HTML report.
    progress : bool
        Progress bars.
    """

    configurations: tuple[str, ...] | None = None
    folds: tuple[Any, ...] = DEFAULT_FOLDS
    budget_seconds: float | None = None
    training: TrainingConfig = field(default_factory=TrainingConfig)
    workers: int | None = None
    check: bool = True
    replan: bool = False
    gpu_memory_gb: float | None = None
    network: str | None = None
    find_best: bool = True
    report: bool = True
    progress: bool = True


@dataclass
class RunSummary:
    """What a run produced: the results folder, per-fold results, the selection and the report."""

    results_dir: Path
    configurations: list[str]
    folds: list[Any] = field(default_factory=list)
    best: Any = None
    report: Path | None = None
    stages: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def results_folder(dataset_dir: PathType, results_root: PathType) -> Path:
    """``results_root/<dataset name>``, the one folder that holds everything a run makes for a dataset."""
    return Path(results_root) / _safe_name(load_dataset(dataset_dir).name)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._") or "dataset"


def run_pipeline(dataset_dir: PathType, results_root: PathType = "results", options: RunOptions | None = None) -> RunSummary:
    """Check, fingerprint, plan, preprocess, train every fold of every configuration, select the best, report.

    Parameters
    ----------
    dataset_dir : str or Path
        Dataset folder in the MSD or nnU-Net v2 layout.
    results_root : str or Path
        Parent folder; results go to ``results_root/<dataset name>/`` (layout in docs/architecture.md).
    options : RunOptions, optional

    Returns
    -------
    RunSummary

    Raises
    ------
    DatasetError
        If ``check`` finds errors (the message lists them all), or ``results_root/<dataset name>`` was made for
        another dataset (:mod:`autounet.dataset.identity`; nothing in it is changed).
    """
    options = options or RunOptions()
    started = time.monotonic()
    results_dir = results_folder(dataset_dir, results_root)
    results_dir.mkdir(parents=True, exist_ok=True)
    log = StageLog(results_dir).load()
    prepared = prepare_results(dataset_dir, results_dir, _prepare_options(options), log=log, started=started)
    summary = RunSummary(results_dir=results_dir, configurations=prepared.configurations, notes=list(prepared.notes))
    configurations = prepared.configurations
    if prepared.kept_plans and options.network and options.training.network is None:
        # Kept plans name their own family: the trainer swaps it and re-plans patch and batch for it.
        options = replace(options, training=replace(options.training, network=options.network))

    with log.stage("train"):
        summary.folds = _train_all(results_dir, Path(dataset_dir), configurations, options, started, summary.notes)

    if options.find_best and any(_fold_done(results_dir, c, f) for c in configurations for f in options.folds):
        with log.stage("find_best"):
            summary.best = find_best(results_dir, configurations=configurations, workers=options.workers, progress=options.progress)
        summary.notes += summary.best.notes  # e.g. fold "all" only: nothing to cross-validate, predict uses fold all
    if options.report:
        summary.report = _write_report(results_dir, log)
    summary.stages = dict(log.data["stages"])
    return summary


def _prepare_options(options: RunOptions) -> PrepareOptions:
    """What the preparation of a run needs from its options: every trainable configuration with its previous stages,
    the budget shared among all folds with the selection reserve kept back."""
    return PrepareOptions(
        configurations=options.configurations, folds=tuple(options.folds), with_previous_stages=True,
        budget_seconds=options.budget_seconds, reserve_fraction=SELECTION_RESERVE_FRACTION, replan=options.replan,
        gpu_memory_gb=options.gpu_memory_gb, network=options.network, device=options.training.device,
        precision=options.training.precision, workers=options.workers, check=options.check, progress=options.progress,
    )


def _fold_done(results_dir: Path, configuration: str, fold: Any) -> bool:
    layout = ResultsLayout(results_dir)
    return layout.checkpoint(configuration, fold).is_file() and (
        str(fold) == "all" or (layout.validation(configuration, fold) / FOLD_SUMMARY_FILE).is_file()
    )


def _train_all(
    results_dir: Path, dataset_dir: Path, configurations: list[str], options: RunOptions, started: float, notes: list[str]
) -> list[Any]:
    jobs = [(c, f) for c in configurations for f in options.folds]
    todo = [job for job in jobs if not _fold_done(results_dir, *job)]
    if len(todo) < len(jobs):
        notes.append(f"{len(jobs) - len(todo)} of {len(jobs)} folds were already trained and are kept")
    training = options.training
    if len(configurations) > 1:  # ensembles of configurations are scored from the saved probabilities
        training = replace(training, save_probabilities=True)
    results = []
    for index, (configuration, fold) in enumerate(todo):
        config = training
        if options.budget_seconds is not None:
            per_fold = budget_per_fold(options.budget_seconds, time.monotonic() - started, len(todo) - index)
            if per_fold < MIN_USEFUL_FOLD_SECONDS:
                notes.append(
                    f"only {max(per_fold, 0):.0f} s left for {configuration} fold {fold}: the budget is too small for "
                    f"{len(todo)} folds; pass fewer --folds/--configurations or a larger --budget"
                )
                per_fold = MIN_USEFUL_FOLD_SECONDS
            config = replace(config, budget_seconds=per_fold)
        logger.info("training %s fold %s (%d of %d)", configuration, fold, index + 1, len(todo))
        results.append(train_fold(results_dir, configuration, fold, config, resume=True, dataset=dataset_dir))
    return results


def _write_report(results_dir: Path, log: StageLog) -> Path | None:
    try:
        from autounet.report import write_report
    except ImportError:  # the report package is optional for the rest of the pipeline
        return None
    with log.stage("report"):
        return write_report(results_dir)
