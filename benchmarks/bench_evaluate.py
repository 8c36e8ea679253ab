"""Time ``autounet evaluate`` on a folder of label files against itself (default: the 208 Hippocampus labels).

Usage::

    python benchmarks/bench_evaluate.py [LABELS_DIR] [--workers N] [--repeats 3] [--cli] [--nnunet] [--machine L]

Times autounet's evaluation of every label file against itself (all metrics, surface distances included; outputs
written to a temporary folder): through the Python API (``evaluate_folders``, in-process) by default, or with
``--cli`` as the command ``autounet evaluate`` in a subprocess, start-up included. With ``--nnunet`` nnU-Net v2 is
timed in the same run through the same kind of interface, from the peer venv in ``benchmarks/_peer/venv``: the
command ``nnUNetv2_evaluate_simple`` against ``--cli``, its function ``compute_metrics_on_folder_simple`` in one
process (its imports excluded, as ours are) against the API. nnU-Net computes Dice, IoU and counts only, autounet
also the surface distances, so autounet does more work per case. One record per tool goes to
``benchmarks/results/evaluate/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import records  # noqa: E402

DEFAULT_LABELS = HERE.parents[1] / "shared" / "datasets" / "Task04_Hippocampus" / "labelsTr"
PEER_BIN = HERE / "_peer" / "venv" / "bin"
#: Runs in the peer venv: imports first (not timed, like the already imported autounet of the API mode), then the
#: evaluation ``repeats`` times; prints the seconds of each as JSON.
NNUNET_API_SNIPPET = """
import json, sys, tempfile, time
from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder_simple
folder, labels, workers, repeats = sys.argv[1], [int(v) for v in sys.argv[2].split(",")], int(sys.argv[3]), int(sys.argv[4])
times = []
with tempfile.TemporaryDirectory() as tmp:
    for _ in range(repeats):
        start = time.perf_counter()
        compute_metrics_on_folder_simple(folder, folder, labels, tmp + "/summary.json", num_processes=workers)
        times.append(time.perf_counter() - start)
print(json.dumps(times))
"""
AUTOUNET_METRICS = "Dice, IoU, precision, recall, specificity, HD95, ASSD, NSD, counts"
NNUNET_METRICS = "Dice, IoU, counts"


def _time_autounet(labels_dir: Path, workers: int | None, repeats: int, cli: bool) -> tuple[list[float], int, list]:
    from autounet.evaluation import evaluate_folders

    times, result = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            start = time.perf_counter()
            if cli:
                executable = shutil.which("autounet") or str(Path(sys.executable).parent / "autounet")
                command = [executable, "evaluate", str(labels_dir), str(labels_dir), "-o", str(Path(tmp) / str(repeat)),
                           "--no-progress"] + (["--workers", str(workers)] if workers is not None else [])
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            else:
                result = evaluate_folders(labels_dir, labels_dir, output=tmp, workers=workers, progress=False)
            times.append(time.perf_counter() - start)
        if result is None:  # the CLI's cases and labels, from the summary it wrote
            result = evaluate_folders(labels_dir, labels_dir, output=Path(tmp) / "count", workers=workers, progress=False)
    return times, len(result.cases), list(result.labels)


def _time_nnunet(labels_dir: Path, labels: list[str], workers: int, repeats: int, cli: bool) -> list[float]:
    if cli:
        times = []
        with tempfile.TemporaryDirectory() as tmp:
            command = [str(PEER_BIN / "nnUNetv2_evaluate_simple"), str(labels_dir), str(labels_dir), "-l", *labels,
                       "-np", str(workers), "-o", str(Path(tmp) / "summary.json")]
            for _ in range(repeats):
                start = time.perf_counter()
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times.append(time.perf_counter() - start)
        return times
    completed = subprocess.run([str(PEER_BIN / "python"), "-c", NNUNET_API_SNIPPET, str(labels_dir), ",".join(labels),
                                str(workers), str(repeats)], check=True, capture_output=True, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels_dir", nargs="?", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cli", action="store_true", help="time the commands (start-up included) instead of the APIs")
    parser.add_argument("--nnunet", action="store_true", help="also time nnU-Net v2 from the peer venv, same interface")
    records.add_record_arguments(parser)
    args = parser.parse_args()
    if args.nnunet and not (PEER_BIN / "python").is_file():
        raise SystemExit(f"{PEER_BIN / 'python'} not found: run 'bash benchmarks/peer/setup_peer.sh' first")
    interface = "cli" if args.cli else "api"
    load = os.getloadavg()[0]
    times, cases, labels = _time_autounet(args.labels_dir, args.workers, args.repeats, args.cli)
    settings = {"interface": interface, "labels_dir": str(args.labels_dir), "cases": cases, "labels": labels}
    conditions = {"load_1min_start": load, "load_1min_end": os.getloadavg()[0]}
    records.record_measurement(args, "evaluate", _figures(times), {
        **settings, "workers": args.workers, "metrics": AUTOUNET_METRICS,
        "description": "`autounet evaluate`" if args.cli else "`evaluate_folders`"}, conditions=conditions)
    if args.nnunet:
        workers = args.workers or 1
        peer_times = _time_nnunet(args.labels_dir, labels, workers, args.repeats, args.cli)
        records.record_measurement(args, "evaluate", _figures(peer_times), {
            **settings, "workers": workers, "metrics": NNUNET_METRICS,
            "description": "`nnUNetv2_evaluate_simple`" if args.cli else "`compute_metrics_on_folder_simple`"},
            tool=records.NNUNET, conditions=conditions)


def _figures(times: list[float]) -> dict:
    return {"wall_s_min": round(min(times), 3), "wall_s_median": round(statistics.median(times), 3),
            "wall_s_all": [round(t, 3) for t in times], "repeats": len(times)}


if __name__ == "__main__":
    main()
