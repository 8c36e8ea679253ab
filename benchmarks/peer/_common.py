"""Shared helpers for the peer (nnU-Net v2) benchmarks.

Every benchmark script in this folder:
  * re-executes itself with the peer venv's interpreter (benchmarks/_peer/venv)
    if it was started with another Python, so `python3 benchmarks/peer/X.py` works;
  * points nnUNet_raw / nnUNet_preprocessed / nnUNet_results at folders under
    benchmarks/_peer/ (set here, before nnunetv2 is imported);
  * prints one JSON line of results and appends it to benchmarks/_peer/results.jsonl.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PEER = ROOT / "benchmarks" / "_peer"
VENV = PEER / "venv"
VENV_PY = VENV / "bin" / "python"
VENV_BIN = VENV / "bin"
RAW = PEER / "nnUNet_raw"
PREPROCESSED = PEER / "nnUNet_preprocessed"
RESULTS = PEER / "nnUNet_results"
RESULTS_JSONL = PEER / "results.jsonl"
REFERENCE_DIR = HERE / "reference_hippocampus"

DATASET_ID = 4
DATASET_NAME = "Dataset004_Hippocampus"
MSD_SOURCE = Path(os.environ.get("HIPPOCAMPUS_MSD", "/work/shared/datasets/Task04_Hippocampus"))


def ensure_venv() -> None:
    """Re-exec under the peer venv's python unless we already run in it."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not VENV_PY.exists():
        sys.exit(f"peer venv missing: run `bash {HERE / 'setup_peer.sh'}` first")
    os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])


def set_nnunet_env() -> dict:
    """Point nnU-Net's three folders at benchmarks/_peer/* (must run before importing nnunetv2)."""
    for p in (RAW, PREPROCESSED, RESULTS):
        p.mkdir(parents=True, exist_ok=True)
    os.environ["nnUNet_raw"] = str(RAW)
    os.environ["nnUNet_preprocessed"] = str(PREPROCESSED)
    os.environ["nnUNet_results"] = str(RESULTS)
    # make the venv's console scripts (nnUNetv2_*) reachable for subprocesses
    os.environ["PATH"] = str(VENV_BIN) + os.pathsep + os.environ.get("PATH", "")
    return dict(os.environ)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def uptime_line() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def versions() -> dict:
    import importlib.metadata as md
    out = {"python": platform.python_version()}
    for pkg in ("nnunetv2", "torch", "numpy", "SimpleITK", "dynamic-network-architectures",
                "batchgeneratorsv2"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def timed_subprocess(cmd: list[str], log_path: Path | None = None) -> float:
    """Run cmd, return wall seconds; raise with the log tail on failure."""
    t0 = time.perf_counter()
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w") as fh:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    else:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = log_path.read_text()[-3000:] if log_path is not None else ""
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return dt


def summarize(times: list[float]) -> dict:
    return {
        "times_s": [round(t, 3) for t in times],
        "min_s": round(min(times), 3),
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "n": len(times),
    }


def record(bench: str, payload: dict, load_before: list[float], uptime_before: str) -> dict:
    rec = {
        "bench": bench,
        "peer": "nnU-Net v2",
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": loadavg(),
        "uptime_before": uptime_before,
        "uptime_after": uptime_line(),
        "versions": versions(),
        **payload,
    }
    line = json.dumps(rec, sort_keys=False)
    RESULTS_JSONL.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS_JSONL, "a") as fh:
        fh.write(line + "\n")
    print(line, flush=True)
    return rec


def require_raw() -> None:
    if not (RAW / DATASET_NAME / "dataset.json").exists():
        sys.exit(f"{RAW / DATASET_NAME} missing: run benchmarks/peer/convert_hippocampus.py first")


def require_preprocessed(configuration: str = "3d_fullres") -> None:
    base = PREPROCESSED / DATASET_NAME
    if not (base / "nnUNetPlans.json").exists():
        sys.exit(f"{base}/nnUNetPlans.json missing: run benchmarks/peer/time_plan_and_preprocess.py first")
    plans = json.loads((base / "nnUNetPlans.json").read_text())
    ident = plans["configurations"][configuration].get("data_identifier")
    if ident and not (base / ident).is_dir():
        sys.exit(f"{base / ident} missing: run benchmarks/peer/time_plan_and_preprocess.py first")
