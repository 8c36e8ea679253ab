"""Preprocessing benchmarks: end-to-end time, resampling fast path, memory bound, storage formats.

Usage::

    python benchmarks/bench_preprocess.py pipeline [DATASET] [--workers 2] [--repeats 3] [--cli] [--peer]
    python benchmarks/bench_preprocess.py resampling [--repeats 3]
    python benchmarks/bench_preprocess.py memory [--workers 2]
    python benchmarks/bench_preprocess.py storage [--folder DIR]

``pipeline`` times fingerprint + plan + preprocess (3d_fullres and 2d) of a dataset (default: the 208
shared Hippocampus cases) from scratch in a fresh folder, through the Python API or, with ``--cli``, as the
three ``autounet`` commands in subprocesses (interpreter start-up included, like nnU-Net's
``nnUNetv2_plan_and_preprocess``); ``--peer`` interleaves runs of that nnU-Net command (into a private
folder) so both see the same machine load. ``resampling`` measures agreement and speed of the separable fast path
against the scipy spline reference. ``memory`` preprocesses large synthetic cases with several workers and
reports the peak RSS of the workers next to the size of one case. ``storage`` times random patch reads
from memory-mapped ``.npy`` and, when installed, blosc2 and zarr.

Every mode prints JSON lines: wall time, CPU time of this process and its children (immune to other load),
and how many cores other processes kept busy meanwhile, and writes records to ``benchmarks/results/`` (``pipeline``:
one per tool to ``preprocess/``, nnU-Net's measured in the same run; the other modes to ``preprocess_<mode>/``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
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


# ----------------------------------------------------------------------------------------------- machine load
def _busy_ticks() -> int:
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


def _own_cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Meter:
    """Wall time, CPU time of this process tree, and cores used by others during a block."""

    def __enter__(self) -> "Meter":
        self.wall, self.cpu, self.ticks = time.perf_counter(), _own_cpu_seconds(), _busy_ticks()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = _own_cpu_seconds() - self.cpu
        busy = (_busy_ticks() - self.ticks) / CLOCK_TICKS
        self.others_cores = max(0.0, (busy - self.cpu) / max(self.wall, 1e-9))


def wait_for_quiet(max_cores: float, max_wait: float) -> float:
    """Wait until other processes use fewer than ``max_cores`` cores (over 3 s); return what was seen."""
    start = time.perf_counter()
    while True:
        ticks, cpu = _busy_ticks(), _own_cpu_seconds()
        time.sleep(3.0)
        others = max(0.0, ((_busy_ticks() - ticks) / CLOCK_TICKS - (_own_cpu_seconds() - cpu)) / 3.0)
        if others < max_cores or time.perf_counter() - start > max_wait:
            return round(others, 2)
        print(f"waiting for a quiet machine: others use {others:.2f} cores", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------- pipeline
def _pipeline_api(dataset_dir: Path, output: Path, workers: int) -> dict[str, float]:
    from autounet.dataset import load_dataset
    from autounet.fingerprint import compute_fingerprint
    from autounet.planners import plan_experiment
    from autounet.preprocessing import preprocess_dataset

    times = {}
    start = time.perf_counter()
    dataset = load_dataset(dataset_dir)
    fingerprint = compute_fingerprint(dataset, output=output / "fingerprint.json", workers=workers, progress=False)
    times["fingerprint_s"] = time.perf_counter() - start
    plans = plan_experiment(fingerprint)
    plans.save(output / "plans.json")
    times["plan_s"] = time.perf_counter() - start - times["fingerprint_s"]
    preprocess_dataset(dataset, plans, ["3d_fullres", "2d"], output / "preprocessed", workers=workers, progress=False)
    times["preprocess_s"] = time.perf_counter() - start - times["fingerprint_s"] - times["plan_s"]
    return times


def _pipeline_cli(dataset_dir: Path, output: Path, workers: int) -> dict[str, float]:
    exe = [shutil.which("autounet") or str(Path(sys.executable).parent / "autounet")]
    commands = {
        "fingerprint_s": [*exe, "fingerprint", str(dataset_dir), "-o", str(output / "fingerprint.json"),
                          "--workers", str(workers), "--no-progress"],
        "plan_s": [*exe, "plan", "--fingerprint", str(output / "fingerprint.json"),
                   "--dataset-json", str(dataset_dir / "dataset.json"), "-o", str(output / "plans.json")],
        "preprocess_s": [*exe, "preprocess", str(dataset_dir), "--plans", str(output / "plans.json"),
                         "-c", "3d_fullres", "2d", "-o", str(output / "preprocessed"), "--workers", str(workers),
                         "--no-progress"],
    }
    times = {}
    for name, command in commands.items():
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times[name] = time.perf_counter() - start
    return times


PEER = Path(__file__).resolve().parent / "_peer"


def _peer_plan_and_preprocess(output: Path, workers: int) -> dict[str, float]:
    """nnU-Net v2's ``nnUNetv2_plan_and_preprocess -d 4 -c 3d_fullres 2d -np N`` into a private folder.

    Uses the peer set up by ``benchmarks/peer/setup_peer.sh`` (its venv and converted raw data, read only).
    """
    env = {**os.environ, "nnUNet_raw": str(PEER / "nnUNet_raw"), "nnUNet_preprocessed": str(output / "pre"),
           "nnUNet_results": str(output / "results")}
    command = [str(PEER / "venv" / "bin" / "nnUNetv2_plan_and_preprocess"), "-d", "4", "-c", "3d_fullres", "2d",
               "-np", str(workers), "--no_pbar"]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {"total_s": time.perf_counter() - start}


def bench_pipeline(args: argparse.Namespace) -> None:
    runners = {"autounet " + ("cli" if args.cli else "api"): _pipeline_cli if args.cli else _pipeline_api}
    if args.peer:
        runners["nnU-Net v2 plan_and_preprocess"] = lambda dataset, output, workers: _peer_plan_and_preprocess(output, workers)
    runs: dict[str, list[dict]] = {name: [] for name in runners}
    for _ in range(args.repeats):
        for name, runner in runners.items():  # interleaved, so both see the same machine load
            others_before = wait_for_quiet(args.quiet_cores, args.max_wait) if args.quiet_cores else None
            output = Path(tempfile.mkdtemp(prefix="bench_preprocess_"))
            try:
                with Meter() as meter:
                    parts = runner(args.dataset, output, args.workers)
            finally:
                shutil.rmtree(output, ignore_errors=True)
            runs[name].append({"wall_s": meter.wall, "cpu_s": meter.cpu, "others_cores": meter.others_cores,
                               "others_cores_before": others_before, **parts})
    for name, results in runs.items():
        walls = [r["wall_s"] for r in results]
        parts = {part: round(statistics.median(r[part] for r in results), 2)
                 for part in ("fingerprint_s", "plan_s", "preprocess_s") if part in results[0]}
        tool = records.NNUNET if name.startswith("nnU-Net") else records.AUTOUNET
        records.record_measurement(args, "preprocess", {
            "wall_s_min": round(min(walls), 2), "wall_s_median": round(statistics.median(walls), 2),
            "cpu_s_median": round(statistics.median(r["cpu_s"] for r in results), 2), "repeats": len(results),
            **({"parts_s": {k[:-2]: v for k, v in parts.items()}} if parts else {}),
        }, {"interface": "cli" if (args.cli or tool == records.NNUNET) else "api", "dataset": args.dataset.name,
            "workers": args.workers, "configurations": ["3d_fullres", "2d"], "interleaved": len(runners) > 1,
            "description": name}, tool=tool,
            conditions={"runs": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()} for r in results]})


# -------------------------------------------------------------------------------------------------- resampling
def _smooth(shape: tuple[int, ...], seed: int) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    return (ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), 2.0) * 300).astype(np.float32)


def _labels(shape: tuple[int, ...], seed: int) -> np.ndarray:
    smooth = _smooth(shape, seed)
    return np.digitize(smooth, np.quantile(smooth, [0.6, 0.85, 0.95])).astype(np.int8)


def _timed(function, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_resampling(args: argparse.Namespace) -> None:
    from autounet.preprocessing.resampling import resample_data, resample_labels, resample_probabilities

    cases = [
        ("isotropic 128x192x192 -> 1.5x", (128, 192, 192), (1.0, 1.0, 1.0), (2 / 3, 2 / 3, 2 / 3)),
        ("CT-like 96x256x256 0.8mm -> 1mm", (96, 256, 256), (2.5, 0.8, 0.8), (1.0, 1.0, 1.0)),
        ("anisotropic 40x320x320 (5 mm) -> 0.7 mm in-plane", (40, 320, 320), (5.0, 0.9, 0.9), (5.0, 0.7, 0.7)),
        ("downsample 160x224x224 -> 0.6x", (160, 224, 224), (1.0, 1.0, 1.0), (5 / 3, 5 / 3, 5 / 3)),
    ]
    for name, shape, spacing, target in cases:
        from autounet.preprocessing.resampling import compute_new_shape

        new_shape = compute_new_shape(shape, spacing, target)
        data = _smooth((1, *shape), seed=1)
        seg = _labels(shape, seed=2)
        ref_time, reference = _timed(lambda: resample_data(data, new_shape, spacing, target, backend="reference"), 1)
        fast_time, fast = _timed(lambda: resample_data(data, new_shape, spacing, target, backend="separable"), args.repeats)
        error = np.abs(reference - fast)
        ref_seg_time, ref_seg = _timed(lambda: resample_labels(seg, new_shape, spacing, target, backend="reference"), 1)
        fast_seg_time, fast_seg = _timed(lambda: resample_labels(seg, new_shape, spacing, target, backend="separable"), args.repeats)
        dice = []
        for value in (1, 2, 3):
            a, b = ref_seg == value, fast_seg == value
            dice.append(round(float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1)), 6))
        probabilities = np.stack([fast_seg == v for v in range(4)]).astype(np.float32)
        ref_p_time, ref_p = _timed(lambda: resample_probabilities(probabilities, shape, target, spacing, backend="reference"), 1)
        fast_p_time, fast_p = _timed(lambda: resample_probabilities(probabilities, shape, target, spacing, backend="separable"), args.repeats)
        records.record_measurement(args, "preprocess_resampling", {
            "case": name, "shape": list(shape), "new_shape": list(new_shape),
            "data_reference_s": round(ref_time, 3), "data_separable_s": round(fast_time, 3),
            "data_max_abs_error": float(error.max()), "data_max_rel_error": float(error.max() / np.ptp(data)),
            "labels_reference_s": round(ref_seg_time, 3), "labels_separable_s": round(fast_seg_time, 3),
            "labels_mismatch_fraction": float(np.mean(ref_seg != fast_seg)), "labels_dice": dice,
            "labels_new_values": sorted(set(np.unique(fast_seg).tolist()) - set(np.unique(seg).tolist())),
            "probabilities_reference_s": round(ref_p_time, 3), "probabilities_separable_s": round(fast_p_time, 3),
            "probabilities_max_abs_error": float(np.abs(ref_p - fast_p).max()),
        }, {"repeats": args.repeats})


# ------------------------------------------------------------------------------------------------------ memory
def _write_large_dataset(root: Path, cases: int, shape: tuple[int, ...]) -> Path:
    from autounet.io import Geometry, write_image
    from autounet.jsonio import write_json

    training = []
    for index in range(cases):
        data = (_smooth((2, *shape), seed=index) + 500).astype(np.int16)
        seg = _labels(shape, seed=100 + index).astype(np.uint8)
        geometry = Geometry(spacing=(2.5, 0.8, 0.8))
        write_image(root / "imagesTr" / f"big_{index:03d}.nii.gz", data, geometry, compress=False)
        write_image(root / "labelsTr" / f"big_{index:03d}.nii.gz", seg[None], geometry, compress=False)
        training.append({"image": f"./imagesTr/big_{index:03d}.nii.gz", "label": f"./labelsTr/big_{index:03d}.nii.gz"})
    write_json(root / "dataset.json", {
        "name": "large_synthetic", "modality": {"0": "CT", "1": "MRI"},
        "labels": {"0": "background", "1": "a", "2": "b", "3": "c"}, "training": training, "numTraining": cases,
    })
    return root


def bench_memory(args: argparse.Namespace) -> None:
    from autounet.planners.plans import ChannelNormalization, ConfigurationPlan, Plans
    from autounet.preprocessing import open_preprocessed, preprocess_dataset

    shape = tuple(args.shape)
    root = Path(tempfile.mkdtemp(prefix="bench_memory_"))
    try:
        _write_large_dataset(root / "data", args.cases, shape)
        normalization = (ChannelNormalization("ct", clip_range=(0.0, 1000.0), mean=500.0, std=200.0),
                         ChannelNormalization("zscore"))
        configuration = ConfigurationPlan(
            name="3d_fullres", spacing=(1.0, 1.0, 1.0), patch_size=(64, 64, 64), batch_size=2,
            median_image_size_in_voxels=(1.0, 1.0, 1.0), normalization=normalization, features_per_stage=(32,),
            kernel_sizes=((3, 3, 3),), strides=((1, 1, 1),), n_conv_per_stage=(2,), n_conv_per_stage_decoder=(),
        )
        plans = Plans("large_synthetic", ("CT", "MRI"), {"background": 0, "a": 1, "b": 2, "c": 3}, (0, 1, 2),
                      (0, 1, 2), (2.5, 0.8, 0.8), tuple(float(s) for s in shape), {"3d_fullres": configuration})
        with Meter() as meter:
            folders = preprocess_dataset(root / "data", plans, ["3d_fullres"], root / "out", workers=args.workers,
                                         progress=False, resampling_backend=args.backend)
        store = open_preprocessed(folders["3d_fullres"])
        data, seg, _ = store.load(store.case_ids[0])
        input_mb = 2 * np.prod(shape) * 4 / 1e6
        output_mb = (data.nbytes + seg.nbytes) / 1e6
        peak_child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        records.record_measurement(args, "preprocess_memory", {
            "cases": args.cases, "workers": args.workers, "backend": args.backend,
            "input_shape": list(shape), "output_shape": list(data.shape),
            "case_input_float32_mb": round(input_mb, 1), "case_output_mb": round(output_mb, 1),
            "peak_rss_per_worker_mb": round(peak_child_mb, 1),
            "peak_rss_over_case_in_plus_out": round(peak_child_mb / (input_mb + output_mb), 2),
            "wall_s": round(meter.wall, 2), "cpu_s": round(meter.cpu, 2), "others_cores": round(meter.others_cores, 2),
        })
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------- storage
def bench_storage(args: argparse.Namespace) -> None:
    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench_storage_"))
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    layouts = {
        "3d 40x56x40 from (1, 160, 320, 320)": ((1, 160, 320, 320), (1, 40, 56, 40)),
        "2d 512x512 from (1, 48, 1024, 1024)": ((1, 48, 1024, 1024), (1, 1, 512, 512)),
    }
    try:
        for name, (shape, patch) in layouts.items():
            array = _smooth(shape, seed=3)
            starts = [tuple(int(rng.integers(0, s - p + 1)) for s, p in zip(shape, patch)) for _ in range(args.reads)]
            slices = [tuple(slice(a, a + p) for a, p in zip(start, patch)) for start in starts]
            writers = {"npy (mmap)": _npy_format(folder), "blosc2": _blosc2_format(folder, patch),
                       "zarr": _zarr_format(folder, patch)}
            for fmt, backend in writers.items():
                if backend is None:
                    print(json.dumps({"benchmark": "storage", "layout": name, "format": fmt, "skipped": "not installed"}))
                    continue
                write, open_array, path = backend
                start = time.perf_counter()
                write(array)
                write_s = time.perf_counter() - start
                times = []
                _evict_from_page_cache(Path(path))  # first pass: from disk; second: page cache (later epochs)
                for _ in range(2):
                    start = time.perf_counter()
                    stored = open_array()
                    for index in slices:
                        np.array(stored[index], copy=True)
                    times.append((time.perf_counter() - start) / len(slices))
                size = sum(p.stat().st_size for p in Path(path).rglob("*")) if Path(path).is_dir() else Path(path).stat().st_size
                records.record_measurement(args, "preprocess_storage", {
                    "write_s": round(write_s, 3), "size_mb": round(size / 1e6, 1), "raw_mb": round(array.nbytes / 1e6, 1),
                    "patch_read_ms_disk": round(times[0] * 1e3, 3), "patch_read_ms_cached": round(times[1] * 1e3, 3),
                }, {"layout": name, "format": fmt, "reads": args.reads})
                shutil.rmtree(path, ignore_errors=True) if Path(path).is_dir() else Path(path).unlink()
    finally:
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)


def _evict_from_page_cache(path: Path) -> None:
    """Drop this file's (or folder's) pages from the OS cache so the next read comes from disk."""
    for file in ([path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]):
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _npy_format(folder: Path):
    path = folder / "array.npy"
    return (lambda a: np.save(path, a)), (lambda: np.load(path, mmap_mode="r")), path


def _blosc2_format(folder: Path, patch: tuple[int, ...]):
    try:
        import blosc2
    except ImportError:
        return None
    path = folder / "array.b2nd"
    # nnU-Net v2's choice: chunks about one patch, blocks a fraction of it, lz4/zstd via cparams defaults.
    chunks = tuple(min(p * 2, 2**20) for p in patch)
    blocks = tuple(max(1, p // 2) for p in patch)

    def write(array):
        blosc2.asarray(np.ascontiguousarray(array), urlpath=str(path), mode="w", chunks=chunks, blocks=blocks,
                       cparams={"codec": blosc2.Codec.ZSTD, "clevel": 8, "nthreads": 1})

    return write, (lambda: blosc2.open(str(path), mode="r", dparams={"nthreads": 1})), path


def _zarr_format(folder: Path, patch: tuple[int, ...]):
    try:
        import zarr
    except ImportError:
        return None
    path = folder / "array.zarr"

    def write(array):
        z = zarr.open_array(str(path), mode="w", shape=array.shape, chunks=patch, dtype=array.dtype)
        z[...] = array

    return write, (lambda: zarr.open_array(str(path), mode="r")), path


# -------------------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    pipeline = sub.add_parser("pipeline", help="fingerprint + plan + preprocess end to end")
    pipeline.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    pipeline.add_argument("--workers", type=int, default=2)
    pipeline.add_argument("--repeats", type=int, default=3)
    pipeline.add_argument("--cli", action="store_true", help="run the three autounet commands as subprocesses")
    pipeline.add_argument("--peer", action="store_true",
                          help="also time nnU-Net v2 plan_and_preprocess (benchmarks/_peer), interleaved")
    pipeline.add_argument("--quiet-cores", type=float, default=0.0,
                          help="before each repeat wait until others use fewer cores than this (0: do not wait)")
    pipeline.add_argument("--max-wait", type=float, default=300.0)
    resampling = sub.add_parser("resampling", help="separable fast path vs the scipy reference")
    resampling.add_argument("--repeats", type=int, default=3)
    memory = sub.add_parser("memory", help="peak worker memory on large synthetic cases")
    memory.add_argument("--workers", type=int, default=2)
    memory.add_argument("--cases", type=int, default=4)
    memory.add_argument("--shape", type=int, nargs=3, default=(120, 320, 320))
    memory.add_argument("--backend", default="auto")
    storage = sub.add_parser("storage", help="random patch reads: mmap .npy, blosc2, zarr")
    storage.add_argument("--folder", type=Path, default=None)
    storage.add_argument("--reads", type=int, default=200)
    for mode in (pipeline, resampling, memory, storage):
        records.add_record_arguments(mode)
    args = parser.parse_args()
    {"pipeline": bench_pipeline, "resampling": bench_resampling, "memory": bench_memory, "storage": bench_storage}[args.mode](args)


if __name__ == "__main__":
    main()
