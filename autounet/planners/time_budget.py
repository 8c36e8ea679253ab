"""Compute-aware planning: choose the network width (and batch) that a wall-clock training budget affords.

Rules (pure: numbers in, numbers out; no clock, no torch):

- :func:`choose_for_budget` - which measured candidate to train for a budget.
- :func:`augmentation_scale_for` - how much augmentation a run of that length wants.
- :func:`features_for_base` - features per stage for a base width.

and :func:`plan_for_time_budget`, which sequences them: it proposes candidates (the planned network at narrower
widths, narrowest first), asks a measuring callable supplied by the caller for each one's seconds per training
iteration on the device at hand, applies the rule and writes the choice, the measurements and the reasons into the
plans. The planners never time anything themselves: the trainers provide the callable
(:func:`autounet.trainers.step_timing.plan_for_budget`), so this module imports no torch. See docs/planning.md,
"Compute-aware planning".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from autounet.planners.plans import ConfigurationPlan, Plans
from autounet.planners.training_plan import MeasuredCandidate

#: Share of the budget kept free for what cannot be measured in advance (checkpoint writes, plots, the machine
#: being slower during the final validation than during the measurement).
SAFETY_FRACTION = 0.03
#: Iterations a network needs before more width pays off more than more iterations. Set from Hippocampus fold 0 on
#: 2 CPU cores, the headline's own data: issue 5 quoted nnU-Net at 100 iterations failing (Dice 0.00 / 0.60) and at
#: 400 reaching 0.85 / 0.84 (figures not reproduced by a script here), and in development runs (pseudo validation
#: Dice, not kept) a 16-wide U-Net with little augmentation reached 0.87 / 0.86 after 500 of 1000 iterations and did
#: not improve in the next 250. benchmarks/bench_budget_constants.py checks the value on other data (DRIVE, ISBI,
#: another Hippocampus fold) and keeps its runs as records (docs/benchmarks.md, "Budget planner constants").
TARGET_ITERATIONS = 1000
#: Base feature counts compute-aware planning may choose (nnU-Net plans 32); only those up to the planned base
#: width are tried, narrowest first.
CANDIDATE_BASE_FEATURES = (32, 24, 16, 12, 8)
#: Passes over the training cases (iterations x batch / cases) from which nnU-Net's full augmentation is used;
#: below, the probability of every random transform but mirroring is scaled by passes / this. On Hippocampus, in
#: development runs (pseudo validation Dice, not kept as a benchmark), 16-wide U-Nets over 166 cases reached 0.83 /
#: 0.73 after 250 iterations without augmentation and 0.54 / 0.00 with nnU-Net's: augmentation regularises long runs
#: but slows a short one down. nnU-Net's full schedule makes thousands of passes. Checked on other data by
#: benchmarks/bench_budget_constants.py, like TARGET_ITERATIONS.
FULL_AUGMENTATION_PASSES = 1000
#: Share of the budget assumed for setup and the final validation while choosing (the trainer later fits the exact
#: number of iterations from its own measurements and its estimate of the final validation).
RESERVED_FRACTION = 0.08
#: Smallest batch a compute-aware plan uses (nnU-Net's minimum batch size).
MIN_BATCH_SIZE = 2

#: ``measure(configuration) -> seconds per training iteration`` of that configuration on the device at hand.
MeasureFunction = Callable[[ConfigurationPlan], float]


@dataclass(frozen=True)
class BudgetCandidate:
    """One network variant with its measured speed on the device at hand.

    Attributes
    ----------
    base_features : int
        Features of the first stage (doubling per stage up to the plans' cap).
    batch_size : int
    patch_size : tuple of int
    seconds_per_iteration : float
        Measured time of one training iteration (data, forward, backward, optimiser step), per-epoch validation
        share included.
    """

    base_features: int
    batch_size: int
    patch_size: tuple[int, ...]
    seconds_per_iteration: float


@dataclass(frozen=True)
class BudgetChoice:
    """The candidate compute-aware planning chose, the iterations it gets and why."""

    candidate: BudgetCandidate
    iterations: int
    reason: str


def iterations_in_budget(seconds_per_iteration: float, budget_seconds: float, reserved_seconds: float = 0.0) -> int:
    """Iterations of ``seconds_per_iteration`` that fit: ``floor((budget * (1 - SAFETY_FRACTION) - reserved) / s)``.

    Examples
    --------
    >>> iterations_in_budget(0.5, 1200, 96)
    2136
    >>> iterations_in_budget(2.0, 100, 200)
    0
    """
    if seconds_per_iteration <= 0:
        raise ValueError(f"seconds_per_iteration must be positive, got {seconds_per_iteration}")
    available = budget_seconds * (1 - SAFETY_FRACTION) - reserved_seconds
    return max(0, math.floor(available / seconds_per_iteration))


def choose_for_budget(
    candidates: Sequence[BudgetCandidate],
    budget_seconds: float,
    reserved_seconds: float = 0.0,
    target_iterations: int = TARGET_ITERATIONS,
) -> BudgetChoice:
    """The widest network that still gets ``target_iterations`` iterations in the budget; else the most iterations.

    Parameters
    ----------
    candidates : sequence of BudgetCandidate
        Measured variants (any order).
    budget_seconds : float
        Wall-clock budget of the training run.
    reserved_seconds : float
        Time the run needs besides iterations (setup, final validation).
    target_iterations : int
        Iterations below which more iterations help more than more width (:data:`TARGET_ITERATIONS`).

    Returns
    -------
    BudgetChoice

    Raises
    ------
    ValueError
        Without candidates or with a budget that is not positive.

    Notes
    -----
    Quality under a short budget is limited first by the number of optimiser steps, then by capacity. So among the
    candidates that reach ``target_iterations``, the one with the most compute per step (slowest, then widest, then
    largest batch) wins; when none reaches it, the one with the most iterations wins (ties: the wider, then the
    larger batch). Iterations are :func:`iterations_in_budget`.

    Examples
    --------
    >>> measured = [BudgetCandidate(32, 7, (40, 56, 40), 2.2), BudgetCandidate(16, 7, (40, 56, 40), 0.8),
    ...             BudgetCandidate(8, 7, (40, 56, 40), 0.45)]
    >>> choice = choose_for_budget(measured, 1200, reserved_seconds=60)
    >>> choice.candidate.base_features, choice.iterations
    (16, 1380)
    >>> choose_for_budget(measured, 4 * 3600).candidate.base_features  # a long budget affords the widest
    32
    >>> choose_for_budget(measured, 300).candidate.base_features  # too short for any: the most iterations
    8
    """
    if not candidates:
        raise ValueError("no candidates to choose from; measure at least one network")
    if budget_seconds <= 0:
        raise ValueError(f"budget must be positive, got {budget_seconds} s")

    def iterations(candidate: BudgetCandidate) -> int:
        return iterations_in_budget(candidate.seconds_per_iteration, budget_seconds, reserved_seconds)

    reaching = [c for c in candidates if iterations(c) >= target_iterations]
    if reaching:
        best = max(reaching, key=lambda c: (c.seconds_per_iteration, c.base_features, c.batch_size))
        reason = (
            f"the widest network reaching {target_iterations} iterations: {best.base_features} base features, batch "
            f"{best.batch_size}, {best.seconds_per_iteration:.2f} s per iteration -> {iterations(best)} iterations"
        )
    else:
        best = max(candidates, key=lambda c: (iterations(c), c.base_features, c.batch_size))
        reason = (
            f"no candidate reaches {target_iterations} iterations in {budget_seconds:.0f} s; the one with the most "
            f"iterations: {best.base_features} base features, batch {best.batch_size}, "
            f"{best.seconds_per_iteration:.2f} s per iteration -> {iterations(best)} iterations"
        )
    return BudgetChoice(best, iterations(best), reason)


def augmentation_scale_for(
    iterations: int, batch_size: int, num_training_cases: int, full_augmentation_passes: int = FULL_AUGMENTATION_PASSES
) -> float:
    """Augmentation probability scale for a run of ``iterations``: ``min(1, passes / full_augmentation_passes)``.

    Parameters
    ----------
    iterations, batch_size : int
        Length of the run and samples per iteration.
    num_training_cases : int
        Cases the run trains on.
    full_augmentation_passes : int
        Passes from which nnU-Net's full augmentation is used (:data:`FULL_AUGMENTATION_PASSES`; other values only
        for ``benchmarks/bench_budget_constants.py``, which checks the constant).

    Returns
    -------
    float
        Within [0, 1], rounded to 3 decimals (0 means mirroring only).

    Examples
    --------
    >>> augmentation_scale_for(1000, 7, 166)  # 42 passes: a short budget
    0.042
    >>> augmentation_scale_for(250_000, 7, 166)  # nnU-Net's full schedule
    1.0
    """
    passes = iterations * batch_size / max(num_training_cases, 1)
    return round(min(1.0, passes / full_augmentation_passes), 3)


def features_for_base(base_features: int, n_stages: int, cap: int) -> tuple[int, ...]:
    """Features per stage: ``base`` doubling per stage, capped (nnU-Net: base 32, cap 320 in 3D, 512 in 2D).

    Examples
    --------
    >>> features_for_base(16, 5, 320)
    (16, 32, 64, 128, 256)
    >>> features_for_base(32, 6, 320)
    (32, 64, 128, 256, 320, 320)
    """
    return tuple(min(base_features * 2**stage, cap) for stage in range(n_stages))


def candidate_widths(planned_base: int, base_features: Sequence[int] = CANDIDATE_BASE_FEATURES) -> tuple[int, ...]:
    """Base widths to try for a network planned with ``planned_base``: those not wider than it, narrowest first.

    Examples
    --------
    >>> candidate_widths(32)
    (8, 12, 16, 24, 32)
    >>> candidate_widths(4)
    (4,)
    """
    widths = sorted({b for b in base_features if b <= planned_base})
    return tuple(widths) if widths else (planned_base,)


def plan_for_time_budget(
    plans: Plans,
    configuration_name: str,
    budget_seconds: float,
    measure: MeasureFunction,
    *,
    num_training_cases: int | None = None,
    reserved_seconds: float | None = None,
    device_name: str = "this device",
    base_features: Sequence[int] = CANDIDATE_BASE_FEATURES,
    target_iterations: int = TARGET_ITERATIONS,
    full_augmentation_passes: int = FULL_AUGMENTATION_PASSES,
) -> tuple[Plans, BudgetChoice]:
    """Plans whose ``configuration_name`` trains the width (and batch) ``budget_seconds`` affords on a device.

    Parameters
    ----------
    plans : Plans
        Plans made by the default rules (or by hand).
    configuration_name : str
    budget_seconds : float
        Wall-clock budget of one fold's training, final validation included.
    measure : callable
        ``measure(configuration_plan) -> seconds per training iteration`` on the device the run will use.
    num_training_cases : int, optional
        Cases a fold trains on; with it the augmentation is scaled to the run's length
        (:func:`augmentation_scale_for`), without it augmentation stays nnU-Net's.
    reserved_seconds : float, optional
        Time for setup and the final validation (default :data:`RESERVED_FRACTION` of the budget).
    device_name : str
        Recorded in the plans and the explanation.
    base_features : sequence of int
        Widths that may be tried (:func:`candidate_widths`).
    target_iterations : int
        See :func:`choose_for_budget`.
    full_augmentation_passes : int
        See :func:`augmentation_scale_for`.

    Returns
    -------
    plans : Plans
        A copy with the chosen ``features_per_stage`` and ``batch_size`` and, in the configuration's ``training``
        entry, ``augmentation_scale`` (read by the trainer), the budget, the measured candidates, the number of
        iterations planned and the reason; an explanation sentence and a note say the same in words.
    choice : BudgetChoice

    Notes
    -----
    Widths are measured narrowest first at the planned batch and patch; measuring stops at the first width that
    cannot reach ``target_iterations`` (a wider one would be slower still). When even the narrowest width cannot
    reach it, the batch is halved (down to :data:`MIN_BATCH_SIZE`) and measured again, as long as that still
    lets more iterations fit. The patch is never changed: it is what the planner chose to see enough context.
    """
    if budget_seconds <= 0:
        raise ValueError(f"budget must be positive, got {budget_seconds} s")
    configuration = plans.configuration(configuration_name)
    reserved = budget_seconds * RESERVED_FRACTION if reserved_seconds is None else reserved_seconds
    cap = max(configuration.features_per_stage)

    def variant(base: int, batch: int) -> ConfigurationPlan:
        return configuration.replace(
            features_per_stage=features_for_base(base, configuration.n_stages, cap), batch_size=batch
        )

    def measured(base: int, batch: int) -> BudgetCandidate:
        seconds = float(measure(variant(base, batch)))
        return BudgetCandidate(base, batch, tuple(configuration.patch_size), seconds)

    def reaches(candidate: BudgetCandidate) -> bool:
        return iterations_in_budget(candidate.seconds_per_iteration, budget_seconds, reserved) >= target_iterations

    candidates: list[BudgetCandidate] = []
    widths = candidate_widths(configuration.features_per_stage[0], base_features)
    for base in widths:
        candidates.append(measured(base, configuration.batch_size))
        if not reaches(candidates[-1]):
            break
    if len(candidates) == 1 and not reaches(candidates[0]):
        # Even the narrowest network is short of iterations: smaller batches give it more of them.
        batch = configuration.batch_size
        while batch > MIN_BATCH_SIZE:
            batch = max(MIN_BATCH_SIZE, batch // 2)
            smaller = measured(widths[0], batch)
            if smaller.seconds_per_iteration >= candidates[-1].seconds_per_iteration:
                break
            candidates.append(smaller)
            if reaches(smaller):
                break
    choice = choose_for_budget(candidates, budget_seconds, reserved, target_iterations)
    recorded = _record_choice(plans, configuration_name, choice, candidates, budget_seconds, device_name,
                              num_training_cases, full_augmentation_passes)
    return recorded, choice


def _record_choice(
    plans: Plans,
    configuration_name: str,
    choice: BudgetChoice,
    candidates: Sequence[BudgetCandidate],
    budget_seconds: float,
    device_name: str,
    num_training_cases: int | None,
    full_augmentation_passes: int = FULL_AUGMENTATION_PASSES,
) -> Plans:
    configuration = plans.configuration(configuration_name)
    chosen = choice.candidate
    features = features_for_base(chosen.base_features, configuration.n_stages, max(configuration.features_per_stage))
    training = replace(
        configuration.training,
        budget_seconds=budget_seconds,
        budget_device=device_name,
        budget_choice=choice.reason,
        budget_candidates=tuple(
            MeasuredCandidate(c.base_features, c.batch_size, round(c.seconds_per_iteration, 4)) for c in candidates
        ),
        budget_iterations=choice.iterations,
    )
    if num_training_cases is not None:
        training = replace(
            training, augmentation_scale=augmentation_scale_for(choice.iterations, chosen.batch_size, num_training_cases,
                                                       full_augmentation_passes)
        )
    changed = configuration.replace(features_per_stage=features, batch_size=chosen.batch_size, training=training)
    measured = ", ".join(
        f"{c.base_features} wide batch {c.batch_size}: {c.seconds_per_iteration:.2f} s/it" for c in candidates
    )
    sentences = [
        f"compute-aware for {budget_seconds / 60:.1f} min on {device_name}: measured {measured}; chose {choice.reason}"
        f" -> features {list(features)}",
    ]
    if training.augmentation_scale is not None:
        sentences.append(
            f"augmentation probabilities x{training.augmentation_scale:g}: {choice.iterations} iterations of "
            f"{chosen.batch_size} samples are {choice.iterations * chosen.batch_size / max(num_training_cases or 1, 1):.0f} "
            f"passes over {num_training_cases} cases (full augmentation from {full_augmentation_passes} passes)"
        )
    explanations = {**plans.explanations, configuration_name: [*plans.explanations.get(configuration_name, []), *sentences]}
    return replace(
        plans,
        configurations={**plans.configurations, configuration_name: changed},
        explanations=explanations,
        notes=(*plans.notes, f"{configuration_name}: {sentences[0]}"),
    )
