"""Check the budget planner's constants on data other than the headline fold: a sweep that writes records (issue 27).

    python benchmarks/bench_budget_constants.py hippocampus --fold 1 --budget 20m --machine E
    python benchmarks/bench_budget_constants.py drive --fold 0 --budget 10m --machine E
    python benchmarks/bench_budget_constants.py isbi --fold 0 --budget 10m --machine E
    python benchmarks/bench_budget_constants.py drive --budget 10m --grid full --target-iterations 500 1000 \\
        --augmentation-passes 250 1000                                            # every combination

Compute-aware planning (autounet/planners/time_budget.py) rests on two constants set from development runs on
Hippocampus fold 0, the data of the headline figure: ``TARGET_ITERATIONS`` (iterations below which more iterations
help more than more width: the widest network that still gets them is chosen) and ``FULL_AUGMENTATION_PASSES``
(passes over the training cases from which nnU-Net's full augmentation is used; below it augmentation is scaled
down). This script trains one fold under the same wall-clock budget for several values of each, everything else as
``autounet run --budget`` does it, and writes one record per value to ``benchmarks/results/budget_constants/`` with
the network chosen, the iterations done, the augmentation scale and the Dice on the fold's held-back cases. The
constants themselves are not changed here; the table in docs/benchmarks.md ("Budget planner constants") shows whether
the defaults (marked) are the best choice or near it on each dataset.

Grid ``axes`` (default): ``TARGET_ITERATIONS`` over ``--target-iterations`` at the default passes, then
``FULL_AUGMENTATION_PASSES`` over ``--augmentation-passes`` at the default target; ``full``: every combination.
The candidate networks are measured once per dataset and the measurement is reused for every value (the choice is a
pure rule of the measured speeds); a value that leads to the same network and augmentation as one already trained is
recorded with that run's figures instead of being trained again.

Datasets: ``hippocampus`` (MSD Task04, 3d_fullres; use a fold other than 0), ``drive`` (DRIVE retinal vessels, 2d,
field-of-view masks as ROI), ``isbi`` (ISBI 2012 EM membranes, 2d), all from ``../shared/datasets`` (imported into
``benchmarks/_work/constants/`` first where needed). Expected time: (number of values) x (budget + a minute).
"""

from __future__ import annotations

import argparse
import os
import shutil
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
from autounet.planners.time_budget import (  # noqa: E402
    FULL_AUGMENTATION_PASSES,
    TARGET_ITERATIONS,
    plan_for_time_budget,
)
from autounet.pipeline import train_fold  # noqa: E402
from autounet.trainers import TrainingConfig  # noqa: E402
from autounet.trainers.data.pipeline import default_num_workers  # noqa: E402
from autounet.devices import resolve_device, resolve_precision  # noqa: E402
from autounet.pipeline.budget import training_cases_per_fold  # noqa: E402
from autounet.pipeline.prepare import PrepareOptions, prepare_results  # noqa: E402
from autounet.trainers.step_timing import IterationTimer  # noqa: E402
from training_figures import fold_figures  # noqa: E402

SHARED = REPO.parent / "shared" / "datasets"
WORK = REPO / "benchmarks" / "_work" / "constants"
DATASETS = {"hippocampus": "3d_fullres", "drive": "2d", "isbi": "2d"}


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("--fold", default="1", help="fold to train (default 1: not the headline's fold 0)")
    parser.add_argument("--budget", type=parse_duration, default=1200.0, help="wall-clock budget per run (default 20m)")
    parser.add_argument("--target-iterations", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--augmentation-passes", type=int, nargs="+", default=[250, 1000, 4000])
    parser.add_argument("--grid", choices=("axes", "full"), default="axes")
    parser.add_argument("--seed", type=int, default=0)
    records.add_record_arguments(parser)
    return parser.parse_args()


def grid(targets: list[int], passes: list[int], kind: str) -> list[tuple[int, int]]:
    """``(target_iterations, full_augmentation_passes)`` pairs, the defaults first.

    Examples
    --------
    >>> grid([500, 1000], [250, 1000], "axes")
    [(1000, 1000), (500, 1000), (1000, 250)]
    """
    if kind == "full":
        pairs = [(t, p) for t in targets for p in passes]
    else:
        pairs = [(t, FULL_AUGMENTATION_PASSES) for t in targets] + [(TARGET_ITERATIONS, p) for p in passes]
    ordered = [(TARGET_ITERATIONS, FULL_AUGMENTATION_PASSES)] + pairs
    return list(dict.fromkeys(ordered))


def raw_dataset(name: str) -> Path:
    """The dataset folder to train from: the MSD folder, or the 2D images imported once into ``WORK``."""
    if name == "hippocampus":
        return SHARED / "Task04_Hippocampus"
    target = WORK / f"{name}_raw"
    if (target / "dataset.json").is_file():
        return target
    from autounet.dataset.importer import import_2d_dataset, parse_value_map

    if name == "drive":
        source = SHARED / "DRIVE" / "training"
        import_2d_dataset(source / "images", source / "1st_manual", target, name="DRIVE",
                          image_pattern="{case}_training.tif", mask_pattern="{case}_manual1.gif",
                          roi_masks=source / "mask", roi_pattern="{case}_training_mask.gif",
                          label_names=["background", "vessel"], progress=False)
    else:
        source = SHARED / "ISBI2012_EM" / "train"
        import_2d_dataset(source / "image", source / "label", target, name="ISBI2012",
                          map_values=parse_value_map("0:1,255:0"), label_names=["background", "membrane"],
                          progress=False)
    return target


class CachedTimer:
    """The trainer's iteration timer, measuring each (width, batch) once for every value of the sweep."""

    def __init__(self, timer: IterationTimer) -> None:
        self.timer = timer
        self.seconds: dict[tuple, float] = {}

    def __call__(self, configuration) -> float:
        key = (tuple(configuration.features_per_stage), configuration.batch_size)
        if key not in self.seconds:
            self.seconds[key] = self.timer(configuration)
        return self.seconds[key]


def main() -> None:
    args = _parse()
    raw = raw_dataset(args.dataset)
    configuration_name = DATASETS[args.dataset]
    base = WORK / args.dataset
    prepare_results(raw, base, PrepareOptions(configurations=(configuration_name,), with_previous_stages=False, workers=2, progress=False))
    plans = load_plans(base / "plans.json")
    cases = training_cases_per_fold(len(load_dataset(raw).training))
    device = resolve_device("auto")
    dtype = resolve_precision("auto", device)
    timer = CachedTimer(IterationTimer(plans, device, dtype, default_num_workers(device.type, os.cpu_count() or 1),
                                       TrainingConfig(progress=False)))
    trained: dict[tuple, dict] = {}
    for target, passes in grid(args.target_iterations, args.augmentation_passes, args.grid):
        chosen, choice = plan_for_time_budget(plans, configuration_name, args.budget, timer, num_training_cases=cases,
                                              device_name=str(device), target_iterations=target,
                                              full_augmentation_passes=passes)
        configuration = chosen.configuration(configuration_name)
        scale = configuration.training.to_dict().get("augmentation_scale")
        key = (tuple(configuration.features_per_stage), configuration.batch_size, scale)
        settings = {"dataset": args.dataset, "configuration": configuration_name, "fold": args.fold,
                    "budget_s": args.budget, "target_iterations": target, "full_augmentation_passes": passes,
                    "defaults": (target, passes) == (TARGET_ITERATIONS, FULL_AUGMENTATION_PASSES),
                    "seed": args.seed, "training_cases": cases, "choice": choice.reason}
        if key in trained:
            records.record_measurement(args, "budget_constants", trained[key], settings, plans_version=chosen.plans_version,
                                       note="same network and augmentation as an earlier value of this sweep: its "
                                            "figures, not trained again")
            continue
        folder = base / "runs" / f"target{target}_passes{passes}_fold{args.fold}"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name in ("dataset.json", "fingerprint.json", "splits.json"):
            if (base / name).is_file():
                shutil.copy2(base / name, folder / name)
        (folder / "preprocessed").symlink_to((base / "preprocessed").resolve())
        chosen.save(folder / "plans.json")
        started = time.monotonic()
        result = train_fold(folder, configuration_name, args.fold,
                            TrainingConfig(budget_seconds=args.budget, seed=args.seed, progress=False), dataset=raw)
        figures = {**fold_figures(result), "augmentation_scale": scale, "wall_s": round(time.monotonic() - started, 1),
                   "candidates": configuration.training.to_dict().get("budget_candidates"),
                   "planned_iterations": configuration.training.to_dict().get("budget_iterations")}
        trained[key] = figures
        records.record_measurement(args, "budget_constants", figures, settings, plans_version=chosen.plans_version,
                                   conditions={"loadavg_end": os.getloadavg(), "threads": torch.get_num_threads()})


if __name__ == "__main__":
    main()
