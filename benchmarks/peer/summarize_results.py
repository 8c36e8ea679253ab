#!/usr/bin/env python3
"""Print benchmarks/_peer/results.jsonl as a markdown table (one row per recorded run).

    python3 benchmarks/peer/summarize_results.py [--bench NAME]

`own CPU s` = CPU seconds used by the peer's process tree (min over repetitions).
`others` = cores used by other processes while we measured (mean over the
repetitions; 0 = idle machine, 2 = others saturate both cores). Timings taken
with others >~0.5 are contended and overstate the peer's time.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_JSONL  # noqa: E402


def others(rec: dict):
    vals = [r.get("others_cores") for r in rec.get("reps", []) + rec.get("blocks", [])
            if r.get("others_cores") is not None]
    return round(statistics.mean(vals), 2) if vals else None


def own_cpu(rec: dict):
    """CPU seconds the peer itself used, per repetition (train_step: per iteration; predict: per case)."""
    vals = [r.get("own_cpu_s") for r in rec.get("reps", []) + rec.get("blocks", [])
            if r.get("own_cpu_s") is not None]
    if not vals:
        return None
    v = min(vals)
    if rec["bench"] == "train_step":
        per = rec["timed_iters"] // max(1, len(rec["s_per_iter_block_means"]))
        return f"{v / per:.1f}/it"
    if rec["bench"] == "predict":
        return f"{v / rec['num_cases']:.1f}/case"
    return f"{v:.1f}"


def row(rec: dict) -> str:
    b = rec["bench"]
    if b == "train_step":
        what = (f"{rec['s_per_iter_min_block']} / {rec['s_per_iter_median_block']} s/it "
                f"(blocks of {rec['timed_iters'] // max(1, len(rec['s_per_iter_block_means']))}); "
                f"batch {rec['batch_size']}, patch {'x'.join(map(str, rec['patch_size']))}")
    elif b == "predict":
        what = (f"{rec['min_s']} / {rec['median_s']} s total, {rec['per_case_min_s']} / "
                f"{rec['per_case_median_s']} s/case ({rec['num_cases']} cases)")
    elif b == "train_budget":
        what = (f"{rec['total_iters']} it in {rec['total_wall_s']} s; Dice {rec['dice_per_class']}")
    else:
        what = f"{rec['min_s']} / {rec['median_s']} s"
    cmd = rec.get("command") or rec.get("equivalent_cli") or rec.get("trainer", "")
    n = rec.get("n") or len(rec.get("s_per_iter_block_means", [])) or 1
    return (f"| {rec['date'][:16].replace('T', ' ')} | {b} | {what} | {n} | "
            f"{rec['load_before'][0]} -> {rec['load_after'][0]} | {others(rec)} | {own_cpu(rec)} | "
            f"`{cmd.split(' -o ')[0]}` |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench")
    args = ap.parse_args()
    print("| date (UTC) | bench | min / median | reps | load 1-min before -> after | others (cores) "
          "| own CPU s (min) | command |")
    print("|---|---|---|---|---|---|---|---|")
    for line in RESULTS_JSONL.read_text().splitlines():
        rec = json.loads(line)
        if args.bench and rec["bench"] != args.bench:
            continue
        print(row(rec))


if __name__ == "__main__":
    main()
