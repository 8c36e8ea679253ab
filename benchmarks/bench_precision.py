"""Does bfloat16 autocast hurt Dice? Train one fold twice, bfloat16 and float32, everything else equal (issue 5).

    python benchmarks/bench_precision.py --precision bfloat16 --seeds 0 1
    python benchmarks/bench_precision.py --precision float32 --seeds 0 1
    python benchmarks/make_tables.py                     # the table in docs/benchmarks.md, from the records

Each run: the Hippocampus plans with the width set by ``--base-features`` (default 8, the compute-aware choice on
two CPU cores) and the batch set by ``--batch-size``, the same fold, seed, ``--iterations`` (in ``--epochs``
epochs), augmentation and learning-rate schedule; only the autocast dtype differs. The final validation (sliding
window prediction of the fold's validation cases at full size, in the precision of the run, evaluated against the
raw labels) gives the Dice per label. Equal iterations, not equal time: the question is whether the arithmetic
changes what the network learns, not how fast it gets there (the step times are in docs/benchmarks.md).

bfloat16 is only worth running where the CPU has bfloat16 units (``cpu_has_native_bfloat16``); elsewhere PyTorch
emulates it about 15x slower. The two precisions can run side by side, one core each (``taskset -c 0`` and
``-c 1`` with ``OMP_NUM_THREADS=1``): the comparison is of Dice, which the other job does not change. Each run
writes a record to ``benchmarks/results/precision/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from autounet.networks.cpu_speed import cpu_has_native_bfloat16  # noqa: E402
from autounet.planners import load_plans  # noqa: E402
from autounet.pipeline import train_fold  # noqa: E402
from autounet.trainers import TrainingConfig  # noqa: E402
from autounet.planners.time_budget import features_for_base  # noqa: E402
from autounet.pipeline.prepare import PrepareOptions, prepare_results  # noqa: E402
import records  # noqa: E402
from training_figures import fold_figures  # noqa: E402

DATASET = REPO.parent / "shared" / "datasets" / "Task04_Hippocampus"
WORK = REPO / "benchmarks" / "_work" / "precision"


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", choices=("bfloat16", "float32"), required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--configuration", default="3d_fullres")
    parser.add_argument("--fold", default="0")
    parser.add_argument("--iterations", type=int, default=1300)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--base-features", type=int, default=8)
    parser.add_argument("--augmentation-scale", type=float, default=0.05)
    records.add_record_arguments(parser)
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
    prepare_results(args.dataset, base, PrepareOptions(configurations=(args.configuration,), with_previous_stages=False, workers=1, progress=False))
    for seed in args.seeds:
        folder = _run_folder(base, args, args.precision, seed)
        config = TrainingConfig(
            epochs=args.epochs, iterations_per_epoch=max(1, args.iterations // args.epochs), seed=seed,
            precision=args.precision, augmentation_scale=args.augmentation_scale, progress=False,
        )
        started = time.monotonic()
        result = train_fold(folder, args.configuration, args.fold, config, dataset=args.dataset)
        figures = {**fold_figures(result), "wall_min": (time.monotonic() - started) / 60}
        records.record_measurement(args, "precision", figures, {
            "precision": args.precision, "seed": seed, "dataset": args.dataset.name, "configuration": args.configuration,
            "fold": args.fold, "base_features": args.base_features, "batch_size": args.batch_size,
            "epochs": args.epochs, "augmentation_scale": args.augmentation_scale, "output_bias": "prior",
            "threads": torch.get_num_threads(), "native_bfloat16": cpu_has_native_bfloat16(),
        }, conditions={"loadavg_end": os.getloadavg()}, plans_version=load_plans(folder / "plans.json").plans_version)


def main() -> None:
    run(_parse())


if __name__ == "__main__":
    main()
