"""Time autounet's fingerprint of a dataset (default: the 208 shared Hippocampus cases).

Usage::

    python benchmarks/bench_fingerprint.py [DATASET] [--workers N] [--repeats 3]

Prints one JSON line: the minimum and median wall time over the repeats (every repeat recomputes; the
reuse cache is bypassed) and the machine load at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from autounet.dataset import load_dataset
from autounet.fingerprint import compute_fingerprint

DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "Task04_Hippocampus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        dataset = load_dataset(args.dataset)
        fingerprint = compute_fingerprint(dataset, workers=args.workers, progress=False)
        times.append(time.perf_counter() - start)
    print(json.dumps({
        "benchmark": "fingerprint",
        "dataset": args.dataset.name,
        "cases": fingerprint.num_cases,
        "workers": args.workers,
        "seconds_min": round(min(times), 3),
        "seconds_median": round(statistics.median(times), 3),
        "load_1min": load,
    }))


if __name__ == "__main__":
    main()
