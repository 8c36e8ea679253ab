"""Time ``autounet evaluate`` on a folder of label files against itself (default: the 208 Hippocampus labels).

Usage::

    python benchmarks/bench_evaluate.py [LABELS_DIR] [--workers N] [--repeats 3] [--nnunet]

Prints one JSON line: minimum and median wall time over the repeats of ``evaluate_folders`` (all metrics,
surface distances included; output files written to a temporary folder) and the machine load at the start.
With ``--nnunet``, also times nnU-Net v2's ``nnUNetv2_evaluate_simple`` (Dice/IoU/counts only, no surface
metrics) from the peer venv in ``benchmarks/_peer/venv``, when it is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from autounet.evaluation import evaluate_folders

HERE = Path(__file__).resolve().parent
DEFAULT_LABELS = HERE.parents[1] / "shared" / "datasets" / "Task04_Hippocampus" / "labelsTr"
NNUNET_EVALUATE = HERE / "_peer" / "venv" / "bin" / "nnUNetv2_evaluate_simple"


def _time_nnunet(labels_dir: Path, labels: list[str], workers: int, repeats: int) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        command = [str(NNUNET_EVALUATE), str(labels_dir), str(labels_dir), "-l", *labels,
                   "-np", str(workers), "-o", str(Path(tmp) / "summary.json")]
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels_dir", nargs="?", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nnunet", action="store_true", help="also time nnUNetv2_evaluate_simple from the peer venv")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = evaluate_folders(args.labels_dir, args.labels_dir, output=tmp, workers=args.workers, progress=False)
            times.append(time.perf_counter() - start)
    report = {
        "benchmark": "evaluate",
        "labels_dir": str(args.labels_dir),
        "cases": len(result.cases),
        "labels": list(result.labels),
        "workers": args.workers,
        "seconds_min": round(min(times), 3),
        "seconds_median": round(statistics.median(times), 3),
        "load_1min": load,
    }
    if args.nnunet and NNUNET_EVALUATE.is_file():
        nnunet_times = _time_nnunet(args.labels_dir, list(result.labels), args.workers or 1, args.repeats)
        report["nnunet_seconds_min"] = round(min(nnunet_times), 3)
        report["nnunet_seconds_median"] = round(statistics.median(nnunet_times), 3)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
