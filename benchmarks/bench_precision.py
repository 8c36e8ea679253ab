"""Does bfloat16 autocast hurt Dice? Train one fold twice, bfloat16 and float32, everything else equal (issue 5).

    python benchmarks/bench_precision.py --precision bfloat16 --seeds 0 1
    python benchmarks/bench_precision.py --precision float32 --seeds 0 1
    python benchmarks/bench_precision.py --table benchmarks/_work/precision/hippocampus.jsonl

Each run: the Hippocampus plans with the width set by ``--base-features`` (default 8, the compute-aware choice on
two CPU cores) and the batch set by ``--batch-size``, the same fold, seed, ``--iterations`` (in ``--epochs``
epochs), augmentation and learning-rate schedule; only the autocast dtype differs. The final validation (sliding
window prediction of the fold's validation cases at full size, in the precision of the run, evaluated against the
raw labels) gives the Dice per label. Equal iterations, not equal time: the question is whether the arithmetic
changes what the network learns, not how fast it gets there (the step times are in docs/benchmarks.md).

bfloat16 is only worth running where the CPU has bfloat16 units (``cpu_has_native_bfloat16``); elsewhere PyTorch
emulates it about 15x slower. The two precisions can run side by side, one core each (``taskset -c 0`` and
``-c 1`` with ``OMP_NUM_THREADS=1``): the comparison is of Dice, which the other job does not change.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autounet.networks.cpu_speed import cpu_has_native_bfloat16  # noqa: E402
from autounet.planners import load_plans  # noqa: E402
from autounet.pipeline import train_fold  # noqa: E402
from autounet.trainers import TrainingConfig  # noqa: E402
from autounet.planners.time_budget import features_for_base  # noqa: E402
from autounet.pipeline.prepare import PrepareOptions, prepare_results  # noqa: E402

DATASET = REPO.parent / "shared" / "datasets" / "Task04_Hippocampus"
WORK = REPO / "benchmarks" / "_work" / "precision"


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", choices=("bfloat16", "float32"), default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--configuration", default="3d_fullres")
    parser.add_argument("--fold", default="0")
    parser.add_argument("--iterations", type=int, default=1300)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--base-features", type=int, default=8)
    parser.add_argument("--augmentation-scale", type=float, default=0.05)
    parser.add_argument("--output", type=Path, default=WORK / "hippocampus.jsonl")
    parser.add_argument("--table", type=Path, default=None, help="print the markdown table of a JSON lines file and exit")
    return parser.parse_args()


def _run_folder(base: Path, args: argparse.Namespace, precision: str, seed: int) -> Path:
    """``base/runs/<precision>_seed<seed>``: the base plans with width and batch set; data and split shared."""
    folder = base / "runs" / f"{precision}_seed{seed}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    plans = load_plans(base / "plans.json")
    configuration = plans.configuration(args.configuration)
    features = features_for_base(args.base_features, configuration.n_stages, max(configuration.features_per_stage))
    configuration = configuration.replace(features_per_stage=features, batch_size=args.batch_size)
    dataclasses.replace(plans, configurations={**plans.configurations, args.configuration: configuration}).save(
        folder / "plans.json"
    )
    for name in ("dataset.json", "fingerprint.json", "splits.json"):
        if (base / name).is_file():
            shutil.copy2(base / name, folder / name)
    (folder / "preprocessed").symlink_to((base / "preprocessed").resolve())
    return folder


def run(args: argparse.Namespace) -> None:
    if args.precision == "bfloat16" and not cpu_has_native_bfloat16():
        print("warning: this CPU has no bfloat16 units; bfloat16 training will be very slow", file=sys.stderr)
    base = WORK / "base"
    prepare_results(args.dataset, base, PrepareOptions(configurations=(args.configuration,), with_previous_stages=False,
                                                      workers=1, progress=False))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        folder = _run_folder(base, args, args.precision, seed)
        config = TrainingConfig(
            epochs=args.epochs, iterations_per_epoch=max(1, args.iterations // args.epochs), seed=seed,
            precision=args.precision, augmentation_scale=args.augmentation_scale, progress=False,
        )
        started = time.monotonic()
        result = train_fold(folder, args.configuration, args.fold, config, dataset=args.dataset)
        validation = result.validation or {}
        record = {
            "precision": args.precision, "seed": seed, "fold": args.fold, "iterations": result.iterations,
            "batch_size": args.batch_size, "base_features": args.base_features,
            "augmentation_scale": args.augmentation_scale, "threads": torch.get_num_threads(),
            "native_bfloat16": cpu_has_native_bfloat16(), "wall_seconds": round(time.monotonic() - started, 1),
            "mean_dice": validation.get("mean_dice"), "foreground_mean_dice": validation.get("foreground_mean_dice"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]), "loadavg": os.getloadavg(),
        }
        print(json.dumps(record), flush=True)
        with open(args.output, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def table(path: Path) -> str:
    """Markdown table of the runs in a JSON lines file, one row per (precision, seed), later records overriding."""
    records: dict[tuple[str, int], dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            records[(record["precision"], record["seed"])] = record
    labels = sorted({label for r in records.values() for label in (r.get("mean_dice") or {})})
    header = ["precision", "seed", "iterations", "wall time (min)", *[f"Dice {label}" for label in labels], "mean fg Dice"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (precision, seed), r in sorted(records.items()):
        dice = r.get("mean_dice") or {}
        lines.append("| " + " | ".join([
            precision, str(seed), str(r["iterations"]), f"{r['wall_seconds'] / 60:.1f}",
            *[f"{dice[label]:.3f}" if label in dice else "" for label in labels],
            f"{r['foreground_mean_dice']:.3f}" if r.get("foreground_mean_dice") is not None else "",
        ]) + " |")
    return "\n".join(lines)


def main() -> None:
    args = _parse()
    if args.table is not None:
        print(table(args.table))
        return
    if args.precision is None:
        raise SystemExit("pass --precision bfloat16 or float32 (or --table FILE)")
    run(args)


if __name__ == "__main__":
    main()
