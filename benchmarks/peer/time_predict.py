#!/usr/bin/env python3
"""Time nnU-Net v2 inference (its nnUNetPredictor, i.e. what nnUNetv2_predict runs) on
52 Hippocampus images with 3d_fullres fold 0.

    python3 benchmarks/peer/time_predict.py [--reps 2] [--npp 2] [--nps 2] [--threads N] [--no-mirroring]

Equivalent CLI:
    nnUNetv2_predict -i benchmarks/_peer/predict_input -o OUT -d 4 -c 3d_fullres -f 0 \
        -device cpu -npp 2 -nps 2
Settings = nnU-Net's defaults: tile_step_size 0.5, gaussian weighting, mirroring
TTA on (all 3 axes -> 8 forward passes per tile), checkpoint_final.pth; on CPU
the CLI sets torch threads = cpu_count (2 here) and perform_everything_on_device
falls back to False. -npp/-nps (preprocessing / export worker processes) are 3 by
CLI default; we use 2 (= the cores) unless told otherwise.

Input: symlinks to the LAST 52 training images (sorted by name) in
benchmarks/_peer/predict_input/. The checkpoint comes from make_checkpoint.py
(run automatically if missing). Each repetition writes to a fresh output folder.
Timed: predict_from_files() wall time (preprocessing + sliding window + export of
all 52 cases); model loading (initialize_from_trained_model_folder) is recorded
separately as init_s. With --cli the command nnUNetv2_predict runs in a subprocess instead and its whole wall time
is timed (start-up and model loading included), to compare with `autounet predict`
(benchmarks/bench_predict.py hippocampus --cli): CLI against CLI, API against API. The record goes to
benchmarks/results/predict/ (--machine names the session).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

N_CASES = 52
INPUT = C.PEER / "predict_input"
OUTPUT = C.PEER / "predict_output"


def make_input() -> list[str]:
    src = C.RAW / C.DATASET_NAME / "imagesTr"
    files = sorted(p.name for p in src.iterdir() if p.name.endswith("_0000.nii.gz"))[-N_CASES:]
    if INPUT.exists():
        shutil.rmtree(INPUT)
    INPUT.mkdir(parents=True)
    for f in files:
        os.symlink((src / f).resolve(), INPUT / f)
    return files


def main() -> None:
    C.ensure_venv()
    C.set_nnunet_env()
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--npp", type=int, default=2, help="preprocessing processes (CLI default 3)")
    ap.add_argument("--nps", type=int, default=2, help="segmentation export processes (CLI default 3)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (CLI on cpu: cpu_count)")
    ap.add_argument("--no-mirroring", action="store_true")
    ap.add_argument("--cli", action="store_true", help="time nnUNetv2_predict in a subprocess (start-up included)")
    C.add_quiet_args(ap)
    C.add_record_args(ap)
    args = ap.parse_args()
    C.require_preprocessed("3d_fullres")

    from make_checkpoint import CHECKPOINT, MODEL_DIR
    if not CHECKPOINT.exists():
        subprocess.run([str(C.VENV_PY), str(C.HERE / "make_checkpoint.py")], check=True)

    files = make_input()
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    torch.set_num_threads(args.threads)
    load0, up0 = C.loadavg(), C.uptime_line()
    times, inits, reps = [], [], []
    for r in range(args.reps):
        out = OUTPUT / f"rep{r}"
        if out.exists():
            shutil.rmtree(out)
        q = C.wait_for_quiet(args.quiet_cores, max_wait=args.max_wait)
        t0 = time.perf_counter()
        if args.cli:
            command = [str(C.VENV_BIN / "nnUNetv2_predict"), "-i", str(INPUT), "-o", str(out), "-d", str(C.DATASET_ID),
                       "-c", "3d_fullres", "-f", "0", "-device", "cpu", "-npp", str(args.npp), "-nps", str(args.nps),
                       "-chk", "checkpoint_final.pth", "--disable_progress_bar"]
            if args.no_mirroring:
                command.append("--disable_tta")
            t1 = t0
            with C.Probe() as pr:
                C.timed_subprocess(command, C.PEER / "logs" / f"predict_cli_rep{r}.log")
            t2 = time.perf_counter()
        else:
            predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True,
                                        use_mirroring=not args.no_mirroring,
                                        perform_everything_on_device=True,  # -> False on cpu, as in the CLI
                                        device=torch.device("cpu"), verbose=False,
                                        verbose_preprocessing=False, allow_tqdm=False)
            predictor.initialize_from_trained_model_folder(str(MODEL_DIR), use_folds=(0,),
                                                           checkpoint_name="checkpoint_final.pth")
            t1 = time.perf_counter()
            with C.Probe() as pr:
                predictor.predict_from_files(str(INPUT), str(out), save_probabilities=False, overwrite=True,
                                             num_processes_preprocessing=args.npp,
                                             num_processes_segmentation_export=args.nps)
            t2 = time.perf_counter()
        n_out = len([p for p in out.iterdir() if p.name.endswith(".nii.gz")])
        assert n_out == N_CASES, f"expected {N_CASES} outputs, got {n_out}"
        inits.append(t1 - t0)
        times.append(t2 - t1)
        reps.append({**q, **pr.as_dict()})
        print(f"rep {r}: init {t1 - t0:.2f} s, predict {t2 - t1:.2f} s "
              f"({(t2 - t1) / N_CASES:.2f} s/case) {reps[-1]}", file=sys.stderr, flush=True)

    s = C.summarize(times)
    C.record("predict", {
        "api": "nnUNetPredictor.predict_from_files",
        "equivalent_cli": (f"nnUNetv2_predict -i {INPUT} -o OUT -d 4 -c 3d_fullres -f 0 -device cpu "
                           f"-npp {args.npp} -nps {args.nps}" + (" --disable_tta" if args.no_mirroring else "")),
        "checkpoint": str(CHECKPOINT.relative_to(C.ROOT)),
        "num_cases": N_CASES,
        "cases": [files[0], files[-1]],
        "mirroring": not args.no_mirroring,
        "tile_step_size": 0.5,
        "torch_threads": args.threads,
        "npp": args.npp,
        "nps": args.nps,
        "init_s": [round(x, 3) for x in inits],
        **s,
        "reps": reps,
        "per_case_min_s": round(s["min_s"] / N_CASES, 3),
        "per_case_median_s": round(s["median_s"] / N_CASES, 3),
    }, load0, up0)
    others = [rep.get("others_cores") for rep in reps if rep.get("others_cores") is not None]
    C.peer_record(args, "predict", {
        "wall_s_min": s["min_s"], "wall_s_median": s["median_s"], "wall_s_all": s["times_s"], "repeats": s["n"],
        "per_case_s": round(s["min_s"] / N_CASES, 3), "init_s": None if args.cli else [round(x, 3) for x in inits],
    }, {
        "interface": "cli" if args.cli else "api", "cases": N_CASES, "mirroring": not args.no_mirroring,
        "precision": "float32", "configuration": "3d_fullres", "network_features": [32, 64, 128, 256],
        "threads": args.threads, "npp": args.npp, "nps": args.nps,
        "description": "nnU-Net v2 `nnUNetv2_predict` (CLI)" if args.cli
        else "nnU-Net v2 `nnUNetPredictor.predict_from_files`",
    }, {"others_cores": f"{min(others):.2f}-{max(others):.2f}" if others else None, "repetitions": reps,
        "load_before": load0, "load_after": C.loadavg()})
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
