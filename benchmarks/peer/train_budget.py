#!/usr/bin/env python3
"""Long (the budget, plus a minute): nnU-Net v2's default trainer on Hippocampus 3d_fullres under a wall-clock budget,
scored on held-back cases by its own final validation, by the protocol of autounet's budgeted benchmark.

    python3 benchmarks/peer/train_budget.py --budget-min 20 --machine E     # autounet's fold-0 split (below)
    python3 benchmarks/peer/train_budget.py --budget-min 60 --machine E
    python3 benchmarks/peer/train_budget.py --train-cases 166 --seed 0 --budget-min 20    # another hold-out split
    python3 benchmarks/peer/train_budget.py --total-iters 100             # a fixed iteration count instead (issue 5)

Protocol (the same as ``benchmarks/bench_hippocampus_budget.py``):

- **Split.** Train on the training cases of a fold and score the cases held back from it. By default the fold of
  autounet's own ``splits.json`` (``--split``, default ``benchmarks/_work/Hippocampus/splits.json``, written by
  ``python benchmarks/bench_hippocampus_budget.py --split-only``), so both tools learn from the same 166 cases and are
  scored on the same 42; or ``--train-cases N --seed S``: N cases drawn at random, the rest held back.
- **Budget.** The clock starts when the script starts; the budget covers setup, training, the per-epoch
  pseudo-validation, checkpoints and the final validation. nnU-Net's trainer (``nnUNetTrainer``, imported directly,
  float32 on the CPU, its own augmentation workers, plans as nnU-Net makes them here) keeps its schedule shape:
  ``--epochs`` epochs (poly learning rate over them). The iterations of each epoch are fitted as it goes: after every
  epoch, what is left of the budget (less an estimate of the final validation) is shared among the remaining epochs at
  the seconds per iteration measured so far. Nothing else of the trainer is changed.
- **Score.** ``perform_actual_validation``: sliding window with mirroring on the held-back cases, Dice per label
  from its ``summary.json`` against the raw labels.

The record (``benchmarks/results/hippocampus_budget/``, tool "nnU-Net v2") sits beside autounet's record of the
same session (``--machine``, same day) in docs/benchmarks.md and README.md. Output folders:
``benchmarks/_peer/nnUNet_results_budget/<budget>/``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

STARTED = time.monotonic()  # the budget starts with the script

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

RESULTS_BUDGET = C.PEER / "nnUNet_results_budget"
DEFAULT_SPLIT = C.ROOT / "benchmarks" / "_work" / "Hippocampus" / "splits.json"
#: Share of the budget kept free for what cannot be foreseen (checkpoint writes, a slower final validation).
SAFETY_FRACTION = 0.03
#: Seconds per held-back case assumed for the final validation when no prediction record of this session exists
#: (nnU-Net's sliding window with mirroring on these 2 cores: 3-5 s per Hippocampus case, benchmarks/peer/README.md).
DEFAULT_VALIDATION_S_PER_CASE = 5.0
#: Seconds per iteration assumed for the first epoch when no training-step record of this session exists.
DEFAULT_S_PER_ITERATION = 9.0


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-min", type=float, default=20.0, help="wall-clock budget, everything included (minutes)")
    ap.add_argument("--total-iters", type=int, default=None,
                    help="train exactly this many iterations instead (no budget; issue 5's setting was 100)")
    ap.add_argument("--epochs", type=int, default=10, help="epochs of the schedule (poly learning rate over them)")
    ap.add_argument("--val-iters", type=int, default=3, help="pseudo-validation iterations per epoch")
    ap.add_argument("--split", type=Path, default=DEFAULT_SPLIT,
                    help="splits.json of autounet (or splits_final.json of nnU-Net): [{train: [...], val: [...]}]")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--train-cases", type=int, default=None,
                    help="instead of --split: train on this many cases drawn with --seed, hold the rest back")
    ap.add_argument("--seed", type=int, default=0)
    C.add_record_args(ap)
    return ap.parse_args()


def hold_out_split(args: argparse.Namespace, case_ids: list[str]) -> tuple[list[str], list[str], str]:
    """``(train, held back, description)`` from ``--split``/``--fold`` or ``--train-cases``/``--seed``."""
    if args.train_cases is not None:
        if not 0 < args.train_cases < len(case_ids):
            sys.exit(f"--train-cases must be between 1 and {len(case_ids) - 1}, got {args.train_cases}")
        shuffled = sorted(case_ids)
        random.Random(args.seed).shuffle(shuffled)
        train, held = sorted(shuffled[:args.train_cases]), sorted(shuffled[args.train_cases:])
        return train, held, f"{args.train_cases} cases drawn with seed {args.seed}, the other {len(held)} held back"
    if not args.split.is_file():
        sys.exit(f"{args.split} not found: write autounet's split first with "
                 "'python benchmarks/bench_hippocampus_budget.py --split-only', or pass --split FILE or --train-cases N")
    folds = json.loads(args.split.read_text())
    if not isinstance(folds, list) or not 0 <= args.fold < len(folds):
        sys.exit(f"{args.split}: expected a list of folds with fold {args.fold}")
    train, held = sorted(folds[args.fold]["train"]), sorted(folds[args.fold]["val"])
    unknown = sorted(set(train + held) - set(case_ids))
    if unknown:
        sys.exit(f"{args.split}: cases {unknown[:5]} are not in nnU-Net's preprocessed dataset")
    try:
        where = args.split.resolve().relative_to(C.ROOT)
    except ValueError:
        where = args.split
    return train, held, f"fold {args.fold} of {where}"


def _session_figure(args: argparse.Namespace, benchmark: str, figure: str, **criteria) -> float | None:
    record = C.records.find_session_record(benchmark, C.records.NNUNET, args.machine, results_dir=args.results,
                                           **criteria)
    return None if record is None else record["figures"].get(figure)


def make_budget_trainer(base, budget_s: float | None, validation_reserve_s: float, first_epoch_iterations: int,
                        train_keys: list[str], val_keys: list[str]):
    """A subclass of nnU-Net's trainer that uses the given split and fits each epoch's iterations to the budget."""

    class BudgetTrainer(base):
        def do_split(self):  # the hold-out split of the protocol instead of nnU-Net's own five folds
            return list(train_keys), list(val_keys)

        def on_train_start(self):
            super().on_train_start()
            self.num_iterations_per_epoch = first_epoch_iterations
            self.iterations_done = 0
            self.iteration_seconds = 0.0

        def on_train_epoch_start(self):
            self._epoch_started = time.monotonic()
            super().on_train_epoch_start()

        def on_epoch_end(self):
            self.iterations_done += self.num_iterations_per_epoch
            self.iteration_seconds += time.monotonic() - self._epoch_started
            super().on_epoch_end()
            left_epochs = self.num_epochs - self.current_epoch
            if budget_s is None or left_epochs <= 0:
                return
            per_iteration = self.iteration_seconds / max(self.iterations_done, 1)  # pseudo-validation included
            left = budget_s * (1 - SAFETY_FRACTION) - (time.monotonic() - STARTED) - validation_reserve_s
            self.num_iterations_per_epoch = max(1, math.floor(left / left_epochs / per_iteration))
            self.print_to_log_file(f"budget: {left:.0f} s left for {left_epochs} epochs at {per_iteration:.2f} s per "
                                   f"iteration -> {self.num_iterations_per_epoch} iterations per epoch")

    return BudgetTrainer


def main() -> None:
    C.ensure_venv()
    args = _parse()
    budget_s = None if args.total_iters is not None else args.budget_min * 60
    tag = f"iters{args.total_iters}" if budget_s is None else f"budget{args.budget_min:g}min"
    C.set_nnunet_env(results=RESULTS_BUDGET / tag)
    C.require_preprocessed("3d_fullres")
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    base = C.PREPROCESSED / C.DATASET_NAME
    plans = json.loads((base / "nnUNetPlans.json").read_text())
    dataset_json = json.loads((base / "dataset.json").read_text())
    gt = base / "gt_segmentations"
    case_ids = sorted(p.name[: -len(dataset_json["file_ending"])] for p in gt.iterdir()
                      if p.name.endswith(dataset_json["file_ending"]))
    train, held, split_text = hold_out_split(args, case_ids)
    split_hash = hashlib.sha1(json.dumps([train, held]).encode()).hexdigest()[:12]
    per_case = _session_figure(args, "predict", "per_case_s", settings__interface="api") or DEFAULT_VALIDATION_S_PER_CASE
    validation_reserve = per_case * len(held) * 1.2
    if budget_s is None:
        first = max(1, args.total_iters // args.epochs)
    else:
        s_per_iteration = _session_figure(args, "train_step", "iteration_s_median") or DEFAULT_S_PER_ITERATION
        first = max(1, math.floor((budget_s * (1 - SAFETY_FRACTION) - validation_reserve - 120) / args.epochs
                                  / s_per_iteration))
    print(f"split: {split_text} ({len(train)} training, {len(held)} held back); first epoch {first} iterations; "
          f"final validation reserve {validation_reserve:.0f} s", file=sys.stderr, flush=True)

    load0, up0 = C.loadavg(), C.uptime_line()
    torch.set_num_threads(os.cpu_count() or 1)  # as nnUNetv2_train -device cpu
    trainer_class = make_budget_trainer(nnUNetTrainer, budget_s, validation_reserve, first, train, held)
    plans["continue_training"] = False
    trainer = trainer_class(plans=plans, configuration="3d_fullres", fold=args.fold, dataset_json=dataset_json,
                            device=torch.device("cpu"))
    trainer.num_epochs = args.epochs
    trainer.num_val_iterations_per_epoch = args.val_iters
    with C.Probe() as p_train:
        trainer.run_training()
    with C.Probe() as p_val:
        trainer.perform_actual_validation(False)
    total_s = time.monotonic() - STARTED
    summary = json.loads((Path(trainer.output_folder) / "validation" / "summary.json").read_text())
    names = {str(v): k for k, v in dataset_json["labels"].items()}
    dice = {names.get(str(k), str(k)): round(v["Dice"], 4) for k, v in summary["mean"].items()}
    scored = len(summary.get("metric_per_case", []))
    if scored != len(held):
        sys.exit(f"the final validation scored {scored} cases, not the {len(held)} held back; see {trainer.output_folder}")
    configuration = plans["configurations"]["3d_fullres"]
    architecture = configuration.get("architecture", {}).get("arch_kwargs", {})
    ema = trainer.logger.get_value("ema_fg_dice", step=None) or []
    C.record("train_budget", {"budget_min": args.budget_min if budget_s else None, "total_iters": trainer.iterations_done,
                              "dice_per_class": dice, "total_wall_s": round(total_s, 1), "split": split_text},
             load0, up0)
    C.peer_record(args, "hippocampus_budget", {
        "dice": {k: v for k, v in dice.items() if k != "background"},
        "mean_fg_dice": round(summary["foreground_mean"]["Dice"], 4),
        "iterations": trainer.iterations_done, "epochs": args.epochs, "training_s": round(total_s, 1),
        "train_loop_s": round(p_train.wall, 1), "final_validation_s": round(p_val.wall, 1),
        "over_budget_s": None if budget_s is None else round(max(0.0, total_s - budget_s), 1),
        "features_per_stage": architecture.get("features_per_stage"),
        "batch_size": configuration.get("batch_size"), "patch_size": configuration.get("patch_size"),
        "precision": "float32", "augmentation_scale": None,
        "pseudo_dice_per_epoch": [round(float(x), 4) for x in ema],
    }, {
        "dataset": "Task04_Hippocampus", "configuration": "3d_fullres", "fold": str(args.fold),
        "budget_s": budget_s, "total_iterations_fixed": args.total_iters, "split": split_text,
        "split_sha1": split_hash, "train_cases": len(train), "validation_cases": len(held),
        "trainer": "nnUNetTrainer (iterations per epoch fitted to the budget)", "epochs": args.epochs,
        "validation_iterations_per_epoch": args.val_iters, "validation_reserve_s": round(validation_reserve, 1),
    }, {"train": p_train.as_dict(), "final_validation": p_val.as_dict(), "load_before": load0,
        "load_after": C.loadavg()})
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
