#!/usr/bin/env python3
"""Time one training iteration of nnU-Net v2's default trainer (nnUNetTrainer),
3d_fullres, fold 0, on Dataset004_Hippocampus, as nnU-Net plans it on this machine.

    python3 benchmarks/peer/time_train_step.py [--warmup 2] [--iters 10] [--reps 2]

Uses nnU-Net's own pieces exactly as `nnUNetTrainer.run_training()` does
(on_train_start -> on_epoch_start -> on_train_epoch_start -> train_step(next(dataloader_train))),
with the default trainer settings: float32 on CPU (autocast only on cuda), deep
supervision, Dice+CE loss, SGD, torch threads = cpu count, its own background
augmentation workers (nnUNet_n_proc_DA default -> min(12, cpu_count) = 2 here).
Only the number of iterations is cut: we run warmup + reps*iters iterations and
no full epoch/validation. An iteration is timed from requesting the batch
(`next(dataloader_train)`, i.e. any wait for augmentation) to the end of the
optimizer step; the wait and the step are also recorded separately, so the record holds both the iteration with
the data pipeline (``iteration_s_median``) and the step without it (``step_s_median``), to be compared with the same
figure of ``benchmarks/bench_network_step.py`` (``--data`` for autounet's iteration with its data pipeline).
``--da-processes 0`` makes the batches in the training process (nnU-Net's ``nnUNet_n_proc_DA=0``), as autounet does by
default on CPUs with few cores; by default nnU-Net's own workers make them beside the step, on the same cores.
nnU-Net trains in float32 on a CPU (its autocast is for CUDA only), whatever the CPU's bfloat16 units.
Output of the trainer (logs) goes to benchmarks/_peer/nnUNet_results_timing/; the record to
benchmarks/results/train_step/ (``--machine`` names the session).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def main() -> None:
    C.ensure_venv()
    C.set_nnunet_env(results=C.PEER / "nnUNet_results_timing")
    ap = argparse.ArgumentParser()
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10, help="timed iterations per repetition")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--configuration", default="3d_fullres")
    ap.add_argument("--da-processes", type=int, default=None,
                    help="nnU-Net's augmentation workers (nnUNet_n_proc_DA; default its own choice, 0 = in-process)")
    C.add_quiet_args(ap)
    C.add_record_args(ap)
    args = ap.parse_args()
    if args.da_processes is not None:
        os.environ["nnUNet_n_proc_DA"] = str(args.da_processes)  # read when the trainer builds its loaders
    C.require_preprocessed(args.configuration)

    import numpy as np
    import torch

    load0, up0 = C.loadavg(), C.uptime_line()
    trainer = C.make_trainer(args.configuration, fold=0)
    n_total = args.warmup + args.reps * args.iters
    trainer.num_epochs = 1
    trainer.num_iterations_per_epoch = n_total
    trainer.num_val_iterations_per_epoch = 1
    t0 = time.perf_counter()
    trainer.on_train_start()   # initialize network/optimizer/loss, start dataloaders, unpack
    t_start = time.perf_counter() - t0
    trainer.on_epoch_start()
    trainer.on_train_epoch_start()

    per_iter, waits, steps, losses, blocks_info = [], [], [], [], []
    probe = None
    for i in range(n_total):
        if i >= args.warmup and (i - args.warmup) % args.iters == 0:
            # start of a timed block: wait for a quiet machine, then probe contention
            if probe is not None:
                probe.__exit__(None, None, None)
                blocks_info[-1].update(probe.as_dict())
            blocks_info.append(C.wait_for_quiet(args.quiet_cores, max_wait=args.max_wait))
            probe = C.Probe().__enter__()
        a = time.perf_counter()
        batch = next(trainer.dataloader_train)
        b = time.perf_counter()
        out = trainer.train_step(batch)
        c = time.perf_counter()
        per_iter.append(c - a)
        waits.append(b - a)
        steps.append(c - b)
        losses.append(float(out["loss"]))
        tag = "warmup" if i < args.warmup else "timed"
        print(f"iter {i} ({tag}): {c - a:.2f} s (wait {b - a:.2f}, step {c - b:.2f}) "
              f"loss {losses[-1]:.4f} load {C.loadavg()}", file=sys.stderr, flush=True)
    probe.__exit__(None, None, None)
    blocks_info[-1].update(probe.as_dict())
    C.shutdown_loaders(trainer)

    timed = per_iter[args.warmup:]
    blocks = [timed[r * args.iters:(r + 1) * args.iters] for r in range(args.reps)]
    block_means = [statistics.mean(b) for b in blocks]
    data_shape = list(batch["data"].shape)
    cm = trainer.configuration_manager
    C.record("train_step", {
        "trainer": "nnUNetTrainer",
        "configuration": args.configuration,
        "fold": 0,
        "batch_size": trainer.batch_size,
        "patch_size": list(cm.patch_size),
        "batch_data_shape": data_shape,
        "dtype": str(batch["data"].dtype),
        "deep_supervision": trainer.enable_deep_supervision,
        "torch_threads": torch.get_num_threads(),
        "da_processes": trainer.dataloader_train.num_processes
        if hasattr(trainer.dataloader_train, "num_processes") else None,
        "warmup_iters": args.warmup,
        "timed_iters": len(timed),
        "setup_s": round(t_start, 3),
        "s_per_iter_block_means": [round(x, 3) for x in block_means],
        "blocks": blocks_info,
        "s_per_iter_min_block": round(min(block_means), 3),
        "s_per_iter_median_block": round(statistics.median(block_means), 3),
        "s_per_iter_min": round(min(timed), 3),
        "s_per_iter_median": round(statistics.median(timed), 3),
        "wait_s_median": round(statistics.median(waits[args.warmup:]), 3),
        "step_s_median": round(statistics.median(steps[args.warmup:]), 3),
        "per_iter_s": [round(x, 3) for x in per_iter],
        "loss_first_last": [round(losses[0], 4), round(losses[-1], 4)],
        "losses_finite": bool(np.all(np.isfinite(losses))),
    }, load0, up0)
    workers = trainer.dataloader_train.num_processes if hasattr(trainer.dataloader_train, "num_processes") else 0
    C.peer_record(args, "train_step", {
        "iteration_s_median": round(statistics.median(timed), 3),
        "step_s_median": round(statistics.median(steps[args.warmup:]), 3),
        "wait_s_median": round(statistics.median(waits[args.warmup:]), 3),
        "iteration_s_block_means": [round(x, 3) for x in block_means], "timed_iterations": len(timed),
    }, {
        "network": "nnU-Net PlainConvUNet (nnUNetTrainer)", "configuration": args.configuration,
        "features_per_stage": list(cm.network_arch_init_kwargs.get("features_per_stage", []))
        if hasattr(cm, "network_arch_init_kwargs") else None,
        "batch_size": trainer.batch_size, "patch_size": list(cm.patch_size), "precision": "float32",
        "data_pipeline": f"iteration: included ({workers} augmentation workers{', in-process' if not workers else ''}); "
                         "step: excluded",
        "data_workers": workers, "threads": torch.get_num_threads(),
        "description": f"nnU-Net v2 (`nnUNetTrainer.train_step`, {len(timed)} timed iterations)",
    }, {"blocks": blocks_info, "load_before": load0, "load_after": C.loadavg()})
    sys.stdout.flush()
    os._exit(0)  # don't wait on nnU-Net's non-daemon helpers


if __name__ == "__main__":
    main()
