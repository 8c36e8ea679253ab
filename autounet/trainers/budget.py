"""Budget enforcement: the :class:`FitToBudget` callback fits a run's schedule to a wall-clock budget from the
measured speed of the run itself, with the pure rule :func:`fit_iterations_to_budget` (no I/O, no clocks, no torch).

Choosing the network width and batch for a budget before training (compute-aware planning) is planning, not
enforcement: the rule is :func:`autounet.planners.time_budget.choose_for_budget`, the measurement
:class:`autounet.trainers.step_timing.IterationTimer` and the sequence :mod:`autounet.pipeline.budget`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from autounet.planners.time_budget import SAFETY_FRACTION
from autounet.trainers.callbacks import Callback
from autounet.trainers.distributed import broadcast_from_writer

if TYPE_CHECKING:
    from autounet.trainers.trainer import Trainer

logger = logging.getLogger(__name__)

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


class FitToBudget(Callback):
    """Fit the schedule's total iterations to a wall-clock budget, from the measured speed of this run.

    After ``warmup`` iterations (the first steps are slow while kernels are chosen) it times ``measure`` iterations
    and sets ``trainer.state.total_iterations`` with :func:`fit_iterations_to_budget`.
    It re-fits every ``refit_seconds`` from the speed since the previous fit, so a machine that gets slower or faster
    still ends on time, and adds each iteration's share of the per-epoch work (validation batches, checkpoints,
    plot) as measured in the last epoch. When even one more iteration would overrun, it stops the run. The poly
    schedule always runs over the current total.

    Parameters
    ----------
    budget_seconds : float
        Budget of the whole fold (``trainer.state.elapsed_seconds`` counts setup and earlier sessions).
    reserve_seconds : callable returning float, or float
        Time to keep for the work after training (final validation); a callable is called once, after the warm-up.
    """

    def __init__(
        self, budget_seconds: float, reserve_seconds: Any, warmup: int = 3, measure: int = 10, refit_seconds: float = 60.0
    ) -> None:
        self.budget_seconds = budget_seconds
        self._reserve_source = reserve_seconds
        self.reserve: float | None = None
        self.warmup = warmup
        self.measure = measure
        self.refit_seconds = refit_seconds
        self._start_iteration = 0
        self._window: tuple[int, float] | None = None
        self._rate: float | None = None  # seconds per training iteration, recent
        self._epoch_overhead: float | None = None  # seconds of per-epoch work (validation, checkpoints) per epoch
        self._last_iteration_end = 0.0

    def _overhead_per_iteration(self, trainer: Trainer) -> float:
        assert self._rate is not None
        if self._epoch_overhead is not None:
            return self._epoch_overhead / trainer.config.iterations_per_epoch
        # Before the first epoch ends: validation batches run forward only, about a third of a step each.
        return self._rate * trainer.config.validation_iterations / (3 * trainer.config.iterations_per_epoch)

    def _fit(self, trainer: Trainer, report: bool) -> None:
        if self.reserve is None:
            self.reserve = float(self._reserve_source() if callable(self._reserve_source) else self._reserve_source)
        assert self._rate is not None
        per_iteration = self._rate + self._overhead_per_iteration(trainer)
        # The epoch in progress still has its validation to run once training stops.
        pending = self._epoch_overhead if self._epoch_overhead is not None else self._rate * trainer.config.validation_iterations / 3
        total = fit_iterations_to_budget(
            self.budget_seconds,
            trainer.state.elapsed_seconds,
            per_iteration,
            self.reserve + pending,
            trainer.state.iteration,
            trainer.max_iterations,
        )
        # Every rank of a multi-GPU run must run the same number of iterations: rank 0 decides.
        total = broadcast_from_writer(total)
        if report and total != trainer.state.total_iterations:
            logger.info(
                "budget %.0f s: %.3f s per iteration (%.3f s of it per-epoch work), %.0f s reserved -> %d iterations",
                self.budget_seconds, per_iteration, per_iteration - self._rate, self.reserve + pending, total,
            )
        trainer.state.total_iterations = total
        if total <= trainer.state.iteration:
            trainer.request_stop(f"wall-clock budget of {self.budget_seconds:.0f} s reached")

    def on_train_start(self, trainer: Trainer) -> None:
        self._start_iteration = trainer.state.iteration
        self._window = None

    def on_epoch_start(self, trainer: Trainer) -> None:
        # Time spent between epochs (validation, checkpoints, plot) must not count as iteration time.
        if self._window is not None:
            self._window = (trainer.state.iteration, trainer.state.elapsed_seconds)

    def on_iteration_end(self, trainer: Trainer, loss: float) -> None:
        self._last_iteration_end = time.monotonic()
        done = trainer.state.iteration - self._start_iteration
        now = trainer.state.elapsed_seconds
        if done == self.warmup:
            self._window = (trainer.state.iteration, now)
            return
        if self._window is None:
            return
        iterations, seconds = trainer.state.iteration - self._window[0], now - self._window[1]
        first_fit = self._rate is None and iterations >= self.measure
        refit = first_fit or (self._rate is not None and seconds >= self.refit_seconds and iterations >= 2)
        if refit:
            self._rate = seconds / iterations
            self._window = (trainer.state.iteration, now)
        if self._rate is not None:
            # Every iteration: stops the run as soon as one more iteration would not fit any more.
            self._fit(trainer, report=refit)

    def on_epoch_end(self, trainer: Trainer, record: Mapping[str, Any]) -> None:
        # Runs after the checkpoint, log and plot callbacks: everything since the last iteration is per-epoch work.
        if self._last_iteration_end:
            self._epoch_overhead = time.monotonic() - self._last_iteration_end
