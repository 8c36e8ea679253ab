"""``prepare_results``: make a results folder ready to train, the one sequence of ``autounet run`` and ``autounet
train DATASET``: check (optional), copy ``dataset.json``, fingerprint and plan (or keep the plans), choose the
configurations, preprocess them, then plan the networks for the budget and write the plans.

Every step is idempotent: plans are kept once written (a person may have edited them; then no fingerprint is
needed), the fingerprint is reused when the images did not change, preprocessed cases are skipped when unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autounet.dataset import Dataset, check_dataset, load_dataset
from autounet.dataset.identity import check_results_folder
from autounet.errors import DatasetError
from autounet.fingerprint import compute_fingerprint
from autounet.layout import DATASET_FILE, ResultsLayout
from autounet.pipeline.budget import (
    MIN_USEFUL_FOLD_SECONDS,
    SELECTION_RESERVE_FRACTION,
    budget_per_fold,
    plan_configurations_for_budget,
    training_cases_per_fold,
)
from autounet.pipeline.timing import StageLog
from autounet.planners import PlanOverrides, plan_experiment
from autounet.planners.plans import Plans, load_plans
from autounet.preprocessing import preprocess_dataset
from autounet.typing import PathType

logger = logging.getLogger(__name__)

#: Configurations the trainer can train on its own (the cascade stage needs its low-resolution stage first).
TRAINABLE = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")
DEFAULT_FOLDS: tuple[Any, ...] = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class PrepareOptions:
    """What :func:`prepare_results` prepares.

    Attributes
    ----------
    configurations : tuple of str or None
        Configurations to prepare; default every trainable planned one.
    folds : tuple
        Folds that will be trained (the budget is shared among them, per configuration).
    with_previous_stages : bool
        The run also trains a cascade's previous stage (``autounet run``): it is prepared first, and a cascade whose
        previous stage will not have all five folds is left out. False (``autounet train``): only the configurations
        asked for, whose previous stages were trained before.
    budget_seconds : float or None
        Wall-clock budget of the whole command; new plans are then compute-aware (the network chosen for one fold's
        share of what preparation leaves).
    reserve_fraction : float
        Share of the budget kept for the work after the last fold (model selection in ``autounet run``).
    replan : bool
        Plan again even when ``plans.json`` exists.
    gpu_memory_gb : float or None
        Memory budget for planning (default: the 8 GB reference).
    network : str or None
        Network family to plan for. With kept plans the trainer swaps the family instead (a note says so).
    device, precision : str
        Device and precision training will use (for compute-aware planning).
    workers : int or None
        Worker processes for check, fingerprint and preprocessing.
    check : bool
        Run ``autounet check`` first and stop on errors.
    progress : bool
        Progress bars.
    """

    configurations: tuple[str, ...] | None = None
    folds: tuple[Any, ...] = DEFAULT_FOLDS
    with_previous_stages: bool = True
    budget_seconds: float | None = None
    reserve_fraction: float = SELECTION_RESERVE_FRACTION
    replan: bool = False
    gpu_memory_gb: float | None = None
    network: str | None = None
    device: str = "auto"
    precision: str = "auto"
    workers: int | None = None
    check: bool = False
    progress: bool = True


@dataclass
class PreparedResults:
    """A results folder ready to train: its plans, the configurations to train and what the user should know.

    Attributes
    ----------
    results_dir : Path
    dataset : Dataset
    plans : Plans
        The plans as written to ``plans.json``.
    configurations : list of str
        Configurations to train, every previous stage before its cascade.
    notes : list of str
        Sentences for the user (kept plans, cascades left out, a budget too small).
    kept_plans : bool
        ``plans.json`` existed and was kept.
    """

    results_dir: Path
    dataset: Dataset
    plans: Plans
    configurations: list[str]
    notes: list[str] = field(default_factory=list)
    kept_plans: bool = False


def default_results_folder(dataset_dir: PathType) -> Path:
    """``./<dataset folder name>``: where ``autounet plan DATASET`` and ``autounet train DATASET`` write by default.

    Parameters
    ----------
    dataset_dir : str or Path
        The dataset folder.
    """
    return Path(Path(dataset_dir).resolve().name)


def prepare_results(
    dataset_dir: PathType,
    results_dir: PathType,
    options: PrepareOptions | None = None,
    *,
    log: StageLog | None = None,
    started: float | None = None,
) -> PreparedResults:
    """Make ``results_dir`` ready to train the chosen configurations of the dataset in ``dataset_dir``.

    Compute-aware planning changes widths and batches only, never the preprocessed arrays: preprocessing comes
    first, so the time left for training is known when the networks are chosen, and the plans are written last, so
    they are complete whenever they exist.

    Parameters
    ----------
    dataset_dir : str or Path
        Dataset folder in the MSD or nnU-Net v2 layout.
    results_dir : str or Path
        The dataset's results folder (created if needed; layout in docs/architecture.md).
    options : PrepareOptions, optional
    log : StageLog, optional
        Records the seconds and memory of each stage (``run_log.json``).
    started : float, optional
        ``time.monotonic()`` when the budget started (default: now).

    Returns
    -------
    PreparedResults

    Raises
    ------
    DatasetError
        If ``check`` finds errors (the message lists them all), or a configuration asked for is not in the plans.
    """
    options = options or PrepareOptions()
    started = time.monotonic() if started is None else started
    dataset_dir, layout = Path(dataset_dir), ResultsLayout(results_dir)
    dataset = load_dataset(dataset_dir)
    check_results_folder(layout.root, dataset)  # before anything is written: never mix two datasets' results
    layout.root.mkdir(parents=True, exist_ok=True)
    stage = log.stage if log is not None else _unlogged
    if options.check:
        with stage("check") as entry:
            report = check_dataset(dataset_dir, workers=options.workers, progress=options.progress)
            entry["errors"], entry["warnings"] = len(report.errors), len(report.warnings)
        if report.errors:
            raise DatasetError(f"{dataset_dir} has problems; fix them and re-run:\n{report.format()}")
    if (dataset_dir / DATASET_FILE).is_file():
        shutil.copy2(dataset_dir / DATASET_FILE, layout.dataset_json)
    notes: list[str] = []
    fresh = options.replan or not layout.plans.is_file()
    if fresh:  # kept plans need no fingerprint
        with stage("fingerprint"):
            fingerprint = compute_fingerprint(dataset, output=layout.fingerprint, workers=options.workers,
                                              progress=options.progress)
    with stage("plan"):
        if fresh:
            overrides = PlanOverrides(network=options.network) if options.network else None
            plans = plan_experiment(fingerprint, memory_budget_gb=options.gpu_memory_gb, overrides=overrides)
        else:
            logger.info("keeping the existing plans in %s (plan again with replan)", layout.plans)
            plans = load_plans(layout.plans)
            if options.network:
                notes.append(
                    f"{layout.plans} was kept: every fold trains --network {options.network} with the patch and batch "
                    "the planner gives that family (pass --replan to write them into the plans)"
                )
    configurations = choose_configurations(plans, options, notes, layout.plans, dataset_dir)
    with stage("preprocess"):
        preprocess_dataset(dataset, plans, configurations, layout.preprocessed_root, workers=options.workers,
                           progress=options.progress)
    if fresh:
        if options.budget_seconds is not None:
            with stage("plan_for_budget") as entry:
                plans = _plan_for_budget(plans, configurations, fingerprint.num_cases, options, started, entry)
        plans.save(layout.plans)
    elif options.budget_seconds is not None and not any(plans.configuration(c).training.planned_for_budget for c in configurations):
        notes.append(
            f"{layout.plans} was not planned for a time budget: only the schedules are fitted to it (plan again with a "
            'budget to choose the networks for it too: "autounet run --replan", "autounet plan --budget", or delete '
            "the plans)"
        )
    return PreparedResults(layout.root, dataset, plans, configurations, notes, kept_plans=not fresh)


def choose_configurations(
    plans: Plans, options: PrepareOptions, notes: list[str], plans_path: Path | None = None, dataset_dir: Path | None = None
) -> list[str]:
    """The configurations to prepare and train, in training order.

    Parameters
    ----------
    plans : Plans
    options : PrepareOptions
        ``configurations`` asked for (default: every trainable planned one), ``folds`` and ``with_previous_stages``.
    notes : list of str
        Receives a sentence for every cascade left out.
    plans_path, dataset_dir : Path, optional
        Named in the message for a configuration that is not planned.

    Raises
    ------
    DatasetError
        For a configuration that is not in the plans, or a cascade asked for whose previous stage will not have its
        five folds.
    """
    planned = list(plans.configurations)
    requested = list(options.configurations or ())
    unknown = [c for c in requested if c not in planned]
    if unknown:
        where = f" {plans_path}" if plans_path is not None else ""
        raise DatasetError(
            f"configuration(s) {', '.join(unknown)} are not in the plans{where} (planned: {', '.join(planned)}); "
            f'choose from the planned ones or plan them ("autounet plan {dataset_dir or "DATASET"} -o '
            f'{plans_path or "PLANS"} --configurations {" ".join(unknown)}")'
        )
    if not options.with_previous_stages:
        return requested or [c for c in planned if c in TRAINABLE]
    chosen = requested or [c for c in planned if c in TRAINABLE]
    # A cascade stage trains on top of its low-resolution stage: make sure that one comes first.
    ordered: list[str] = []
    for name in chosen:
        previous = plans.configuration(name).previous_stage
        if previous and previous not in ordered:
            ordered.append(previous)
        if name not in ordered:
            ordered.append(name)
    return without_unfed_cascades(plans, ordered, options, notes)


def without_unfed_cascades(plans: Any, configurations: list[str], options: Any, notes: list[str]) -> list[str]:
    """Drop cascade stages the run cannot train: they learn from the cross-validation predictions of their previous
    stage, which take all five folds of it. An explicitly requested one is an error instead.

    Parameters
    ----------
    plans : Plans
    configurations : list of str
    options : PrepareOptions or RunOptions
        Its ``folds`` and ``configurations`` (those asked for).
    notes : list of str
        Receives a sentence for every cascade left out.
    """
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


def _plan_for_budget(plans: Plans, configurations: Sequence[str], num_cases: int, options: PrepareOptions,
                     started: float, entry: dict) -> Plans:
    """Compute-aware plans: each configuration's network chosen for one fold's share of what is left."""
    assert options.budget_seconds is not None
    folds = len(configurations) * len(options.folds)
    per_fold = budget_per_fold(options.budget_seconds, time.monotonic() - started, folds, options.reserve_fraction)
    entry["per_fold_seconds"] = round(per_fold, 1)
    if per_fold < MIN_USEFUL_FOLD_SECONDS:
        logger.warning("only %.0f s per fold: planning the networks for %.0f s", per_fold, MIN_USEFUL_FOLD_SECONDS)
        per_fold = MIN_USEFUL_FOLD_SECONDS
    return plan_configurations_for_budget(
        plans, per_fold, configurations, device=options.device, precision=options.precision,
        num_training_cases=training_cases_per_fold(num_cases),
    )


@contextlib.contextmanager
def _unlogged(name: str) -> Iterator[dict[str, Any]]:
    yield {}
