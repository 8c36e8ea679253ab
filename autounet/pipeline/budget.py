"""Budget planning: how a run's wall-clock budget is shared, and compute-aware plans for the share of one fold.

:func:`plan_for_budget` times candidate networks on this device (:class:`autounet.trainers.step_timing.IterationTimer`)
and lets the planner's pure rule (:func:`autounet.planners.time_budget.plan_for_time_budget`) choose the width and
batch; :func:`budget_per_fold` is how much of a budget one fold gets. Enforcing the budget while training is the
trainer's :class:`~autounet.trainers.budget.FitToBudget` callback. ``autounet plan --budget``, ``autounet train
DATASET ... --budget`` and ``autounet run --budget`` plan through this module (via
:func:`autounet.pipeline.prepare.prepare_results` for the last two).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

import torch

from autounet.devices import resolve_device, resolve_precision
from autounet.parallel import default_workers
from autounet.planners.plans import Plans
from autounet.planners.time_budget import CANDIDATE_BASE_FEATURES, BudgetChoice, plan_for_time_budget
from autounet.trainers.config import TrainingConfig
from autounet.trainers.data.pipeline import default_num_workers
from autounet.trainers.splits import NUM_FOLDS
from autounet.trainers.step_timing import IterationTimer

logger = logging.getLogger(__name__)

#: Share of a run's budget kept back for model selection and post-processing after the last fold (``autounet run``;
#: a single ``autounet train`` has no selection and keeps nothing back).
SELECTION_RESERVE_FRACTION = 0.03
#: Below this many seconds per fold, training cannot learn anything useful: networks are planned for this much, and
#: the run says so up front.
MIN_USEFUL_FOLD_SECONDS = 60.0


def budget_per_fold(
    budget_seconds: float, elapsed_seconds: float, folds_left: int, reserve_fraction: float = SELECTION_RESERVE_FRACTION
) -> float:
    """Seconds for the next of ``folds_left`` folds: what is left of the budget, less the reserve, shared equally
    (recomputed before every fold, so time a fold saves goes to the next).

    Parameters
    ----------
    budget_seconds : float
        The whole run's budget.
    elapsed_seconds : float
        Already used.
    folds_left : int
        Folds still to train (all configurations).
    reserve_fraction : float
        Share of the budget kept for the work after the last fold (:data:`SELECTION_RESERVE_FRACTION`; 0 for a
        single fold).

    Examples
    --------
    >>> round(budget_per_fold(6000, 30, 5), 1)
    1158.0
    >>> budget_per_fold(100, 200, 2)
    -51.5
    >>> budget_per_fold(600, 60, 1, reserve_fraction=0.0)
    540.0
    """
    remaining = budget_seconds * (1 - reserve_fraction) - elapsed_seconds
    return remaining / max(folds_left, 1)


def training_cases_per_fold(num_cases: int) -> int:
    """Cases a cross-validation fold trains on: four fifths of them (five folds).

    Parameters
    ----------
    num_cases : int
        Training cases of the dataset.

    Examples
    --------
    >>> training_cases_per_fold(208)
    166
    """
    return num_cases - -(-num_cases // NUM_FOLDS) if num_cases >= NUM_FOLDS else max(num_cases - 1, 1)


def plan_for_budget(
    plans: Plans,
    configuration_name: str,
    budget_seconds: float,
    device: str = "auto",
    precision: str = "auto",
    num_workers: int | None = None,
    base_features: Sequence[int] = CANDIDATE_BASE_FEATURES,
    num_training_cases: int | None = None,
    config: TrainingConfig | None = None,
) -> tuple[Plans, BudgetChoice]:
    """Plans whose ``configuration_name`` trains the network width that fits ``budget_seconds`` on this device.

    Times candidates with an :class:`~autounet.trainers.step_timing.IterationTimer` and lets
    :func:`autounet.planners.time_budget.plan_for_time_budget` choose (the rule and what is recorded are
    documented there and in docs/planning.md, "Compute-aware planning").

    Parameters
    ----------
    plans : Plans
    configuration_name : str
    budget_seconds : float
        Wall-clock budget of one fold's training, final validation included.
    device, precision : str
        As for training (``"auto"``: the device and precision training will use).
    num_workers : int, optional
        Data workers training will use (default: per device).
    base_features : sequence of int
        Widths that may be tried.
    num_training_cases : int, optional
        Cases a fold trains on; with it the augmentation is scaled to the run's length
        (:func:`~autounet.planners.time_budget.augmentation_scale_for`), without it augmentation stays nnU-Net's.
    config : TrainingConfig, optional
        The training settings (validation batches per epoch).

    Returns
    -------
    plans : Plans
        A copy with the chosen width and batch and, in the configuration's ``training`` entry,
        ``augmentation_scale`` (read by the trainer), the budget, the measured candidates, the choice and the
        seconds the measurement took.
    choice : BudgetChoice
    """
    started = time.monotonic()
    config = config or TrainingConfig()
    torch_device = resolve_device(device)
    dtype = resolve_precision(precision, torch_device)
    workers = num_workers if num_workers is not None else default_num_workers(torch_device.type, default_workers())
    timer = IterationTimer(plans, torch_device, dtype, workers, config)
    threads = torch.get_num_threads()
    try:
        new_plans, choice = plan_for_time_budget(
            plans, configuration_name, budget_seconds, timer, num_training_cases=num_training_cases,
            device_name=f"{torch_device} ({str(dtype).replace('torch.', '')})", base_features=base_features,
        )
    finally:
        torch.set_num_threads(threads)
    configuration = new_plans.configuration(configuration_name)
    training = replace(configuration.training, budget_measurement_seconds=round(time.monotonic() - started, 1))
    changed = configuration.replace(training=training)
    return replace(new_plans, configurations={**new_plans.configurations, configuration_name: changed}), choice


def plan_configurations_for_budget(
    plans: Plans,
    budget_seconds: float,
    configurations: Sequence[str] | None = None,
    *,
    device: str = "auto",
    precision: str = "auto",
    num_training_cases: int | None = None,
) -> Plans:
    """:func:`plan_for_budget` for each of ``configurations`` (default: every planned one).

    Parameters
    ----------
    plans : Plans
    budget_seconds : float
        The budget of one fold of one configuration (:func:`budget_per_fold`).
    configurations : sequence of str, optional
        Configurations to plan for the budget.
    device, precision : str
        As for training.
    num_training_cases : int, optional
        Cases a fold trains on: scales the augmentation (see :func:`plan_for_budget`).
    """
    names = list(configurations) if configurations else list(plans.configurations)
    for name in names:
        plans, choice = plan_for_budget(
            plans, name, budget_seconds, device=device, precision=precision, num_training_cases=num_training_cases
        )
        logger.info("%s for %.1f min per fold: %s", name, budget_seconds / 60, choice.reason)
    return plans
