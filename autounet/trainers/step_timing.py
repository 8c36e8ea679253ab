"""Measure training iterations of candidate networks on this device, for compute-aware planning.

:class:`IterationTimer` times a few training steps of a candidate network (on random data of the patch size) plus
the data pipeline; :func:`autounet.pipeline.budget.plan_for_budget` gives it to the planner's
:func:`autounet.planners.time_budget.plan_for_time_budget`, whose pure rule picks the width and batch that fit the
budget.
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

import numpy as np
import torch

from autounet.planners.context_slices import expand_channel_indices
from autounet.planners.plans import ConfigurationPlan, Plans, network_input_channels
from autounet.trainers import components
from autounet.trainers.config import TrainingConfig
from autounet.trainers.data.augmentation import plan_augmentation
from autounet.trainers.data.loader import PatchLoader
from autounet.trainers.trainer import Trainer

logger = logging.getLogger(__name__)

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
    batch_shape = (configuration.batch_size, network_input_channels(plans, configuration), *configuration.patch_size)
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

    masked = [i for i, n in enumerate(configuration.normalization) if n.use_mask]
    mask = expand_channel_indices(masked, configuration.context_slices)
    loader = PatchLoader(_Synthetic(), ["synthetic"], configuration.batch_size, plan_augmentation(configuration.patch_size, True, mask),
                         context_slices=configuration.context_slices)
    loader.batch(0)
    start = time.perf_counter()
    for iteration in range(1, batches + 1):
        loader.batch(iteration)
    return (time.perf_counter() - start) / batches


class IterationTimer:
    """``timer(configuration) -> seconds per training iteration`` on a device: the measuring callable of
    :func:`autounet.planners.time_budget.plan_for_time_budget`.

    The time of an iteration is the step (:func:`measure_step_seconds`), plus the batch time when batches are made
    in-process (the default on CPUs with few cores, :func:`measure_batch_seconds`), plus the per-epoch validation
    batches' share (forward only, about a third of a step each). On a CPU with several threads the first call also
    times one thread and keeps the faster count for every later measurement, as training does (``ThreadTuner``):
    on a busy machine one thread can beat all of them.

    Parameters
    ----------
    plans : Plans
    device : torch.device
    dtype : torch.dtype
        Autocast dtype (float32 = none).
    num_workers : int
        Data workers of the training run (0: batches are made in the training process and cost iteration time).
    config : TrainingConfig
        For the validation batches per epoch.
    """

    def __init__(self, plans: Plans, device: torch.device, dtype: torch.dtype, num_workers: int, config: TrainingConfig) -> None:
        self.plans = plans
        self.device = device
        self.dtype = dtype
        self.num_workers = num_workers
        self.config = config
        self.threads: int | None = None
        self._batch_seconds: dict[int, float] = {}

    def _step_seconds(self, configuration: ConfigurationPlan) -> float:
        threads = torch.get_num_threads()
        if self.threads is not None or self.device.type != "cpu" or threads == 1:
            return measure_step_seconds(configuration, self.plans, self.device, self.dtype)
        timed = {}
        for count in (threads, 1):
            torch.set_num_threads(count)
            timed[count] = measure_step_seconds(configuration, self.plans, self.device, self.dtype)
        self.threads = min(timed, key=lambda count: timed[count])
        torch.set_num_threads(self.threads)
        logger.info("CPU threads for the measurement: %s s per step -> %d", timed, self.threads)
        return timed[self.threads]

    def __call__(self, configuration: ConfigurationPlan) -> float:
        step = self._step_seconds(configuration)
        batch = 0.0
        if self.num_workers == 0:
            if configuration.batch_size not in self._batch_seconds:
                self._batch_seconds[configuration.batch_size] = measure_batch_seconds(configuration, self.plans)
            batch = self._batch_seconds[configuration.batch_size]
        validation_share = self.config.validation_iterations / (3 * self.config.iterations_per_epoch)
        seconds = step * (1 + validation_share) + batch
        logger.info(
            "features %s batch %d: step %.3f s, data %.3f s -> %.3f s per iteration",
            list(configuration.features_per_stage), configuration.batch_size, step, batch, seconds,
        )
        return seconds
