#!/usr/bin/env python3
"""Produce a briefly trained nnU-Net v2 checkpoint (3d_fullres, fold 0) for timing inference.

    python3 benchmarks/peer/make_checkpoint.py [--iters 5] [--val-iters 2] [--force]

Runs nnU-Net's own `nnUNetTrainer.run_training()` (default trainer, imported
directly, CPU) with num_epochs=1, num_iterations_per_epoch=--iters and
num_val_iterations_per_epoch=--val-iters; no final validation. Writes
benchmarks/_peer/nnUNet_results/Dataset004_Hippocampus/nnUNetTrainer__nnUNetPlans__3d_fullres/
    fold_0/checkpoint_final.pth, plans.json, dataset.json
which nnUNetPredictor / nnUNetv2_predict load. Inference speed does not depend
on the weights, so a 1-epoch checkpoint is enough for time_predict.py.
Skips the work if the checkpoint exists (unless --force).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

MODEL_DIR = C.RESULTS / C.DATASET_NAME / "nnUNetTrainer__nnUNetPlans__3d_fullres"
CHECKPOINT = MODEL_DIR / "fold_0" / "checkpoint_final.pth"


def main() -> None:
    C.ensure_venv()
    C.set_nnunet_env()
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--val-iters", type=int, default=2)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    if CHECKPOINT.exists() and not args.force:
        print(f"checkpoint exists: {CHECKPOINT}")
        return
    C.require_preprocessed("3d_fullres")
    trainer = C.make_trainer("3d_fullres", fold=0)
    trainer.num_epochs = 1
    trainer.num_iterations_per_epoch = args.iters
    trainer.num_val_iterations_per_epoch = args.val_iters
    t0 = time.perf_counter()
    trainer.run_training()
    print(f"trained 1 epoch x {args.iters} iterations in {time.perf_counter() - t0:.1f} s -> {CHECKPOINT}",
          flush=True)
    assert CHECKPOINT.exists()
    os._exit(0)


if __name__ == "__main__":
    main()
