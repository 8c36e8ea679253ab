"""Compare the network families under the same plans, fold and wall-clock training budget (issue 8).

    python benchmarks/bench_families.py hippocampus --budget 8m                  # 3d_fullres fold 0, every family
    python benchmarks/bench_families.py hippocampus --iterations 400 --batch-size 2 --augmentation-scale 0
    python benchmarks/bench_families.py drive --budget 5m --families unet vnet   # DRIVE 2d fold 0, two families
    python benchmarks/bench_families.py hippocampus --measure-only               # parameters, step time, memory
    python benchmarks/bench_families.py hippocampus --iterations 1000 --output-bias zero --seed 1 --families unet
    python benchmarks/make_tables.py          # the family tables of docs/benchmarks.md, from the records

For each family: the plans of the dataset with only ``"network"`` changed (same patch, batch, topology and split;
on Hippocampus the planner gives every family the same patch and batch at 8 GB anyway) and, for every family alike,
the width set by ``--base-features`` (default 16: the planned 32 leaves too few iterations for any family in a
few minutes on two CPU cores) and the output bias set by ``--output-bias`` (default ``prior``, the trainer's), then

- parameters;
- the planner's memory estimate relative to ``unet`` and the measured peak memory of one training step (the bytes
  of all tensors alive at once during forward, loss and backward, like ``torch.cuda.max_memory_allocated``);
- the step time: median of ``--steps`` steps of the trainer's own ``Trainer.train_step`` (SGD, Dice+CE with deep
  supervision, the trainer's precision: bfloat16 autocast and channels-last on this CPU) on random batches;
- ``train_fold`` with ``budget_seconds`` (the budget includes the final validation: sliding-window prediction of
  the fold's validation cases and evaluation against the raw labels), or with ``--iterations`` the same number of
  iterations for every family (a budget that other jobs on a shared machine cannot skew): Dice per label,
  iterations done, wall time of the fold.

Before each family the script waits for a quiet machine (``--quiet-load``, ``--max-wait``); each family's record is
written to ``benchmarks/results/families/`` as soon as it is done (``--machine`` names the session), with the machine
load at its start and end. The tables in docs/benchmarks.md merge a ``--measure-only`` record (taken with the other
core idle) into the training records of its family and machine: step time and memory from the quiet pass, Dice from
the training run.
DRIVE is imported first with ``autounet.dataset.importer.import_2d_dataset`` (field-of-view masks kept as ROI).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import traceback
import weakref
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from autounet.cli.common import parse_duration  # noqa: E402
from autounet.networks import count_parameters, list_networks  # noqa: E402
from autounet.planners import estimate_memory, load_plans  # noqa: E402
from autounet.pipeline import train_fold  # noqa: E402
from autounet.trainers import Trainer, TrainingConfig  # noqa: E402
from autounet.trainers import components  # noqa: E402
from autounet.planners.time_budget import features_for_base  # noqa: E402
from autounet.trainers.config import DEFAULT_SEED  # noqa: E402
from autounet.devices import resolve_precision  # noqa: E402
from autounet.pipeline.prepare import PrepareOptions, prepare_results  # noqa: E402
import records  # noqa: E402
from training_figures import fold_figures  # noqa: E402

SHARED = REPO.parent / "shared" / "datasets"
WORK = REPO / "benchmarks" / "_work" / "families"
DATASETS = {
    "hippocampus": {"raw": SHARED / "Task04_Hippocampus", "configuration": "3d_fullres"},
    "drive": {"raw": WORK / "DRIVE_raw", "configuration": "2d"},
}
#: Families in the order of the table: the two nnU-Net ones first.
FAMILY_ORDER = ("unet", "resenc", "resunet", "attention", "unetpp", "r2unet", "denseunet", "multires", "dilated", "vnet")


def _json_object(text: str) -> dict:
    """``--network-kwargs``: a JSON object, or an error that shows one."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        value = error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"not a JSON object: {text!r}; write the options as one, e.g. '{{\"zero_init_residual\": true}}'")
    return value


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", choices=sorted(DATASETS))
    parser.add_argument("--budget", type=parse_duration, default=480.0, help="training budget per family (default 8m)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="train every family for this many iterations (2 epochs) instead of a wall-clock budget")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size for every family (default: planned)")
    parser.add_argument("--patch-size", type=int, nargs="+", default=None,
                        help="patch size for every family, the topology derived from it as 'autounet plan --patch-size' "
                             "does (default: planned; DRIVE's planned 640x640 makes each family's run take long)")
    parser.add_argument("--validation-iterations", type=int, default=10, help="pseudo-validation batches per epoch")
    parser.add_argument("--families", nargs="+", default=None, help="default: every registered family")
    parser.add_argument("--fold", default="0")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="training seed (initial weights, patch order, augmentation); another seed trains in "
                             "runs/<family>-seed<N> so seeds can run side by side")
    parser.add_argument("--output-bias", choices=("prior", "zero"), default="prior",
                        help="start of the output bias (default prior: the plans' log class prior; zero: nnU-Net's); "
                             "zero trains in runs/<family>-zero so both can run side by side")
    parser.add_argument("--network-kwargs", type=_json_object, default={},
                        help='family options for every family, as JSON (e.g. \'{"zero_init_residual": true}\'); '
                             "trains in runs/<family>-<options> so variants can run side by side")
    parser.add_argument("--base-features", type=int, default=16,
                        help="features of the first stage for every family (doubling, capped as planned); 0 = as planned")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per family (after 2 warm-up steps)")
    parser.add_argument("--augmentation-scale", type=float, default=None,
                        help="factor on every augmentation but mirroring (0 = mirroring only: converges in fewer "
                             "iterations; turning augmentation off entirely would break the mirrored test-time "
                             "prediction of the final validation); default the trainer's")
    parser.add_argument("--measure-only", action="store_true", help="parameters, memory and step time; no training")
    parser.add_argument("--fresh", action="store_true", help="delete a family's fold folder before training it")
    parser.add_argument("--quiet-load", type=float, default=1.0,
                        help="before each family, wait until the 1-minute load average is at most this")
    parser.add_argument("--max-wait", type=parse_duration, default=900.0, help="longest wait for a quiet machine")
    records.add_record_arguments(parser)
    return parser.parse_args()


def _load() -> dict:
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "uptime": uptime}


def _wait_for_quiet(quiet_load: float, max_wait: float) -> float:
    """Wait (polling every 15 s) until the 1-minute load average is at most ``quiet_load``; returns seconds waited."""
    started = time.monotonic()
    while os.getloadavg()[0] > quiet_load and time.monotonic() - started < max_wait:
        time.sleep(15)
    return round(time.monotonic() - started, 1)


def _import_drive(raw: Path) -> None:
    if (raw / "dataset.json").is_file():
        return
    from autounet.dataset.importer import import_2d_dataset

    source = SHARED / "DRIVE" / "training"
    import_2d_dataset(
        source / "images", source / "1st_manual", raw, name="DRIVE", image_pattern="{case}_training.tif",
        mask_pattern="{case}_manual1.gif", roi_masks=source / "mask", roi_pattern="{case}_training_mask.gif",
        label_names=["background", "vessel"], progress=False,
    )


class _PeakMemory(TorchDispatchMode):
    """Peak bytes of tensor storages alive at once while active (CPU analogue of ``max_memory_allocated``)."""

    def __init__(self) -> None:
        super().__init__()
        self.current = self.peak = 0
        self._alive: dict[int, weakref.ref] = {}

    def _release(self, key: int, nbytes: int) -> None:
        self.current -= nbytes
        self._alive.pop(key, None)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(output)[0]:
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                key, nbytes = id(storage), storage.nbytes()
                if key not in self._alive and nbytes:
                    self._alive[key] = weakref.ref(storage, lambda _, key=key, nbytes=nbytes: self._release(key, nbytes))
                    self.current += nbytes
                    self.peak = max(self.peak, self.current)
        return output


def _random_batch(configuration, plans, rng: np.random.Generator) -> dict:
    shape = (configuration.batch_size, *configuration.patch_size)
    data = rng.standard_normal((shape[0], len(plans.channel_names), *shape[1:]), dtype=np.float32)
    seg = rng.integers(0, plans.num_classes, size=(shape[0], 1, *shape[1:])).astype(np.int16)
    return {"data": data, "seg": seg}


def _measure(configuration, plans, steps: int) -> dict:
    """Parameters, estimate, peak memory and step time of one family with the trainer's own train_step."""
    device = torch.device("cpu")
    dtype = resolve_precision("auto", device)
    torch.manual_seed(0)
    network = components.make_network(configuration, plans, deep_supervision=True)
    params = count_parameters(network)
    network = network.to(memory_format=components.cpu_memory_format(configuration, device))
    loss = components.make_loss("dice_ce", {}, configuration, deep_supervision=True)
    batch = _random_batch(configuration, plans, np.random.default_rng(0))
    trainer = Trainer(
        network, loss, iter(()), None, TrainingConfig(progress=False), device, dtype, label_names={},
        deep_supervision_scales=components.supervision_scales(configuration, True),
        total_iterations=1000, memory_format=components.cpu_memory_format(configuration, device),
    )
    trainer.train_step(batch)  # warm-up (oneDNN primitives, allocator)
    trainer.train_step(batch)
    times = []
    for _ in range(steps):  # timed before the memory tracking, whose dispatch hooks cost time of their own
        started = time.perf_counter()
        trainer.train_step(batch)
        times.append(time.perf_counter() - started)
    with _PeakMemory() as tracker:
        trainer.train_step(batch)
    topology = (configuration.patch_size, configuration.features_per_stage, configuration.strides,
                configuration.n_conv_per_stage, configuration.n_conv_per_stage_decoder)
    estimate = estimate_memory(configuration.network, *topology, plans.num_classes, configuration.network_kwargs)
    unet = estimate_memory("unet", *topology, plans.num_classes)
    return {
        "parameters": params,
        "parameters_m": params / 1e6,
        "precision": str(dtype).replace("torch.", ""),
        "step_s": round(statistics.median(times), 3),
        "step_s_all": [round(t, 3) for t in times],
        "peak_memory_mib": round(tracker.peak / 2**20, 1),
        "memory_estimate": estimate,
        "estimate_vs_unet": round(estimate / unet, 3),
    }


def _training_config(args: argparse.Namespace) -> TrainingConfig:
    """The same training for every family: a wall-clock budget, or a fixed number of iterations in 2 epochs."""
    common = {"augmentation_scale": args.augmentation_scale, "validation_iterations": args.validation_iterations,
              "progress": False, "seed": args.seed, "output_bias": args.output_bias}
    if args.iterations is not None:
        return TrainingConfig(epochs=2, iterations_per_epoch=max(1, args.iterations // 2), **common)
    return TrainingConfig(budget_seconds=args.budget, **common)


def _option_texts(network_kwargs: dict | None) -> list[str]:
    """``key=value`` (value as JSON) for each family option, sorted by key: one spelling for run folders and tables."""
    return [f"{key}={json.dumps(value)}" for key, value in sorted((network_kwargs or {}).items())]


def _family_folder(
    base: Path, family: str, configuration_name: str, base_features: int, batch_size: int | None,
    patch_size: list[int] | None = None, seed: int = DEFAULT_SEED, output_bias: str = "prior",
    network_kwargs: dict | None = None,
) -> Path:
    """``base/runs/<family>[-<option>=<value>...][-zero][-seed<N>]``: the base plans with the network (width, patch,
    options) changed; data and split shared."""
    name = family + "".join(f"-{option}" for option in _option_texts(network_kwargs)) + ("-zero" if output_bias == "zero" else "") + ("" if seed == DEFAULT_SEED else f"-seed{seed}")
    folder = base / "runs" / name
    folder.mkdir(parents=True, exist_ok=True)
    plans = load_plans(base / "plans.json")
    configuration = plans.configuration(configuration_name).replace(network=family, network_kwargs=dict(network_kwargs or {}))
    if patch_size:
        plans_for_patch = dataclasses.replace(plans, configurations={**plans.configurations, configuration_name: configuration})
        override = TrainingConfig(patch_size=tuple(patch_size), batch_size=batch_size or configuration.batch_size)
        configuration = components.effective_configuration(plans_for_patch, configuration_name, override, 1)
    if base_features:
        features = features_for_base(base_features, configuration.n_stages, max(configuration.features_per_stage))
        configuration = configuration.replace(features_per_stage=features)
    if batch_size:
        configuration = configuration.replace(batch_size=batch_size)
    dataclasses.replace(plans, configurations={**plans.configurations, configuration_name: configuration}).save(
        folder / "plans.json"
    )
    for name in ("dataset.json", "fingerprint.json", "splits.json"):
        if (base / name).is_file():
            shutil.copy2(base / name, folder / name)
    if not (folder / "preprocessed").exists():
        (folder / "preprocessed").symlink_to((base / "preprocessed").resolve())
    return folder


def run(args: argparse.Namespace) -> None:
    spec = DATASETS[args.dataset]
    if args.dataset == "drive":
        _import_drive(spec["raw"])
    base = WORK / args.dataset
    configuration_name = spec["configuration"]
    prepare_results(spec["raw"], base, PrepareOptions(configurations=(configuration_name,), with_previous_stages=False,
                                                      workers=2, progress=False))
    families = args.families or [f for f in FAMILY_ORDER if f in list_networks()]
    for family in families:
        folder = _family_folder(
            base, family, configuration_name, args.base_features, args.batch_size, args.patch_size, args.seed,
            args.output_bias, args.network_kwargs,
        )
        plans = load_plans(folder / "plans.json")
        if args.output_bias == "prior" and plans.class_prior is None:
            raise SystemExit(f"{base / 'plans.json'} has no class_prior (planned by an older autounet): delete {base} "
                             "to plan and preprocess again, or pass --output-bias zero")
        configuration = plans.configuration(configuration_name)
        settings = {
            "dataset": args.dataset, "configuration": configuration_name, "fold": args.fold, "family": family,
            "seed": args.seed, "output_bias": args.output_bias, "network_kwargs": args.network_kwargs,
            "measure_only": args.measure_only, "threads": torch.get_num_threads(),
            "patch_size": list(configuration.patch_size), "features_per_stage": list(configuration.features_per_stage),
            "batch_size": configuration.batch_size, "augmentation_scale": args.augmentation_scale,
            "budget_s": None if args.iterations else args.budget, "iteration_budget": args.iterations,
        }
        conditions = {"waited_for_quiet_s": _wait_for_quiet(args.quiet_load, args.max_wait), "load_start": _load()}
        figures: dict = {}
        note = None
        try:
            figures.update(_measure(configuration, plans, args.steps))
            print(f"{family}: {figures['parameters']:,} parameters, step {figures['step_s']} s, "
                  f"peak {figures['peak_memory_mib']} MiB", flush=True)
            if not args.measure_only:
                fold_dir = folder / configuration_name / f"fold_{args.fold}"
                if args.fresh and fold_dir.exists():
                    shutil.rmtree(fold_dir)
                result = train_fold(folder, configuration_name, args.fold, _training_config(args), dataset=spec["raw"])
                figures.update(fold_figures(result))
                print(f"{family}: {result.iterations} iterations, Dice {figures['dice']}", flush=True)
        except Exception as error:  # one family failing must not stop the comparison; the record says why
            note = f"error: {type(error).__name__}: {error}"
            traceback.print_exc()
        conditions["load_end"] = _load()
        records.record_measurement(args, "families", figures, settings, conditions=conditions, note=note,
                                   plans_version=plans.plans_version)


def main() -> None:
    args = _parse()
    if args.dataset is None:
        raise SystemExit("name a dataset (hippocampus or drive)")
    run(args)


if __name__ == "__main__":
    main()
