"""The DistributedDataParallel code path on the CPU: gloo backend, 2 processes, a couple of iterations."""

from __future__ import annotations

import socket

import torch
import torch.multiprocessing as mp

from autounet.trainers import load_checkpoint
from autounet.trainers.distributed import DistributedContext, context_from_environment, split_batch_size

from .helpers import run_distributed_rank


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_with_gloo_and_two_processes(tiny_results, tmp_path):
    mp.spawn(run_distributed_rank, args=(2, _free_port(), str(tiny_results), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # both ranks saw the same all-reduced validation Dice and schedule
    assert ranks[0]["iterations"] == 6
    fold_dir = tiny_results / "3d_fullres" / "fold_0"
    checkpoint = load_checkpoint(fold_dir / "checkpoint_final.pt")
    assert checkpoint["iteration"] == 6
    assert not any(k.startswith("module.") for k in checkpoint["network_weights"])  # stored without the DDP wrapper
    assert (fold_dir / "training_log.json").is_file()


def test_context_and_batch_split():
    assert context_from_environment({"WORLD_SIZE": "1"}) == DistributedContext()
    two = [DistributedContext(rank, 2) for rank in (0, 1)]
    assert [split_batch_size(7, c) for c in two] == [4, 3]
    assert [split_batch_size(1, c) for c in two] == [1, 1]
    assert two[0].is_writer and not two[1].is_writer
