"""Run a :class:`PatchLoader` in this process or in background worker processes, and choose how many workers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from batchgenerators.dataloading.multi_threaded_augmenter import MultiThreadedAugmenter  # type: ignore[import-untyped]

from autounet.trainers.data.loader import PatchLoader

logger = logging.getLogger(__name__)

#: Batches each worker keeps ready (batchgenerators' recommendation).
CACHED_PER_WORKER = 2
#: Upper bound of data workers by default on a GPU machine (nnU-Net: ``min(12, cpu_count)``).
MAX_GPU_WORKERS = 12
#: Below this many cores a CPU run augments in its own process: on 2 cores a batch costs a few percent of an
#: iteration in-process, while a worker would take a core from the network (docs/benchmarks.md, "Data pipeline").
MIN_CORES_FOR_CPU_WORKERS = 8


def default_num_workers(device_type: str, cpu_cores: int) -> int:
    """Background augmentation workers for a device: 0 means batches are made in the training process.

    Parameters
    ----------
    device_type : {"cuda", "mps", "cpu"}
    cpu_cores : int
        Cores this process may use.

    Returns
    -------
    int

    Notes
    -----
    On an accelerator the CPU is otherwise idle, so workers use all cores but one (up to 12, nnU-Net's cap) and
    the network never waits. On a CPU the network and the workers share the same cores; with few cores the
    workers cannot make anything faster, so batches are made in-process. With many cores a quarter of them
    augment (the network's thread count is reduced accordingly by the trainer).

    Examples
    --------
    >>> default_num_workers("cuda", 16), default_num_workers("cpu", 2), default_num_workers("cpu", 32)
    (12, 0, 8)
    """
    if device_type in ("cuda", "mps"):
        return max(1, min(MAX_GPU_WORKERS, cpu_cores - 1))
    if cpu_cores < MIN_CORES_FOR_CPU_WORKERS:
        return 0
    return cpu_cores // 4


class BatchStream:
    """Endless iterator of batches from ``loader``, made in-process (``num_workers=0``) or by worker processes.

    Use as a context manager (or call :meth:`close`) so workers stop with the training.
    """

    def __init__(self, loader: PatchLoader, num_workers: int = 0, pin_memory: bool = False) -> None:
        self.loader = loader
        self.num_workers = max(0, int(num_workers))
        self.pin_memory = pin_memory
        self._augmenter: MultiThreadedAugmenter | None = None

    def __enter__(self) -> "BatchStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        if self.num_workers == 0:
            return next(self.loader)
        if self._augmenter is None:
            self.loader.num_workers = self.num_workers
            self._augmenter = MultiThreadedAugmenter(
                self.loader,
                None,
                self.num_workers,
                num_cached_per_queue=CACHED_PER_WORKER,
                seeds=None,
                pin_memory=self.pin_memory,
            )
            logger.info("started %d data worker process(es)", self.num_workers)
        return next(self._augmenter)

    def close(self) -> None:
        if self._augmenter is not None:
            self._augmenter._finish()
            self._augmenter = None
