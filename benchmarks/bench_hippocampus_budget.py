"""Issue 5's quality bar: Hippocampus 3d_fullres fold 0 trained under a 20-minute wall-clock budget on this CPU.

    python benchmarks/bench_hippocampus_budget.py                       # everything, 20 minutes of training
    python benchmarks/bench_hippocampus_budget.py --step-only           # only the step time of the planned network
    python benchmarks/bench_hippocampus_budget.py --features 16         # skip the compute-aware choice

Steps, each timed: (1) fingerprint, plan and preprocess the 208 shared cases (skipped when already done);
(2) the planned network's training step at nnU-Net's batch 7 and patch 40x56x40, bfloat16 and float32 (the bar: at
most half of nnU-Net's 8-9 s); (3) compute-aware planning for the budget (``plan_for_budget``: times a few steps of
candidate widths and picks one); (4) ``train_fold`` with ``budget_seconds``, which includes the final validation
(sliding-window prediction of the 42 validation cases, export, evaluation against the raw labels). Prints and saves
(``--output``) a JSON record with the Dice per label, the times and the machine load.
"""

from __future__ import annotations

import argparse
import dataclasses
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

from autounet.cli.common import parse_duration  # noqa: E402
from autounet.planners import load_plans  # noqa: E402
from autounet.pipeline import train_fold  # noqa: E402
from autounet.trainers import TrainingConfig  # noqa: E402
from autounet.planners.time_budget import features_for_base  # noqa: E402
from autounet.dataset import load_dataset  # noqa: E402
from autounet.pipeline.budget import plan_for_budget, training_cases_per_fold  # noqa: E402
from autounet.pipeline.prepare import PrepareOptions, prepare_results  # noqa: E402
from autounet.trainers.step_timing import measure_step_seconds  # noqa: E402
from autounet.trainers.train_fold import augmentation_scale  # noqa: E402

#: nnU-Net v2 on this machine (benchmarks/peer/time_train_step.py): float32, batch 7, patch 40x56x40.
NNUNET_STEP_SECONDS = (8.0, 9.0)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=REPO.parent / "shared" / "datasets" / "Task04_Hippocampus")
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / "_work" / "Hippocampus",
                        help="results folder (plans and preprocessed data are reused when present)")
    parser.add_argument("--budget", type=parse_duration, default=1200.0, help="training budget (default 20m)")
    parser.add_argument("--configuration", default="3d_fullres")
    parser.add_argument("--fold", default="0")
    parser.add_argument("--features", type=int, default=None, help="fixed base features instead of the compute-aware choice")
    parser.add_argument("--step-only", action="store_true", help="only time the planned network's training step")
    parser.add_argument("--fresh", action="store_true", help="delete the fold folder first")
    parser.add_argument("--output", type=Path, default=None, help="append the JSON record to this file")
    return parser.parse_args()


def _load() -> dict:
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "uptime": uptime}


def main() -> None:
    args = _parse()
    record: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(), "load_start": _load()}
    started = time.monotonic()
    prepare_results(args.dataset, args.work, PrepareOptions(configurations=(args.configuration,), with_previous_stages=False,
                                                            workers=2, progress=False))
    record["prepare_seconds"] = round(time.monotonic() - started, 1)
    plans = load_plans(args.work / "plans.json")
    planned = plans.configuration(args.configuration)
    record["planned"] = {"patch_size": list(planned.patch_size), "batch_size": planned.batch_size,
                         "features_per_stage": list(planned.features_per_stage)}

    device = torch.device("cpu")
    steps = {}
    for name, dtype in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
        steps[name] = round(measure_step_seconds(planned, plans, device, dtype, steps=3, warmup=2), 3)
        print(f"planned network step ({name}): {steps[name]} s (nnU-Net: {NNUNET_STEP_SECONDS[0]}-{NNUNET_STEP_SECONDS[1]} s)", flush=True)
    record["planned_step_seconds"] = steps
    if args.step_only:
        print(json.dumps(record, indent=1))
        return

    started = time.monotonic()
    if args.features is not None:
        features = features_for_base(args.features, planned.n_stages, max(planned.features_per_stage))
        chosen = planned.replace(features_per_stage=features)
        chosen_plans = dataclasses.replace(plans, configurations={**plans.configurations, args.configuration: chosen})
        record["choice"] = f"fixed base features {args.features}"
    else:
        cases = training_cases_per_fold(len(load_dataset(args.dataset).training))
        chosen_plans, choice = plan_for_budget(plans, args.configuration, args.budget, device="cpu", num_training_cases=cases)
        record["choice"] = choice.reason
        print(f"compute-aware choice: {choice.reason}", flush=True)
    record["choice_seconds"] = round(time.monotonic() - started, 1)
    results = args.work.parent / f"{args.work.name}_budget"
    results.mkdir(parents=True, exist_ok=True)
    for name in ("dataset.json", "fingerprint.json"):
        if (args.work / name).is_file():
            shutil.copy2(args.work / name, results / name)
    if not (results / "preprocessed").exists():
        (results / "preprocessed").symlink_to((args.work / "preprocessed").resolve())
    chosen_plans.save(results / "plans.json")
    fold_dir = results / args.configuration / f"fold_{args.fold}"
    if args.fresh and fold_dir.exists():
        shutil.rmtree(fold_dir)
    record["load_before_training"] = _load()
    result = train_fold(results, args.configuration, args.fold, TrainingConfig(budget_seconds=args.budget, progress=False),
                        dataset=args.dataset)
    record.update(
        load_end=_load(),
        augmentation_scale=augmentation_scale(TrainingConfig(), chosen_plans.configuration(args.configuration)),
        features_per_stage=list(chosen_plans.configuration(args.configuration).features_per_stage),
        training_seconds=round(result.elapsed_seconds, 1),
        iterations=result.iterations,
        epochs=result.epochs,
        validation=result.validation,
    )
    print(json.dumps(record, indent=1))
    if args.output:
        with open(args.output, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
