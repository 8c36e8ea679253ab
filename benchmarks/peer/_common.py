"""Shared helpers for the peer (nnU-Net v2) benchmarks.

Every benchmark script in this folder:
  * re-executes itself with the peer venv's interpreter (benchmarks/_peer/venv)
    if it was started with another Python, so `python3 benchmarks/peer/X.py` works;
  * points nnUNet_raw / nnUNet_preprocessed / nnUNet_results at folders under
    benchmarks/_peer/ (set here, before nnunetv2 is imported);
  * prints one JSON line of results and appends it to benchmarks/_peer/results.jsonl (the peer's own log), and
    writes a record of nnU-Net's figures under benchmarks/results/ (benchmarks/records.py) with the machine label
    given by --machine, so the tables put it beside autounet's record of the same session.
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

sys.path.insert(0, str(HERE.parent))
import records  # noqa: E402  (standard library only: importable from the peer venv)

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


def set_nnunet_env(results: Path = RESULTS) -> dict:
    """Point nnU-Net's three folders at benchmarks/_peer/* (must run before importing nnunetv2)."""
    for p in (RAW, PREPROCESSED, results):
        p.mkdir(parents=True, exist_ok=True)
    os.environ["nnUNet_raw"] = str(RAW)
    os.environ["nnUNet_preprocessed"] = str(PREPROCESSED)
    os.environ["nnUNet_results"] = str(results)
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


def timed_subprocess(cmd: list[str], log_path: Path | None = None, probe: dict | None = None) -> float:
    """Run cmd, return wall seconds; raise with the log tail on failure.
    If `probe` is a dict it is filled with Probe.as_dict() (contention during the run)."""
    pr = Probe().__enter__()
    t0 = pr.t0
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w") as fh:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    else:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    pr.__exit__(None, None, None)
    dt = time.perf_counter() - t0
    if probe is not None:
        probe.update(pr.as_dict())
    if proc.returncode != 0:
        tail = log_path.read_text()[-3000:] if log_path is not None else ""
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return dt


# ---------------------------------------------------------------- contention probes
_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _system_busy_ticks() -> int:
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    total = sum(f[:8])           # user nice system idle iowait irq softirq steal
    return total - f[3] - f[4]   # minus idle, iowait


def _tree_cpu_ticks(root: int | None = None) -> int:
    """utime+stime(+reaped children) of `root` and all its live descendants."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        rest = raw[raw.rfind(")") + 2:].split()
        pid, ppid = int(d), int(rest[1])
        children.setdefault(ppid, []).append(pid)
        ticks[pid] = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
    total, stack = 0, [root]
    while stack:
        p = stack.pop()
        total += ticks.get(p, 0)
        stack.extend(children.get(p, []))
    return total


class Probe:
    """Wall time of a block plus how much CPU *other* processes used meanwhile.

    others_cores = (all CPU busy time on the machine - CPU time of this process
    tree) / wall; 0 on an idle machine, up to host_cpus when others saturate it.
    """

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.sys0 = _system_busy_ticks()
        self.own0 = _tree_cpu_ticks()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        sys_d = (_system_busy_ticks() - self.sys0) / _HZ
        own_d = (_tree_cpu_ticks() - self.own0) / _HZ
        self.own_cpu = own_d
        self.others_cores = max(0.0, (sys_d - own_d) / self.wall) if self.wall > 0 else 0.0
        return False

    def as_dict(self) -> dict:
        return {"wall_s": round(self.wall, 3), "own_cpu_s": round(self.own_cpu, 2),
                "others_cores": round(self.others_cores, 2)}


def busy_cores(window: float = 3.0) -> float:
    """Cores kept busy by everything on the machine over `window` seconds (this tree excluded)."""
    s0, o0 = _system_busy_ticks(), _tree_cpu_ticks()
    time.sleep(window)
    return max(0.0, ((_system_busy_ticks() - s0) - (_tree_cpu_ticks() - o0)) / _HZ / window)


def wait_for_quiet(max_busy: float = 0.3, window: float = 3.0, max_wait: float = 600.0) -> dict:
    """Block until others use < max_busy cores (sampled over `window` s), at most max_wait s.
    Returns what was seen, so it can be recorded next to the timing."""
    t0 = time.perf_counter()
    b = busy_cores(window)
    while b >= max_busy and time.perf_counter() - t0 < max_wait:
        print(f"  waiting for a quiet machine: others use {b:.2f} cores (load {loadavg()})",
              file=sys.stderr, flush=True)
        time.sleep(10)
        b = busy_cores(window)
    return {"others_cores_before": round(b, 2), "waited_s": round(time.perf_counter() - t0, 1),
            "quiet": b < max_busy, "load_before": loadavg()}


def add_quiet_args(ap) -> None:
    ap.add_argument("--quiet-cores", type=float, default=0.3,
                    help="before each repetition wait until other processes use fewer cores than this")
    ap.add_argument("--max-wait", type=float, default=90.0, help="max seconds to wait for quiet per repetition")


def add_record_args(ap) -> None:
    """--machine, --results, --no-record (benchmarks/records.py)."""
    records.add_record_arguments(ap)


def peer_record(args, benchmark: str, figures: dict, settings: dict, conditions: dict | None = None,
                note: str | None = None) -> dict:
    """Write nnU-Net's record of this measurement (tool "nnU-Net v2", its installed version) and return it."""
    return records.record_measurement(args, benchmark, figures, settings, tool=records.NNUNET, conditions=conditions,
                                      note=note)


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


def make_trainer(configuration: str = "3d_fullres", fold: int = 0, device: str = "cpu"):
    """nnUNetTrainer built the way `nnUNetv2_train 4 <cfg> <fold> -device cpu` builds it
    (run_training.get_trainer_from_args), but importing the class directly instead of
    going through nnU-Net's trainer-class search. Like the CLI on CPU, torch gets
    os.cpu_count() intra-op threads."""
    import multiprocessing
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    if device == "cpu":
        torch.set_num_threads(multiprocessing.cpu_count())
    base = PREPROCESSED / DATASET_NAME
    plans = json.loads((base / "nnUNetPlans.json").read_text())
    plans["continue_training"] = False  # get_trainer_from_args adds this key; the trainer pops it
    dataset_json = json.loads((base / "dataset.json").read_text())
    return nnUNetTrainer(plans=plans, configuration=configuration, fold=fold,
                         dataset_json=dataset_json, device=torch.device(device))


def shutdown_loaders(trainer) -> None:
    """Stop the trainer's background augmentation workers (what on_train_end does)."""
    for dl in (trainer.dataloader_train, trainer.dataloader_val):
        if dl is not None and hasattr(dl, "_finish"):
            try:
                dl._finish()
            except Exception:
                pass
