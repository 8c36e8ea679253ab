"""Time autounet's fingerprint of a dataset (default: the 208 shared Hippocampus cases) and write a record.

Usage::

    python benchmarks/bench_fingerprint.py [DATASET] [--workers N] [--repeats 3] [--cli] [--machine LABEL]

Every repeat recomputes (the reuse cache is bypassed). By default the Python API (``compute_fingerprint``, no
interpreter start-up) is timed; with ``--cli`` the command ``autounet fingerprint`` in a subprocess, start-up included,
which is what ``benchmarks/peer/time_fingerprint.py`` times of nnU-Net (``nnUNetv2_extract_fingerprint``): compare
CLI with CLI. The record goes to ``benchmarks/results/fingerprint/``; with a record of nnU-Net from this session
(same ``--machine``, same day) the ratio is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import records  # noqa: E402

DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "Task04_Hippocampus"


def _time_api(dataset_dir: Path, workers: int | None) -> float:
    from autounet.dataset import load_dataset
    from autounet.fingerprint import compute_fingerprint

    start = time.perf_counter()
    compute_fingerprint(load_dataset(dataset_dir), workers=workers, progress=False)
    return time.perf_counter() - start


def _time_cli(dataset_dir: Path, workers: int | None, output: Path) -> float:
    executable = shutil.which("autounet") or str(Path(sys.executable).parent / "autounet")
    command = [executable, "fingerprint", str(dataset_dir), "-o", str(output), "--no-progress"]
    if workers is not None:
        command += ["--workers", str(workers)]
    output.unlink(missing_ok=True)  # from scratch: no reuse of an earlier fingerprint
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _cases(dataset_dir: Path) -> int:
    from autounet.dataset import load_dataset

    return len(load_dataset(dataset_dir).training)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cli", action="store_true", help="time `autounet fingerprint` in a subprocess (start-up included)")
    records.add_record_arguments(parser)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            if args.cli:
                times.append(_time_cli(args.dataset, args.workers, Path(tmp) / f"fingerprint_{repeat}.json"))
            else:
                times.append(_time_api(args.dataset, args.workers))
    interface = "cli" if args.cli else "api"
    figures = {"wall_s_min": round(min(times), 3), "wall_s_median": round(statistics.median(times), 3),
               "wall_s_all": [round(t, 3) for t in times], "repeats": args.repeats}
    records.record_measurement(
        args, "fingerprint", figures,
        {"interface": interface, "workers": args.workers, "dataset": args.dataset.name, "cases": _cases(args.dataset)},
        conditions={"load_1min_start": load, "load_1min_end": os.getloadavg()[0]})
    records.compare_with_peer(args, "fingerprint", "wall_s_min", figures["wall_s_min"],
                              "benchmarks/peer/time_fingerprint.py", settings__interface=interface)


if __name__ == "__main__":
    main()
