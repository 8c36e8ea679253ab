"""Pure rule that fits training to a wall-clock budget, from measured step times (no I/O, no clocks, no torch).

:func:`fit_iterations_to_budget` - how many iterations fit in what is left of a budget (used while training). The
choice of network width and batch for a budget (compute-aware planning) is a planner rule,
:func:`autounet.planners.time_budget.choose_for_budget`; its names are re-exported here.
"""

from __future__ import annotations

import math

from autounet.planners.time_budget import (  # noqa: F401  re-exported: the planner's compute-aware rules
    CANDIDATE_BASE_FEATURES,
    FULL_AUGMENTATION_PASSES,
    SAFETY_FRACTION,
    TARGET_ITERATIONS,
    BudgetCandidate,
    BudgetChoice,
    augmentation_scale_for,
    choose_for_budget,
    features_for_base,
)

#: Never plan fewer iterations than this: below it the poly schedule is too short to train anything.
MIN_ITERATIONS = 10


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
