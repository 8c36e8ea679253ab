"""Pure rules that fit training to a wall-clock budget, from measured step times (no I/O, no clocks, no torch).

Two rules:

- :func:`fit_iterations_to_budget` - how many iterations fit in what is left of a budget (used while training).
- :func:`choose_for_budget` - which network width (and batch) to train for a budget, given the measured time per
  iteration of each candidate (used by compute-aware planning, ``autounet plan --budget``; the measurement is
  :func:`autounet.trainers.step_timing.measure_candidates`).

Both are plain functions of numbers so that the planner can call them and tests can check them by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Share of the budget kept free for what cannot be measured in advance (checkpoint writes, plots, the machine
#: being slower during the final validation than during the measurement).
SAFETY_FRACTION = 0.03
#: Never plan fewer iterations than this: below it the poly schedule is too short to train anything.
MIN_ITERATIONS = 10
#: Iterations a network needs before more width pays off more than more iterations: on Hippocampus (2 CPU cores,
#: docs/benchmarks.md "Hippocampus in 20 minutes") nnU-Net's 100 iterations failed (Dice 0.00 / 0.60), 400 reached
#: 0.85 / 0.84, and the curve flattens past about 1000.
TARGET_ITERATIONS = 1000
#: Base feature counts tried by compute-aware planning, widest first (nnU-Net plans 32).
CANDIDATE_BASE_FEATURES = (32, 24, 16, 12, 8)
#: Passes over the training cases (iterations x batch / cases) from which nnU-Net's full augmentation is used;
#: below, the probability of every random transform but mirroring is scaled by passes / this. On Hippocampus
#: (docs/benchmarks.md, "Hippocampus in 20 minutes") 1000 iterations of batch 7 over 166 cases (42 passes) reached
#: a higher validation Dice without augmentation than with it: augmentation regularises long runs but slows a short
#: one down. nnU-Net's full schedule makes thousands of passes.
FULL_AUGMENTATION_PASSES = 1000


def fit_iterations_to_budget(
    budget_seconds: float,
    elapsed_seconds: float,
    seconds_per_iteration: float,
    reserved_seconds: float,
    iterations_done: int,
    max_iterations: int,
) -> int:
    """Total iterations of the schedule so that training plus the reserved work ends within the budget.

    Parameters
    ----------
    budget_seconds : float
        Wall-clock budget of the whole fold.
    elapsed_seconds : float
        Already used (setup, the iterations done so far, their validation).
    seconds_per_iteration : float
        Measured time per iteration, including its share of per-epoch validation and logging.
    reserved_seconds : float
        Work still to come after training (final validation: prediction, export, evaluation).
    iterations_done : int
        Iterations already run; the result is never below this.
    max_iterations : int
        Upper bound (``epochs * iterations_per_epoch``).

    Returns
    -------
    int
        ``iterations_done + floor(remaining / seconds_per_iteration)``, clipped to ``[iterations_done,
        max_iterations]`` and at least :data:`MIN_ITERATIONS` unless the budget is already spent. The remaining
        time is the budget minus the elapsed and reserved time and a :data:`SAFETY_FRACTION` margin.

    Examples
    --------
    >>> fit_iterations_to_budget(1200, 60, 1.0, 100, 10, 250_000)
    1014
    >>> fit_iterations_to_budget(1200, 1190, 1.0, 100, 500, 250_000)  # over budget: stop now
    500
    >>> fit_iterations_to_budget(1200, 60, 1.0, 100, 10, 300)
    300
    """
    if seconds_per_iteration <= 0:
        raise ValueError(f"seconds_per_iteration must be positive, got {seconds_per_iteration}")
    remaining = budget_seconds * (1 - SAFETY_FRACTION) - elapsed_seconds - reserved_seconds
    more = max(0, math.floor(remaining / seconds_per_iteration))
    total = iterations_done + more
    if iterations_done < MIN_ITERATIONS and more > 0:
        total = max(total, MIN_ITERATIONS)
    return int(min(max(total, iterations_done), max_iterations))


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


def choose_for_budget(
    candidates: Sequence[BudgetCandidate],
    budget_seconds: float,
    reserved_seconds: float = 0.0,
    target_iterations: int = TARGET_ITERATIONS,
) -> BudgetChoice:
    """The widest network that still gets ``target_iterations`` iterations in the budget; else the fastest.

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

    Notes
    -----
    Quality under a short budget is limited first by the number of optimiser steps, then by capacity. So among the
    candidates that reach ``target_iterations``, the one with the most compute per step (widest, then largest
    batch) wins; when none reaches it, the one with the most iterations wins (ties: the wider). Iterations are
    ``floor((budget * (1 - SAFETY_FRACTION) - reserved) / seconds_per_iteration)``.

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
    available = budget_seconds * (1 - SAFETY_FRACTION) - reserved_seconds

    def iterations(candidate: BudgetCandidate) -> int:
        return max(0, math.floor(available / candidate.seconds_per_iteration))

    def compute(candidate: BudgetCandidate) -> tuple[float, int, int]:
        return (candidate.seconds_per_iteration, candidate.base_features, candidate.batch_size)

    reaching = [c for c in candidates if iterations(c) >= target_iterations]
    if reaching:
        best = max(reaching, key=compute)
        reason = (
            f"widest network reaching {target_iterations} iterations: {best.base_features} base features, batch "
            f"{best.batch_size}, {best.seconds_per_iteration:.2f} s per iteration -> {iterations(best)} iterations"
        )
    else:
        best = max(candidates, key=lambda c: (iterations(c), c.base_features, c.batch_size))
        reason = (
            f"no network reaches {target_iterations} iterations in {budget_seconds:.0f} s; the fastest gets the most: "
            f"{best.base_features} base features, {best.seconds_per_iteration:.2f} s per iteration -> "
            f"{iterations(best)} iterations"
        )
    return BudgetChoice(best, iterations(best), reason)


def augmentation_scale_for(iterations: int, batch_size: int, num_training_cases: int) -> float:
    """Augmentation probability scale for a run of ``iterations``: ``min(1, passes / FULL_AUGMENTATION_PASSES)``.

    Parameters
    ----------
    iterations, batch_size : int
        Length of the run and samples per iteration.
    num_training_cases : int
        Cases the run trains on.

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
    return round(min(1.0, passes / FULL_AUGMENTATION_PASSES), 3)


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
