#!/usr/bin/env python3
"""Time nnU-Net v2 fingerprint extraction on Dataset004_Hippocampus (208 cases).

    python3 benchmarks/peer/time_fingerprint.py [--reps 3] [--np 2]

Each repetition deletes nnUNet_preprocessed/Dataset004_Hippocampus/dataset_fingerprint.json
and runs exactly the CLI `nnUNetv2_extract_fingerprint -d 4 -np 2` (its --clean flag
is passed too so it would recompute even if the delete were skipped) as a
subprocess; the wall time includes interpreter start + imports, as a user sees it.
`import_overhead_s` (time of a bare `python -c "import <its entry module>"`) is
recorded so it can be subtracted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def main() -> None:
    C.ensure_venv()
    C.set_nnunet_env()
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--np", type=int, default=2, help="-np of the CLI (processes)")
    C.add_quiet_args(ap)
    C.add_record_args(ap)
    args = ap.parse_args()
    C.require_raw()

    fp = C.PREPROCESSED / C.DATASET_NAME / "dataset_fingerprint.json"
    cmd = [str(C.VENV_BIN / "nnUNetv2_extract_fingerprint"), "-d", str(C.DATASET_ID),
           "-np", str(args.np), "--clean", "--no_pbar"]
    load0, up0 = C.loadavg(), C.uptime_line()
    imp = C.timed_subprocess([str(C.VENV_PY), "-c",
                              "import nnunetv2.experiment_planning.plan_and_preprocess_entrypoints"])
    times, reps = [], []
    for i in range(args.reps):
        if fp.exists():
            fp.unlink()
        q = C.wait_for_quiet(args.quiet_cores, max_wait=args.max_wait)
        pr: dict = {}
        t = C.timed_subprocess(cmd, C.PEER / "logs" / f"fingerprint_rep{i}.log", pr)
        assert fp.exists(), "fingerprint not written"
        times.append(t)
        reps.append({**q, **pr})
        print(f"rep {i}: {t:.2f} s {reps[-1]}", file=sys.stderr, flush=True)
    summary = C.summarize(times)
    C.record("fingerprint", {
        "command": " ".join(["nnUNetv2_extract_fingerprint"] + cmd[1:]),
        "num_cases": 208,
        "num_processes": args.np,
        "import_overhead_s": round(imp, 3),
        **summary,
        "reps": reps,
    }, load0, up0)
    C.peer_record(args, "fingerprint",
                  {"wall_s_min": summary["min_s"], "wall_s_median": summary["median_s"], "wall_s_all": summary["times_s"],
                   "repeats": summary["n"], "import_overhead_s": round(imp, 3)},
                  {"interface": "cli", "command": " ".join(["nnUNetv2_extract_fingerprint"] + cmd[1:]),
                   "workers": args.np, "dataset": C.DATASET_NAME, "cases": 208},
                  {"repetitions": reps, "load_before": load0, "load_after": C.loadavg()})


if __name__ == "__main__":
    main()
