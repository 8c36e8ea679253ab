"""Issue 5's quality bar: Hippocampus 3d_fullres fold 0 trained under a wall-clock budget on this CPU.

    python benchmarks/bench_hippocampus_budget.py --split-only                 # plans, preprocessing, splits.json
    python benchmarks/bench_hippocampus_budget.py --fresh --budget 20m --machine E
    python benchmarks/bench_hippocampus_budget.py --step-only                  # the planned network's step only
    python benchmarks/bench_hippocampus_budget.py --features 16                # skip the compute-aware choice

Steps, each timed: (1) fingerprint, plan and preprocess the 208 shared cases (skipped when already done) and the
five-fold split (``benchmarks/_work/Hippocampus/splits.json``, which ``benchmarks/peer/train_budget.py`` reads so that
nnU-Net trains on the same cases and is scored on the same held-back ones); (2) the planned network's training step at
nnU-Net's batch 7 and patch 40x56x40, bfloat16 and float32; (3) compute-aware planning for the budget
(``plan_for_budget``); (4) ``train_fold`` with ``budget_seconds``, which includes the final validation (sliding-window
prediction of the 42 held-back cases, export, evaluation against the raw labels). Writes a record to
``benchmarks/results/hippocampus_budget/``; nnU-Net's figures come only from its own record of the same session.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import records  # noqa: E402
from autounet.cli.common import parse_duration  # noqa: E402
from autounet.dataset import load_dataset  # noqa: E402
from autounet.planners import load_plans  # noqa: E402
from autounet.pipeline import train_fold  # noqa: E402
from autounet.trainers import TrainingConfig  # noqa: E402
from autounet.planners.time_budget import features_for_base  # noqa: E402
from autounet.pipeline.budget import plan_for_budget, training_cases_per_fold  # noqa: E402
from autounet.pipeline.prepare import PrepareOptions, prepare_results  # noqa: E402
from autounet.trainers.splits import SPLITS_FILE, load_or_create_splits  # noqa: E402
from autounet.trainers.step_timing import measure_step_seconds  # noqa: E402
from training_figures import fold_figures  # noqa: E402


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=REPO.parent / "shared" / "datasets" / "Task04_Hippocampus")
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / "_work" / "Hippocampus",
                        help="results folder (plans, preprocessed data and splits.json are reused when present)")
    parser.add_argument("--budget", type=parse_duration, default=1200.0, help="training budget (default 20m)")
    parser.add_argument("--configuration", default="3d_fullres")
    parser.add_argument("--fold", default="0")
    parser.add_argument("--features", type=int, default=None, help="fixed base features instead of the compute-aware choice")
    parser.add_argument("--step-only", action="store_true", help="only time the planned network's training step")
    parser.add_argument("--split-only", action="store_true", help="only prepare the data and write splits.json")
    parser.add_argument("--fresh", action="store_true", help="delete the fold folder first")
    records.add_record_arguments(parser)
    return parser.parse_args()


def _load() -> dict:
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "uptime": uptime}


def _prepare(args: argparse.Namespace) -> tuple[float, list]:
    started = time.monotonic()
    prepare_results(args.dataset, args.work, PrepareOptions(configurations=(args.configuration,), with_previous_stages=False, workers=2, progress=False))
    from autounet.trainers.components import open_store

    plans = load_plans(args.work / "plans.json")
    store = open_store(args.work, plans.configuration(args.configuration))
    splits = load_or_create_splits(args.work, store.case_ids)
    return time.monotonic() - started, splits


def _planned_steps(args: argparse.Namespace, plans) -> dict[str, float]:
    """Step time of the planned network in both precisions; against nnU-Net only from its record of this session."""
    planned = plans.configuration(args.configuration)
    steps = {}
    for name, dtype in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
        steps[name] = round(measure_step_seconds(planned, plans, torch.device("cpu"), dtype, steps=3, warmup=2), 3)
        print(f"planned network step ({name}): {steps[name]} s", flush=True)
    records.compare_with_peer(args, "train_step", "step_s_median", steps["float32"],
                              "benchmarks/peer/time_train_step.py")
    return steps


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _split_hash(fold: dict) -> str:
    """The same fingerprint of a split as benchmarks/peer/train_budget.py records: equal hashes, equal cases."""
    return hashlib.sha1(json.dumps([sorted(fold["train"]), sorted(fold["val"])]).encode()).hexdigest()[:12]


def main() -> None:
    args = _parse()
    load_start = _load()
    prepare_seconds, splits = _prepare(args)
    if args.split_only:
        print(f"{args.work / SPLITS_FILE}: fold {args.fold} trains on {len(splits[int(args.fold)]['train'])} cases, "
              f"holds back {len(splits[int(args.fold)]['val'])}")
        return
    plans = load_plans(args.work / "plans.json")
    planned = plans.configuration(args.configuration)
    steps = _planned_steps(args, plans)
    if args.step_only:
        return

    started = time.monotonic()
    candidates = None
    if args.features is not None:
        features = features_for_base(args.features, planned.n_stages, max(planned.features_per_stage))
        chosen_plans = dataclasses.replace(plans, configurations={
            **plans.configurations, args.configuration: planned.replace(features_per_stage=features)})
        reason = f"fixed base features {args.features}"
    else:
        cases = training_cases_per_fold(len(load_dataset(args.dataset).training))
        chosen_plans, choice = plan_for_budget(plans, args.configuration, args.budget, device="cpu", num_training_cases=cases)
        reason = choice.reason
        candidates = chosen_plans.configuration(args.configuration).training.to_dict().get("budget_candidates")
        print(f"compute-aware choice: {reason}", flush=True)
    choice_seconds = time.monotonic() - started
    results = args.work.parent / f"{args.work.name}_budget{args.budget / 60:g}m"
    results.mkdir(parents=True, exist_ok=True)
    for name in ("dataset.json", "fingerprint.json", SPLITS_FILE):  # the same split as the peer's
        if (args.work / name).is_file():
            shutil.copy2(args.work / name, results / name)
    if not (results / "preprocessed").exists():
        (results / "preprocessed").symlink_to((args.work / "preprocessed").resolve())
    chosen_plans.save(results / "plans.json")
    fold_dir = results / args.configuration / f"fold_{args.fold}"
    if args.fresh and fold_dir.exists():
        shutil.rmtree(fold_dir)
    load_training = _load()
    result = train_fold(results, args.configuration, args.fold, TrainingConfig(budget_seconds=args.budget, progress=False),
                        dataset=args.dataset)
    fold = splits[int(args.fold)]
    figures = {"prepare_s": round(prepare_seconds, 1), "choice_s": round(choice_seconds, 1), "choice": reason,
               "candidates": candidates, "planned_step_s": steps, **fold_figures(result)}
    records.record_measurement(args, "hippocampus_budget", figures, {
        "dataset": args.dataset.name, "configuration": args.configuration, "fold": args.fold, "budget_s": args.budget,
        "split": f"fold {args.fold} of {_relative(args.work / SPLITS_FILE)}", "split_sha1": _split_hash(fold),
        "train_cases": len(fold["train"]),
        "validation_cases": len(fold["val"]), "threads": torch.get_num_threads(),
    }, conditions={"load_start": load_start, "load_before_training": load_training, "load_end": _load()},
        plans_version=chosen_plans.plans_version)


if __name__ == "__main__":
    main()
