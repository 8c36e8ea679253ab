#!/usr/bin/env python3
"""Time `nnUNetv2_plan_and_preprocess -d 4 -c 3d_fullres 2d -np 2` on Dataset004_Hippocampus.

    python3 benchmarks/peer/time_plan_and_preprocess.py [--reps 3] [--npfp N] [--no-copy-reference]

Each repetition deletes nnUNet_preprocessed/Dataset004_Hippocampus entirely (so the
fingerprint, the plans and both preprocessed configurations are all recomputed)
and runs the CLI as a subprocess (wall time incl. interpreter start-up).
Note: the CLI's -np only sets the preprocessing workers; fingerprint extraction
uses -npfp, whose default is 8. By default we leave it at that default (the
literal command); --npfp 2 runs the variant with 2 fingerprint workers.

Afterwards nnUNetPlans.json and dataset_fingerprint.json are copied to
benchmarks/peer/reference_hippocampus/ (committed test vectors for our planner).
The last repetition's output stays in place for time_train_step.py / time_predict.py.
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def main() -> None:
    C.ensure_venv()
    C.set_nnunet_env()
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--npfp", type=int, default=None, help="fingerprint workers (CLI default: 8)")
    ap.add_argument("--no-copy-reference", action="store_true")
    C.add_quiet_args(ap)
    C.add_record_args(ap)
    args = ap.parse_args()
    C.require_raw()

    base = C.PREPROCESSED / C.DATASET_NAME
    cmd = [str(C.VENV_BIN / "nnUNetv2_plan_and_preprocess"), "-d", str(C.DATASET_ID),
           "-c", "3d_fullres", "2d", "-np", str(args.np)]
    if args.npfp is not None:
        cmd += ["-npfp", str(args.npfp)]
    load0, up0 = C.loadavg(), C.uptime_line()
    times, reps = [], []
    for i in range(args.reps):
        if base.exists():
            shutil.rmtree(base)
        q = C.wait_for_quiet(args.quiet_cores, max_wait=args.max_wait)
        pr: dict = {}
        log = C.PEER / "logs" / f"plan_and_preprocess{'' if args.npfp is None else f'_npfp{args.npfp}'}_rep{i}.log"
        t = C.timed_subprocess(cmd + ["--no_pbar"], log, pr)
        assert (base / "nnUNetPlans.json").exists()
        times.append(t)
        reps.append({**q, **pr})
        print(f"rep {i}: {t:.2f} s {reps[-1]}", file=sys.stderr, flush=True)

    import json
    plans = json.loads((base / "nnUNetPlans.json").read_text())
    cfgs = {}
    for name in ("3d_fullres", "2d"):
        c = plans["configurations"][name]
        d = base / c["data_identifier"]
        cfgs[name] = {"batch_size": c["batch_size"], "patch_size": c["patch_size"],
                      "spacing": c["spacing"],
                      "n_preprocessed_files": len([p for p in d.iterdir()]) if d.is_dir() else 0}
    if not args.no_copy_reference:
        C.REFERENCE_DIR.mkdir(parents=True, exist_ok=True)
        for f in ("nnUNetPlans.json", "dataset_fingerprint.json", "dataset.json"):
            shutil.copy2(base / f, C.REFERENCE_DIR / f)
    summary = C.summarize(times)
    C.record("plan_and_preprocess", {
        "command": " ".join(["nnUNetv2_plan_and_preprocess"] + cmd[1:]),
        "num_processes_preprocessing": args.np,
        "num_processes_fingerprint": args.npfp if args.npfp is not None else 8,
        "configurations": cfgs,
        **summary,
        "reps": reps,
    }, load0, up0)
    C.peer_record(args, "preprocess",
                  {"wall_s_min": summary["min_s"], "wall_s_median": summary["median_s"], "wall_s_all": summary["times_s"],
                   "cpu_s_median": round(statistics.median(r["own_cpu_s"] for r in reps), 2), "repeats": summary["n"]},
                  {"interface": "cli", "command": " ".join(["nnUNetv2_plan_and_preprocess"] + cmd[1:]),
                   "workers": args.np, "fingerprint_workers": args.npfp if args.npfp is not None else 8,
                   "configurations": ["3d_fullres", "2d"], "interleaved": False, "planned": cfgs},
                  {"repetitions": reps, "load_before": load0, "load_after": C.loadavg()})


if __name__ == "__main__":
    main()
