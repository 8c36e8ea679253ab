"""Run the stages a training needs and that have not run yet: fingerprint, plan, preprocess."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from autounet.errors import MissingStageError
from autounet.typing import PathType

logger = logging.getLogger(__name__)


def is_results_folder(path: PathType) -> bool:
    """A results folder holds ``plans.json``; a dataset folder holds ``dataset.json`` and images."""
    return (Path(path) / "plans.json").is_file()


def default_results_folder(dataset_dir: PathType) -> Path:
    """``./<dataset folder name>``: where ``autounet plan DATASET`` writes its plans by default."""
    return Path(Path(dataset_dir).resolve().name)


def training_cases_per_fold(num_cases: int) -> int:
    """Cases a cross-validation fold trains on: four fifths of them (five folds).

    Examples
    --------
    >>> training_cases_per_fold(208)
    166
    """
    from autounet.trainers.splits import NUM_FOLDS

    return num_cases - -(-num_cases // NUM_FOLDS) if num_cases >= NUM_FOLDS else max(num_cases - 1, 1)


def prepare_results(
    dataset_dir: PathType,
    results_dir: PathType,
    configurations: Sequence[str],
    workers: int | None = None,
    progress: bool = True,
    budget_seconds: float | None = None,
    device: str = "auto",
    precision: str = "auto",
    started: float | None = None,
) -> Path:
    """Make ``results_dir`` ready to train ``configurations`` of the dataset in ``dataset_dir``.

    Computes the fingerprint and the plans when ``plans.json`` is missing (nnU-Net's default rules) and
    preprocesses the configurations (cases already done and unchanged are skipped, so this is cheap when
    everything exists). A copy of ``dataset.json`` is kept in the results folder. With ``budget_seconds``, plans
    made here are compute-aware: after preprocessing, :func:`~autounet.trainers.step_timing.plan_for_budget` picks
    the network width (and batch) of each configuration for what is left of the budget on ``device`` (existing
    plans are left as they are). The plans are written last, so they are complete whenever they exist.

    Parameters
    ----------
    budget_seconds : float, optional
        Wall-clock budget of the whole ``autounet train`` (preparation, training, final validation).
    started : float, optional
        ``time.monotonic()`` when the budget started (default: when this function is called).

    Returns
    -------
    Path
        ``results_dir``.
    """
    from autounet.dataset import load_dataset
    from autounet.planners.plans import load_plans
    from autounet.preprocessing import preprocess_dataset

    started = time.monotonic() if started is None else started
    dataset_dir, results_dir = Path(dataset_dir), Path(results_dir)
    dataset = load_dataset(dataset_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    if (dataset_dir / "dataset.json").is_file() and not (results_dir / "dataset.json").is_file():
        shutil.copy2(dataset_dir / "dataset.json", results_dir / "dataset.json")
    plans_path = results_dir / "plans.json"
    new_plans = not plans_path.is_file()
    if new_plans:
        from autounet.fingerprint import compute_fingerprint
        from autounet.planners import plan_experiment

        logger.info("no plans in %s: computing the fingerprint and planning with the default rules", results_dir)
        fingerprint = compute_fingerprint(dataset, output=results_dir / "fingerprint.json", workers=workers, progress=progress)
        plans = plan_experiment(fingerprint)
    else:
        plans = load_plans(plans_path)
        if budget_seconds is not None and not any(
            c.training.planned_for_budget for n, c in plans.configurations.items() if n in configurations
        ):
            logger.warning(
                "%s was not planned for a time budget; only the schedule is fitted to it. Plan again with a budget "
                '("autounet plan DATASET --budget ...", or delete plans.json) to choose the network for it',
                plans_path,
            )
    missing = [name for name in configurations if name not in plans.configurations]
    if missing:
        raise MissingStageError(
            f"{plans_path} has no configuration {', '.join(missing)} (planned: {', '.join(plans.configurations)}); "
            f'plan it with "autounet plan {dataset_dir} -o {plans_path} --configurations {" ".join(missing)}"'
        )
    # Compute-aware planning changes widths and batches only, never the preprocessed arrays: preprocess first, so
    # the budget left for training is known when the network is chosen.
    preprocess_dataset(dataset, plans, list(configurations), results_dir / "preprocessed", workers=workers, progress=progress)
    if new_plans:
        if budget_seconds is not None:
            from autounet.trainers.step_timing import plan_for_budget

            cases = training_cases_per_fold(len(dataset.training))
            for name in configurations:
                remaining = budget_seconds - (time.monotonic() - started)
                plans, choice = plan_for_budget(
                    plans, name, max(remaining, 1.0), device=device, precision=precision, num_training_cases=cases
                )
                logger.info("%s for the %.1f min left of the budget: %s", name, remaining / 60, choice.reason)
        plans.save(plans_path)
    return results_dir
