"""``run_pipeline``: from a raw dataset to a trained, selected, post-processed model in one call.

Every stage is idempotent, so re-running after a kill (or after adding folds or configurations) continues
where the last run stopped: the fingerprint is reused when the images did not change, plans are kept once
written (edit them by hand and re-run), preprocessed cases are skipped when unchanged, folds resume from their
latest checkpoint and finished folds are skipped.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from autounet.errors import DatasetError
from autounet.layout import DATASET_FILE, FOLD_SUMMARY_FILE, ResultsLayout
from autounet.pipeline.fold import train_fold
from autounet.pipeline.timing import StageLog
from autounet.trainers.config import TrainingConfig
from autounet.typing import PathType

logger = logging.getLogger(__name__)

#: Configurations the trainer can train on its own (the cascade stage needs its low-resolution stage first).
TRAINABLE = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")
#: Share of a run's budget kept back for model selection and post-processing after the last fold.
SELECTION_RESERVE_FRACTION = 0.03
#: Below this many seconds per fold, training cannot learn anything useful; the run says so up front.
MIN_USEFUL_FOLD_SECONDS = 60.0
DEFAULT_FOLDS = (0, 1, 2, 3, 4)


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
    from autounet.dataset import load_dataset

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
        If ``check`` finds errors (the message lists them all).
    """
    from autounet.dataset import check_dataset, load_dataset
    from autounet.fingerprint import compute_fingerprint
    from autounet.planners import PlanOverrides, plan_experiment
    from autounet.planners.plans import load_plans
    from autounet.preprocessing import preprocess_dataset

    options = options or RunOptions()
    started = time.monotonic()
    dataset_dir = Path(dataset_dir)
    dataset = load_dataset(dataset_dir)
    results_dir = Path(results_root) / _safe_name(dataset.name)
    results_dir.mkdir(parents=True, exist_ok=True)
    log = StageLog(results_dir).load()
    summary = RunSummary(results_dir=results_dir, configurations=[])

    if options.check:
        with log.stage("check") as entry:
            report = check_dataset(dataset_dir, workers=options.workers, progress=options.progress)
            entry["errors"], entry["warnings"] = len(report.errors), len(report.warnings)
        if report.errors:
            raise DatasetError(f"{dataset_dir} has problems; fix them and re-run:\n{report.format()}")
    layout = ResultsLayout(results_dir)
    shutil.copy2(dataset_dir / DATASET_FILE, layout.dataset_json)

    with log.stage("fingerprint"):
        fingerprint = compute_fingerprint(
            dataset, output=layout.fingerprint, workers=options.workers, progress=options.progress
        )
    plans_path = layout.plans
    fresh_plans = options.replan or not plans_path.is_file()
    with log.stage("plan"):
        if fresh_plans:
            overrides = PlanOverrides(network=options.network) if options.network else None
            plans = plan_experiment(fingerprint, memory_budget_gb=options.gpu_memory_gb, overrides=overrides)
        else:
            logger.info("keeping the existing plans in %s (use replan to plan again)", plans_path)
            plans = load_plans(plans_path)
            if options.network and options.training.network is None:
                # Kept plans name their own family: the trainer swaps it and re-plans patch and batch for it.
                options = replace(options, training=replace(options.training, network=options.network))
                summary.notes.append(
                    f"{plans_path} was kept: every fold trains --network {options.network} with the patch and batch "
                    "the planner gives that family (pass --replan to write them into the plans)"
                )
    configurations = _choose_configurations(plans, options.configurations)
    configurations = _without_unfed_cascades(plans, configurations, options, summary.notes)
    summary.configurations = configurations

    # Compute-aware planning changes widths and batches, never the preprocessed arrays: preprocess first, so the
    # time left for training is known when the networks are chosen; the plans are written once complete.
    with log.stage("preprocess"):
        preprocess_dataset(
            dataset, plans, configurations, layout.preprocessed_root, workers=options.workers, progress=options.progress
        )
    if fresh_plans:
        if options.budget_seconds is not None:
            with log.stage("plan_for_budget") as entry:
                plans = _plan_for_budget(plans, configurations, fingerprint.num_cases, options, started, entry)
        plans.save(plans_path)
    elif options.budget_seconds is not None and not any(plans.configuration(c).training.planned_for_budget for c in configurations):
        summary.notes.append(
            f"{plans_path} was not planned for a time budget: only the schedules are fitted to it (pass --replan to "
            "choose the networks for the budget too)"
        )

    with log.stage("train"):
        summary.folds = _train_all(results_dir, dataset_dir, configurations, options, started, summary.notes)

    if options.find_best and any(_fold_done(results_dir, c, f) for c in configurations for f in options.folds):
        from autounet.inference.find_best import find_best

        with log.stage("find_best"):
            summary.best = find_best(results_dir, configurations=configurations, workers=options.workers, progress=options.progress)
    if options.report:
        summary.report = _write_report(results_dir, log)
    summary.stages = dict(log.data["stages"])
    return summary


def per_fold_budget(budget_seconds: float, elapsed_seconds: float, folds_left: int) -> float:
    """Seconds for the next of ``folds_left`` folds: what is left of the budget, less the selection reserve, shared
    equally (recomputed before every fold, so time a fold saves goes to the next).

    Examples
    --------
    >>> round(per_fold_budget(6000, 30, 5), 1)
    1158.0
    >>> per_fold_budget(100, 200, 2)
    -51.5
    """
    remaining = budget_seconds * (1 - SELECTION_RESERVE_FRACTION) - elapsed_seconds
    return remaining / max(folds_left, 1)


def _plan_for_budget(plans, configurations, num_cases, options: RunOptions, started: float, entry: dict) -> Any:
    """Compute-aware plans: each configuration's network chosen for the per-fold share of what is left."""
    from autounet.trainers.prepare import training_cases_per_fold
    from autounet.trainers.step_timing import plan_configurations_for_budget

    assert options.budget_seconds is not None
    per_fold = per_fold_budget(options.budget_seconds, time.monotonic() - started, len(configurations) * len(options.folds))
    entry["per_fold_seconds"] = round(per_fold, 1)
    if per_fold < MIN_USEFUL_FOLD_SECONDS:
        logger.warning("only %.0f s per fold: planning the networks for %.0f s", per_fold, MIN_USEFUL_FOLD_SECONDS)
        per_fold = MIN_USEFUL_FOLD_SECONDS
    return plan_configurations_for_budget(
        plans, per_fold, configurations, device=options.training.device, precision=options.training.precision,
        num_training_cases=training_cases_per_fold(num_cases),
    )


def _choose_configurations(plans, requested: Sequence[str] | None) -> list[str]:
    planned = list(plans.configurations)
    if requested:
        unknown = [c for c in requested if c not in planned]
        if unknown:
            raise DatasetError(
                f"configuration(s) {', '.join(unknown)} are not in the plans (planned: {', '.join(planned)}); "
                "choose from the planned ones or re-plan with --configurations"
            )
        chosen = list(requested)
    else:
        chosen = [c for c in planned if c in TRAINABLE]
    # A cascade stage trains on top of its low-resolution stage: make sure that one comes first.
    ordered: list[str] = []
    for name in chosen:
        previous = plans.configuration(name).previous_stage
        if previous and previous not in ordered:
            ordered.append(previous)
        if name not in ordered:
            ordered.append(name)
    return ordered


def _without_unfed_cascades(plans, configurations: list[str], options: RunOptions, notes: list[str]) -> list[str]:
    """Drop cascade stages the run cannot train: they learn from the cross-validation predictions of their previous
    stage, which take all five folds of it. An explicitly requested one is an error instead."""
    if set(DEFAULT_FOLDS) <= {f for f in options.folds if f != "all"}:
        return configurations
    kept = []
    for name in configurations:
        previous = plans.configuration(name).previous_stage
        if not previous:
            kept.append(name)
            continue
        reason = (
            f"{name} learns from the cross-validation predictions of {previous}, which need its folds 0-4, and this "
            f"run trains folds {' '.join(str(f) for f in options.folds)}"
        )
        if options.configurations and name in options.configurations:
            raise DatasetError(f"{reason}; pass --folds 0 1 2 3 4 (or leave {name} out)")
        notes.append(f"{name} is not trained: {reason}")
    return kept


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
            per_fold = per_fold_budget(options.budget_seconds, time.monotonic() - started, len(todo) - index)
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
