"""Issue 7's quality bar: ``autounet benchmark`` on Hippocampus, five folds under one budget, and its record.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/bench_fivefold.py --budget 80m --workers 1 --machine E

Runs the command ``autounet benchmark ../shared/datasets --tasks Task04_Hippocampus -c 3d_fullres --budget B`` in a
subprocess (what a user runs), then reads what it wrote (``benchmark.json``, each fold's training log and final
validation, the plans the budget chose) and writes one record to ``benchmarks/results/fivefold/``: iterations and
Dice per fold, the cross-validation Dice of all cases, the network chosen and the stage times.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import records  # noqa: E402
from autounet.cli.common import parse_duration  # noqa: E402

TASK = "Task04_Hippocampus"


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--budget", default="80m", help="budget of the whole task (default 80m)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--configuration", default="3d_fullres")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "_work" / "benchmark_hip")
    parser.add_argument("--fresh", action="store_true", help="delete the output folder first")
    records.add_record_arguments(parser)
    return parser.parse_args()


def fivefold_figures(output: Path, configuration: str) -> dict:
    """Per-fold iterations and Dice, cross-validation Dice and the budget's choice from a finished benchmark folder."""
    from autounet.evaluation import load_summary
    from autounet.planners import load_plans

    task = json.loads((output / "benchmark.json").read_text())["tasks"][0]
    results = Path(task["results_dir"])
    plans = load_plans(results / "plans.json")
    names = {str(value): name for name, value in plans.labels.items()}
    folds = []
    for fold in task["folds"]:
        fold_dir = results / configuration / f"fold_{fold}"
        epochs = json.loads((fold_dir / "training_log.json").read_text()).get("epochs", [])
        summary = load_summary(fold_dir / "validation" / "summary.json")
        dice = {names.get(k, k): round(v["Dice"], 4) for k, v in summary.mean.items()}
        folds.append({"fold": fold, "iterations": epochs[-1]["iteration"] if epochs else 0, "dice": dice})
    planned = plans.configuration(configuration)
    return {
        "folds": folds, "crossval_dice": task["dice_per_label"], "crossval_mean_fg_dice": task["mean_dice"],
        "crossval_cases": task["num_cases"], "features_per_stage": list(planned.features_per_stage),
        "batch_size": planned.batch_size, "patch_size": list(planned.patch_size),
        "augmentation_scale": planned.training.to_dict().get("augmentation_scale"),
        "candidates": planned.training.to_dict().get("budget_candidates"), "choice": planned.training.to_dict().get("budget_choice"),
        "stages_s": {name: stage.get("seconds") for name, stage in task["stages"].items()},
        "total_s": task["total_seconds"], "plans_version": plans.plans_version,
    }


def main() -> None:
    args = _parse()
    if args.fresh and args.output.exists():
        shutil.rmtree(args.output)
    executable = shutil.which("autounet") or str(Path(sys.executable).parent / "autounet")
    command = [executable, "benchmark", str(args.datasets), "--tasks", TASK, "-c", args.configuration,
               "--budget", args.budget, "--workers", str(args.workers), "-o", str(args.output)]
    started = time.monotonic()
    subprocess.run(command, check=True)
    figures = fivefold_figures(args.output, args.configuration)
    figures["wall_s"] = round(time.monotonic() - started, 1)
    from autounet.devices import resolve_precision

    import torch

    figures["precision"] = str(resolve_precision("auto", torch.device("cpu"))).replace("torch.", "")
    records.record_measurement(args, "fivefold", figures, {
        "dataset": TASK, "configuration": args.configuration, "folds": [0, 1, 2, 3, 4],
        "budget_s": parse_duration(args.budget), "cores": len(os.sched_getaffinity(0)), "workers": args.workers,
    }, plans_version=figures.pop("plans_version"))


if __name__ == "__main__":
    main()
