#!/usr/bin/env python3
"""Optional, long (~20 min of both cores): train nnU-Net v2's default trainer on
3d_fullres fold 0 with its schedule fitted to a wall-clock budget, then run its own
final validation (perform_actual_validation: sliding window + mirroring on the
42 fold-0 validation cases, Dice per class from its summary.json).

    python3 benchmarks/peer/train_budget.py [--budget-min 20] [--s-per-iter 8.5] [--epochs 10]
    python3 benchmarks/peer/train_budget.py --total-iters 100          # fix the iteration count instead

The schedule: --epochs epochs (poly LR decays over them, as nnU-Net's schedule does over
its 1000) of total_iters/epochs iterations each, --val-iters pseudo-validation
iterations per epoch. total_iters = (budget - overheads) / s_per_iter unless
--total-iters is given; s_per_iter defaults to the median of the last train_step
result in benchmarks/_peer/results.jsonl. Output: benchmarks/_peer/nnUNet_results_budget/.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

RESULTS_BUDGET = C.PEER / "nnUNet_results_budget"


def last_s_per_iter() -> float | None:
    if not C.RESULTS_JSONL.exists():
        return None
    val = None
    for line in C.RESULTS_JSONL.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("bench") == "train_step":
            val = rec.get("s_per_iter_median_block")
    return val


def main() -> None:
    C.ensure_venv()
    C.set_nnunet_env(results=RESULTS_BUDGET)
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget-min", type=float, default=20.0)
    ap.add_argument("--s-per-iter", type=float, default=None)
    ap.add_argument("--total-iters", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--val-iters", type=int, default=3)
    ap.add_argument("--overhead-s", type=float, default=240.0,
                    help="budget kept for setup, per-epoch pseudo-validation and final validation")
    args = ap.parse_args()
    C.require_preprocessed("3d_fullres")

    spi = args.s_per_iter or last_s_per_iter() or 8.5
    if args.total_iters is None:
        total = int((args.budget_min * 60 - args.overhead_s) / spi)
    else:
        total = args.total_iters
    per_epoch = max(1, total // args.epochs)
    total = per_epoch * args.epochs
    print(f"schedule: {args.epochs} epochs x {per_epoch} it = {total} iterations "
          f"(s/it assumed {spi:.2f}, budget {args.budget_min} min)", file=sys.stderr, flush=True)

    load0, up0 = C.loadavg(), C.uptime_line()
    trainer = C.make_trainer("3d_fullres", fold=0)
    trainer.num_epochs = args.epochs
    trainer.num_iterations_per_epoch = per_epoch
    trainer.num_val_iterations_per_epoch = args.val_iters
    with C.Probe() as p_train:
        trainer.run_training()
    with C.Probe() as p_val:
        trainer.perform_actual_validation(False)
    summary = json.loads((Path(trainer.output_folder) / "validation" / "summary.json").read_text())
    names = {str(v): k for k, v in trainer.dataset_json["labels"].items()}
    dice = {names.get(str(k), str(k)): round(v["Dice"], 4) for k, v in summary["mean"].items()}
    C.record("train_budget", {
        "trainer": "nnUNetTrainer", "configuration": "3d_fullres", "fold": 0,
        "budget_min": args.budget_min, "s_per_iter_assumed": spi,
        "epochs": args.epochs, "iters_per_epoch": per_epoch, "total_iters": total,
        "val_iters_per_epoch": args.val_iters,
        "train": p_train.as_dict(), "final_validation": p_val.as_dict(),
        "total_wall_s": round(p_train.wall + p_val.wall, 1),
        "n_val_cases": len(summary.get("metric_per_case", [])),
        "dice_per_class": dice,
        "dice_foreground_mean": round(summary["foreground_mean"]["Dice"], 4),
        "output_folder": str(Path(trainer.output_folder).relative_to(C.ROOT)),
    }, load0, up0)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
