"""Multi-GPU (and multi-process CPU) training with ``torchrun``: process group, ranks, and the DDP wrapper."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger(__name__)

#: Generous so that rank 0's final validation does not time the others out at the closing barrier.
PROCESS_GROUP_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a run: ``world_size`` 1 means a plain single-process run.

    Attributes
    ----------
    rank, world_size, local_rank : int
        From torchrun's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` environment variables.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_writer(self) -> bool:
        """Only rank 0 writes files (checkpoints, logs, splits, validation)."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.barrier()


def context_from_environment(environ: dict[str, str] | None = None) -> DistributedContext:
    """Read torchrun's variables; without them (or with ``WORLD_SIZE=1``) the run is single-process.

    Examples
    --------
    >>> context_from_environment({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    DistributedContext(rank=1, world_size=2, local_rank=1)
    >>> context_from_environment({}).enabled
    False
    """
    env = os.environ if environ is None else environ
    world_size = int(env.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    return DistributedContext(int(env.get("RANK", "0")), world_size, int(env.get("LOCAL_RANK", env.get("RANK", "0"))))


def init_process_group(context: DistributedContext, device: torch.device) -> torch.device:
    """Join the process group (NCCL for CUDA, gloo otherwise) and return this rank's device.

    Each rank uses ``cuda:LOCAL_RANK`` on a CUDA machine. Does nothing for a single-process run or when the
    group already exists (e.g. a test created it).
    """
    if not context.enabled:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=context.rank, world_size=context.world_size, timeout=PROCESS_GROUP_TIMEOUT)
        logger.info("rank %d of %d joined the %s process group", context.rank, context.world_size, backend)
    return device


def wrap_network(network: nn.Module, context: DistributedContext, device: torch.device) -> nn.Module:
    """``DistributedDataParallel`` around ``network`` for multi-process runs; the network itself otherwise."""
    if not context.enabled:
        return network
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(network, device_ids=device_ids)


def split_batch_size(global_batch_size: int, context: DistributedContext) -> int:
    """This rank's share of the planned batch (nnU-Net splits the batch over GPUs; at least 1 each).

    Examples
    --------
    >>> split_batch_size(7, DistributedContext(rank=0, world_size=2)), split_batch_size(7, DistributedContext(1, 2))
    (4, 3)
    """
    if not context.enabled:
        return global_batch_size
    if global_batch_size < context.world_size:
        return 1
    share, extra = divmod(global_batch_size, context.world_size)
    return share + (1 if context.rank < extra else 0)


def broadcast_from_writer(value: int) -> int:
    """Rank 0's ``value`` on every rank (a no-op outside a process group); keeps schedules identical across ranks."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor([int(value)], dtype=torch.int64, device=device)
    dist.broadcast(tensor, src=0)
    return int(tensor.item())
