"""Measure training iterations of candidate networks on this device, and plan a configuration for a time budget.

The compute-aware mode: :func:`plan_for_budget` times a few training steps of the configuration's network at several
widths (narrowest first, on random data of the patch size) plus the data pipeline, and lets the pure rule
:func:`autounet.trainers.budget.choose_for_budget` pick the width that fits the budget. It returns new plans; nothing
is written. ``autounet plan --budget`` and ``autounet train DATASET ... --budget`` use it.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from autounet.planners.plans import ConfigurationPlan, Plans
from autounet.trainers import components
from autounet.trainers.budget import (
    CANDIDATE_BASE_FEATURES,
    TARGET_ITERATIONS,
    BudgetCandidate,
    BudgetChoice,
    augmentation_scale_for,
    choose_for_budget,
    features_for_base,
)
from autounet.trainers.config import TrainingConfig
from autounet.trainers.data.augmentation import plan_augmentation
from autounet.trainers.data.loader import PatchLoader
from autounet.trainers.data.pipeline import default_num_workers
from autounet.trainers.devices import resolve_device, resolve_precision
from autounet.trainers.trainer import Trainer

logger = logging.getLogger(__name__)

#: Share of a budget set aside for setup and the final validation when choosing a width (the trainer later fits
#: the exact number of iterations from its own measurements).
RESERVED_FRACTION = 0.08
#: Untimed and timed steps per candidate; the first steps of a network are slow while kernels are chosen.
WARMUP_STEPS, TIMED_STEPS = 2, 3


def measure_step_seconds(
    configuration: ConfigurationPlan,
    plans: Plans,
    device: torch.device,
    dtype: torch.dtype,
    steps: int = TIMED_STEPS,
    warmup: int = WARMUP_STEPS,
) -> float:
    """Median time of one training step (forward, deep-supervision loss, backward, SGD) on random data.

    Parameters
    ----------
    configuration : ConfigurationPlan
        Network, batch and patch to time.
    plans : Plans
        For the number of input channels and classes.
    device : torch.device
    dtype : torch.dtype
        Autocast dtype (float32 = none).
    steps, warmup : int
        Timed and untimed steps.

    Returns
    -------
    float
        Seconds per step.
    """
    torch.manual_seed(0)
    memory_format = components.cpu_memory_format(configuration, device)
    network = components.make_network(configuration, plans, True).to(device=device, memory_format=memory_format)  # type: ignore[call-overload]
    loss = components.make_loss(configuration.loss, {}, configuration, True)
    batch_shape = (configuration.batch_size, len(plans.channel_names), *configuration.patch_size)
    generator = np.random.default_rng(0)
    batch = {
        "data": generator.standard_normal(batch_shape, dtype=np.float32),
        "seg": generator.integers(0, plans.num_classes, (configuration.batch_size, 1, *configuration.patch_size), dtype=np.int16),
    }
    trainer = Trainer(
        network,
        loss,
        iter(()),
        None,
        TrainingConfig(progress=False),
        device,
        dtype,
        {},
        components.supervision_scales(configuration, True),
        memory_format=memory_format,
    )
    for _ in range(warmup):
        trainer.train_step(batch)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_batch_seconds(configuration: ConfigurationPlan, plans: Plans, batches: int = 4) -> float:
    """Time to make one augmented batch in this process, on random images of the median image size."""
    shape = tuple(max(int(round(s)), 1) for s in configuration.median_image_size_in_voxels) or configuration.patch_size
    if len(shape) == 2:  # 2d configuration: cases are (z, y, x) volumes of the in-plane shape
        shape = (4, *shape)
    generator = np.random.default_rng(0)
    data = generator.standard_normal((len(plans.channel_names), *shape), dtype=np.float32)
    seg = np.zeros((1, *shape), np.int8)
    center = tuple(slice(s // 3, max(s // 3 + 1, 2 * s // 3)) for s in shape)
    seg[0][center] = 1

    class _Synthetic:
        case_ids = ("synthetic",)

        def load(self, case_id: str, mmap: bool = True) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
            return data, seg, {}

        def foreground_locations(self, case_id: str) -> dict[int, np.ndarray]:
            return {1: np.argwhere(seg[0] == 1)}

        def properties(self, case_id: str) -> dict[str, Any]:
            return {}

    mask = tuple(i for i, n in enumerate(configuration.normalization) if n.use_mask)
    loader = PatchLoader(_Synthetic(), ["synthetic"], configuration.batch_size, plan_augmentation(configuration.patch_size, True, mask))
    loader.batch(0)
    start = time.perf_counter()
    for iteration in range(1, batches + 1):
        loader.batch(iteration)
    return (time.perf_counter() - start) / batches


def measure_candidates(
    plans: Plans,
    configuration_name: str,
    budget_seconds: float,
    base_features: Sequence[int] = CANDIDATE_BASE_FEATURES,
    device: str = "auto",
    precision: str = "auto",
    num_workers: int | None = None,
    config: TrainingConfig | None = None,
) -> list[BudgetCandidate]:
    """Time one iteration of the configuration's network at each width, narrowest first.

    The time of an iteration is the step, plus the batch time when batches are made in-process (the default on
    CPUs with few cores), plus the validation batches' share (forward only, about a third of a step each). Wider
    networks are not measured once one cannot reach :data:`~autounet.trainers.budget.TARGET_ITERATIONS` in the
    budget (a wider one would be slower still).
    """
    config = config or TrainingConfig()
    torch_device = resolve_device(device)
    dtype = resolve_precision(precision, torch_device)
    configuration = plans.configuration(configuration_name)
    cap = max(configuration.features_per_stage)
    workers = num_workers if num_workers is not None else default_num_workers(torch_device.type, _cores())
    batch_seconds = measure_batch_seconds(configuration, plans) if workers == 0 else 0.0
    validation_share = config.validation_iterations / (3 * config.iterations_per_epoch)
    available = budget_seconds * (1 - RESERVED_FRACTION)
    candidates: list[BudgetCandidate] = []
    threads = torch.get_num_threads()
    try:
        for base in sorted(set(base_features)):
            variant = configuration.replace(features_per_stage=features_for_base(base, configuration.n_stages, cap))
            if not candidates and torch_device.type == "cpu" and threads > 1:
                # As the trainer does (ThreadTuner): on a busy machine one thread can be faster than all of them.
                timed = {}
                for count in (threads, 1):
                    torch.set_num_threads(count)
                    timed[count] = measure_step_seconds(variant, plans, torch_device, dtype)
                torch.set_num_threads(min(timed, key=lambda count: timed[count]))
                step = min(timed.values())
                logger.info("CPU threads for the measurement: %s s per step", timed)
            else:
                step = measure_step_seconds(variant, plans, torch_device, dtype)
            seconds = step * (1 + validation_share) + batch_seconds
            candidates.append(BudgetCandidate(base, configuration.batch_size, configuration.patch_size, seconds))
            logger.info("base features %d: step %.3f s, data %.3f s -> %.3f s per iteration", base, step, batch_seconds, seconds)
            if available / seconds < TARGET_ITERATIONS:
                break
    finally:
        torch.set_num_threads(threads)
    return candidates


def plan_for_budget(
    plans: Plans,
    configuration_name: str,
    budget_seconds: float,
    device: str = "auto",
    precision: str = "auto",
    num_workers: int | None = None,
    base_features: Sequence[int] = CANDIDATE_BASE_FEATURES,
    num_training_cases: int | None = None,
) -> tuple[Plans, BudgetChoice]:
    """Plans whose ``configuration_name`` trains the network width that fits ``budget_seconds`` on this device.

    Parameters
    ----------
    num_training_cases : int, optional
        Cases a fold trains on; with it the augmentation is scaled to the run's length
        (:func:`~autounet.trainers.budget.augmentation_scale_for`), without it augmentation stays nnU-Net's.

    Returns
    -------
    plans : Plans
        A copy with the chosen ``features_per_stage`` and, in the configuration's ``training`` entry,
        ``augmentation_scale`` (read by the trainer) and the budget, the measured candidates and the choice (the
        record of why).
    choice : BudgetChoice
    """
    started = time.monotonic()
    candidates = measure_candidates(plans, configuration_name, budget_seconds, base_features, device, precision, num_workers)
    choice = choose_for_budget(candidates, budget_seconds, budget_seconds * RESERVED_FRACTION)
    configuration = plans.configuration(configuration_name)
    features = features_for_base(choice.candidate.base_features, configuration.n_stages, max(configuration.features_per_stage))
    device_name = str(resolve_device(device))
    training = {
        **configuration.training,
        "budget_seconds": budget_seconds,
        "budget_device": device_name,
        "budget_choice": choice.reason,
        "budget_candidates": [
            {"base_features": c.base_features, "batch_size": c.batch_size, "seconds_per_iteration": round(c.seconds_per_iteration, 4)}
            for c in candidates
        ],
        "budget_iterations": choice.iterations,
        "budget_measurement_seconds": round(time.monotonic() - started, 1),
    }
    if num_training_cases is not None:
        training["augmentation_scale"] = augmentation_scale_for(choice.iterations, choice.candidate.batch_size, num_training_cases)
    changed = configuration.replace(features_per_stage=features, training=training)
    explanation = f"compute-aware ({budget_seconds / 60:.0f} min on {device_name}): {choice.reason}"
    explanations = {**plans.explanations, configuration_name: [*plans.explanations.get(configuration_name, []), explanation]}
    new_plans = replace(
        plans,
        configurations={**plans.configurations, configuration_name: changed},
        explanations=explanations,
        notes=(*plans.notes, f"{configuration_name}: {explanation}"),
    )
    return new_plans, choice


def _cores() -> int:
    from autounet.parallel import default_workers

    return default_workers()
