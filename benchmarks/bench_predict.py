"""Prediction benchmarks: Hippocampus end to end against nnU-Net v2, and the memory bound on a large CT volume.

Usage::

    python benchmarks/bench_predict.py hippocampus [--cases 52] [--repeats 2] [--workers 1] [--dtype auto]
                                                   [--no-mirroring] [--tile-batch-size N] [--cli]
    python benchmarks/bench_predict.py ct [--shape 300 512 512] [--classes 3] [--mirroring]
    python benchmarks/bench_predict.py agreement [--cases 52] [--model RESULTS/Dataset]

``hippocampus`` builds a model folder with nnU-Net's planned Hippocampus 3d_fullres network (4 stages, features
32-256, patch 40x56x40, random weights: the timing does not depend on them) and predicts the last 52 training images
(sorted by name, the cases nnU-Net's ``benchmarks/peer/time_predict.py`` uses) end to end: read, preprocess, sliding
window with mirroring (8 forward passes per tile), export to ``.nii.gz``. Model loading is timed separately, like
nnU-Net's ``init_s``; ``--cli`` instead runs ``autounet predict`` in a subprocess and times everything.

``ct`` predicts one synthetic 512x512x300 int16 CT (1 x 0.7 x 0.7 mm, resampled to 1 x 0.8 x 0.8 mm) with a small
network through ``autounet predict --workers 0`` in a fresh process and reports that process's peak resident memory
next to the sizes the bound in docs/inference.md is made of. ``agreement`` compares bfloat16 and float32 predictions of a trained model (Dice between the two label maps
and against the references) on the validation cases of ``--folds K`` (from the model's ``splits.json``).

Every mode prints JSON lines with wall time, this process tree's CPU time and how many cores other processes kept
busy meanwhile (the machine is shared; repeat when ``others_cores`` is high), and writes a record to
``benchmarks/results/`` (``predict``, ``predict_memory``, ``predict_agreement``). ``hippocampus`` compares with nnU-Net
only through nnU-Net's record of the same session and interface: ``benchmarks/peer/time_predict.py`` (API, what the
default here times) or ``time_predict.py --cli`` (against ``--cli``), same ``--machine``, same day.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import records  # noqa: E402

DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "Task04_Hippocampus"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values) - values[3] - values[4]  # minus idle and iowait


def _own_ticks() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return sum(u.ru_utime + u.ru_stime for u in usage) * CLOCK_TICKS


class Probe:
    """Wall time of a block, this process tree's CPU time and the cores other processes used meanwhile."""

    def __enter__(self) -> "Probe":
        self.start, self.busy, self.own = time.perf_counter(), _busy_ticks(), _own_ticks()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.start
        own = (_own_ticks() - self.own) / CLOCK_TICKS
        self.cpu = own
        self.others_cores = max(0.0, ((_busy_ticks() - self.busy) / CLOCK_TICKS - own) / self.wall)


def wait_for_quiet(max_busy: float, max_wait: float, window: float = 3.0) -> float:
    """Wait until other processes keep fewer than ``max_busy`` cores busy (at most ``max_wait`` s); return that load."""
    start = time.perf_counter()
    while True:
        busy, own = _busy_ticks(), _own_ticks()
        time.sleep(window)
        others = max(0.0, ((_busy_ticks() - busy) - (_own_ticks() - own)) / CLOCK_TICKS / window)
        if others < max_busy or time.perf_counter() - start > max_wait:
            return others
        print(f"waiting for a quiet machine: others use {others:.2f} cores", file=sys.stderr, flush=True)


def _hippocampus_plans(dataset_name: str = "Task04_Hippocampus"):
    """nnU-Net v2's 3d_fullres plan for Hippocampus (benchmarks/peer/reference_hippocampus/nnUNetPlans.json)."""
    from autounet.planners.plans import ChannelNormalization, ConfigurationPlan, Plans

    configuration = ConfigurationPlan(
        name="3d_fullres",
        spacing=(1.0, 1.0, 1.0),
        patch_size=(40, 56, 40),
        batch_size=7,
        median_image_size_in_voxels=(36.0, 50.5, 35.0),
        normalization=(ChannelNormalization("zscore"),),
        features_per_stage=(32, 64, 128, 256),
        kernel_sizes=((3, 3, 3),) * 4,
        strides=((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2)),
        n_conv_per_stage=(2, 2, 2, 2),
        n_conv_per_stage_decoder=(2, 2, 2),
        data_identifier="3d_fullres",
    )
    return Plans(
        dataset_name=dataset_name,
        channel_names=("MRI",),
        labels={"background": 0, "Anterior": 1, "Posterior": 2},
        transpose_forward=(0, 1, 2),
        transpose_backward=(0, 1, 2),
        original_median_spacing_after_transp=(1.0, 1.0, 1.0),
        original_median_shape_after_transp=(36.0, 50.0, 35.0),
        configurations={"3d_fullres": configuration},
    )


def _model_folder(folder: Path, plans, seed: int = 0) -> Path:
    """A model folder with one fold of random weights (as the trainer writes it)."""
    import torch

    from autounet.inference.model_folder import network_input_channels
    from autounet.networks import build_network
    from autounet.trained_fold.checkpoint import save_checkpoint

    plans.save(folder / "plans.json")
    for name, plan in plans.configurations.items():
        torch.manual_seed(seed)
        network = build_network(plan.to_dict(), network_input_channels(plans, plan), plans.num_classes)
        save_checkpoint(folder / name / "fold_0" / "checkpoint_final.pt", {
            "network_weights": network.state_dict(), "epoch": 0, "iteration": 0, "configuration": name,
            "fold": 0, "plans_version": plans.plans_version, "network": plan.network,
        })
    return folder


def _last_cases(dataset: Path, count: int, folder: Path) -> list[Path]:
    images = sorted(p for p in (dataset / "imagesTr").iterdir() if p.name.endswith(".nii.gz") and not p.name.startswith("."))
    chosen = images[-count:]
    folder.mkdir(parents=True, exist_ok=True)
    for path in chosen:
        os.symlink(path.resolve(), folder / path.name)
    return chosen


def _dtype(name: str):
    import torch

    return {"auto": "auto", "float32": None, "bfloat16": torch.bfloat16}[name]


def hippocampus(args: argparse.Namespace) -> None:
    from autounet.inference import Predictor

    work = Path(tempfile.mkdtemp(prefix="bench_predict_"))
    model_dir = _model_folder(work / "Task04_Hippocampus", _hippocampus_plans())
    _last_cases(args.dataset, args.cases, work / "input")
    times, others, runs = [], [], []
    for repeat in range(args.repeats):
        output = work / f"output{repeat}"
        quiet_before = wait_for_quiet(args.quiet_cores, args.max_wait)
        if args.cli:
            command = [sys.executable, "-c", "import sys; from autounet.cli import main; sys.exit(main(sys.argv[1:]))",
                       "predict", "-i", str(work / "input"), "-o", str(output), "-m", str(model_dir), "-f", "0",
                       "--device", "cpu", "--no-progress"]
            if args.workers is not None:
                command += ["--workers", str(args.workers)]
            if not args.mirroring:
                command.append("--no-mirroring")
            if args.tile_batch_size:
                command += ["--tile-batch-size", str(args.tile_batch_size)]
            with Probe() as probe:
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            init = None
        else:
            with Probe() as loading:
                predictor = Predictor.from_model_folder(
                    model_dir, folds=[0], device="cpu", mirroring=args.mirroring,
                    autocast_dtype=_dtype(args.dtype), tile_batch_size=args.tile_batch_size,
                )
            init = loading.wall
            with Probe() as probe:
                report = predictor.predict_folder(work / "input", output, workers=args.workers, progress=False)
            assert report.ok, report.failed
            per_case = list(report.case_seconds.values())
        times.append(probe.wall)
        others.append(probe.others_cores)
        result = {
            "repeat": repeat, "workers": None if args.cli else report.settings["workers"],
            "wall_s": round(probe.wall, 2), "per_case_s": round(probe.wall / args.cases, 3), "cpu_s": round(probe.cpu, 1),
            "others_cores": round(probe.others_cores, 2), "others_cores_before": round(quiet_before, 2),
            "init_s": None if init is None else round(init, 2),
        }
        if not args.cli:
            result["case_latency_median_s"] = round(statistics.median(per_case), 3)
        runs.append(result)
        print(json.dumps(result), flush=True)
    interface = "cli" if args.cli else "api"
    figures = {"wall_s_min": round(min(times), 2), "wall_s_median": round(statistics.median(times), 2),
               "wall_s_all": [round(t, 2) for t in times], "per_case_s": round(min(times) / args.cases, 3),
               "repeats": args.repeats, "init_s": runs[0]["init_s"]}
    records.record_measurement(args, "predict", figures, {
        "interface": interface, "cases": args.cases, "mirroring": args.mirroring, "precision": args.dtype,
        "workers": args.workers, "tile_batch_size": args.tile_batch_size, "configuration": "3d_fullres",
        "network_features": [32, 64, 128, 256], "torch_threads": __import__("torch").get_num_threads(),
        "description": "autounet, `autounet predict` CLI" if args.cli else f"autounet, Python API ({args.dtype})",
    }, conditions={"others_cores": f"{min(others):.2f}-{max(others):.2f}", "repetitions": runs})
    records.compare_with_peer(args, "predict", "wall_s_min", figures["wall_s_min"],
                              "benchmarks/peer/time_predict.py" + (" --cli" if args.cli else ""),
                              settings__interface=interface, settings__mirroring=args.mirroring)


def ct(args: argparse.Namespace) -> None:
    """Peak memory of ``autounet predict`` on one large synthetic CT, measured in a fresh child process."""
    from autounet.io import Geometry, write_image
    from autounet.planners.plans import ChannelNormalization, ConfigurationPlan, Plans

    shape = tuple(args.shape)
    work = Path(tempfile.mkdtemp(prefix="bench_predict_ct_"))
    rng = np.random.default_rng(0)
    volume = np.full(shape, -1000, np.int16)  # air outside the body: cropping keeps the body's box
    _, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    body = ((y - shape[1] / 2) / (shape[1] * 0.45)) ** 2 + ((x - shape[2] / 2) / (shape[2] * 0.45)) ** 2 <= 1
    for index in range(shape[0]):
        volume[index][body[0]] = rng.normal(40, 20, size=int(body.sum())).astype(np.int16)
    write_image(work / "input" / "ct.nii.gz", volume, Geometry(spacing=(1.0, 0.7, 0.7)))
    del volume, body
    configuration = ConfigurationPlan(
        name="3d_fullres", spacing=(1.0, 0.8, 0.8), patch_size=tuple(args.patch), batch_size=2,
        median_image_size_in_voxels=(300.0, 448.0, 448.0),
        normalization=(ChannelNormalization("ct", clip_range=(-100.0, 300.0), mean=60.0, std=50.0),),
        features_per_stage=(4, 8, 16), kernel_sizes=((3, 3, 3),) * 3, strides=((1, 1, 1), (2, 2, 2), (2, 2, 2)),
        n_conv_per_stage=(1, 1, 1), n_conv_per_stage_decoder=(1, 1), data_identifier="3d_fullres",
    )
    labels = {"background": 0, **{f"organ{i}": i for i in range(1, args.classes)}}
    plans = Plans("CT", ("CT",), labels, (0, 1, 2), (0, 1, 2), (1.0, 0.7, 0.7), shape, {"3d_fullres": configuration})
    model_dir = _model_folder(work / "CT", plans)
    command = [sys.executable, "-c", "import sys; from autounet.cli import main; sys.exit(main(sys.argv[1:]))",
               "predict", "-i", str(work / "input"), "-o", str(work / "output"), "-m", str(model_dir), "-f", "0",
               "--device", "cpu", "--workers", "0", "--no-progress"]
    if not args.mirroring:
        command.append("--no-mirroring")
    if args.save_probabilities:
        command.append("--save-probabilities")
    baseline = [sys.executable, "-c", "import torch, autounet.inference, scipy.ndimage, SimpleITK"]
    subprocess.run(baseline, check=True)
    baseline_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with Probe() as probe:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    voxels = int(np.prod(shape))
    records.record_measurement(args, "predict_memory", {
        "wall_s": round(probe.wall, 1), "peak_rss_mb": round(peak), "import_baseline_mb": round(baseline_mb),
        "input_int16_mb": round(voxels * 2 / 2**20), "float32_volume_mb": round(voxels * 4 / 2**20),
    }, {"shape": shape, "classes": args.classes, "patch": args.patch, "mirroring": args.mirroring,
        "save_probabilities": args.save_probabilities, "interface": "cli"},
        conditions={"others_cores": round(probe.others_cores, 2)})


def agreement(args: argparse.Namespace) -> None:
    """Dice between bfloat16 and float32 predictions of a trained model, and of each against the references."""
    import torch

    from autounet.evaluation import dice
    from autounet.inference import Predictor
    from autounet.io import read_image

    splits = args.model / "splits.json"
    if splits.is_file() and args.folds and len(args.folds) == 1 and str(args.folds[0]).isdigit():
        # the fold's validation cases: the model has not seen them
        names = json.loads(splits.read_text())[int(args.folds[0])]["val"]
        images = [args.dataset / "imagesTr" / f"{name}.nii.gz" for name in sorted(names)]
    else:
        images = sorted(p for p in (args.dataset / "imagesTr").iterdir() if p.name.endswith(".nii.gz"))[-args.cases:]
    runs = {}
    for name, dtype in (("float32", None), ("bfloat16", torch.bfloat16)):
        predictor = Predictor.from_model_folder(args.model, folds=args.folds, device="cpu", autocast_dtype=dtype)
        with Probe() as probe:
            runs[name] = [predictor.predict_image(read_image(p), return_probabilities=False)[0] for p in images]
        print(json.dumps({"bench": "predict_dtype", "dtype": name, "wall_s": round(probe.wall, 1),
                          "others_cores": round(probe.others_cores, 2)}), flush=True)
    labels = [v for v in predictor.label_values if v != 0]
    references = [read_image(args.dataset / "labelsTr" / p.name).data[0] for p in images]
    result = {"bench": "predict_dtype_agreement", "cases": len(images)}
    for label in labels:
        result[f"dice_bf16_vs_fp32_label{label}"] = round(float(np.nanmean(
            [dice(a == label, b == label) for a, b in zip(runs["float32"], runs["bfloat16"])])), 5)
        for name in runs:
            result[f"dice_{name}_vs_reference_label{label}"] = round(float(np.nanmean(
                [dice(r == label, p == label) for r, p in zip(references, runs[name])])), 5)
    result["identical_voxels"] = float(np.mean([np.mean(a == b) for a, b in zip(runs["float32"], runs["bfloat16"])]))
    records.record_measurement(args, "predict_agreement", result, {"model": str(args.model), "folds": args.folds})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    hip = modes.add_parser("hippocampus")
    hip.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    hip.add_argument("--cases", type=int, default=52)
    hip.add_argument("--repeats", type=int, default=2)
    hip.add_argument("--workers", type=int, default=None, help="cases in flight (default: autounet's automatic choice)")
    hip.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto")
    hip.add_argument("--no-mirroring", dest="mirroring", action="store_false")
    hip.add_argument("--tile-batch-size", type=int, default=None)
    hip.add_argument("--cli", action="store_true", help="time `autounet predict` in a subprocess (start-up included)")
    hip.add_argument("--quiet-cores", type=float, default=0.5, help="wait until others use fewer cores than this")
    hip.add_argument("--max-wait", type=float, default=300.0, help="longest wait for a quiet machine, seconds")
    records.add_record_arguments(hip)
    hip.set_defaults(func=hippocampus)
    big = modes.add_parser("ct")
    big.add_argument("--shape", type=int, nargs=3, default=[300, 512, 512])
    big.add_argument("--patch", type=int, nargs=3, default=[128, 128, 128])
    big.add_argument("--classes", type=int, default=3)
    big.add_argument("--mirroring", action="store_true", help="mirror (8x the forward passes; memory is the same)")
    big.add_argument("--save-probabilities", action="store_true")
    records.add_record_arguments(big)
    big.set_defaults(func=ct)
    agree = modes.add_parser("agreement")
    agree.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    agree.add_argument("--model", type=Path, required=True, help="a trained RESULTS/<dataset> folder")
    agree.add_argument("--folds", nargs="+", default=None)
    agree.add_argument("--cases", type=int, default=52)
    records.add_record_arguments(agree)
    agree.set_defaults(func=agreement)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
