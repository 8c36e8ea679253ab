"""The prediction server against a cold ``autounet predict``: latency, throughput and memory (issue 21).

Usage::

    python benchmarks/bench_serve.py --model RESULTS/Task04_Hippocampus [--requests 200] [--concurrency 1 2 8]
                                     [--latency-requests 30] [--cold-repeats 3] [--output benchmarks/results/...]

``--model`` is a model folder or a package (``autounet export-model``). The issue's figures use the model of the
Hippocampus 20-minute run (docs/benchmarks.md, "Hippocampus in 20 minutes"); make it with::

    autounet run ../shared/datasets/Task04_Hippocampus -o RESULTS -c 3d_fullres -f 0 --budget 20m

What it measures, on real Hippocampus images (``imagesTr`` sorted by name, cycled):

1. a cold ``autounet predict`` of one case in a fresh process (start-up, imports, model loading, prediction, export),
   the median of ``--cold-repeats`` runs;
2. ``autounet serve`` started in a subprocess: seconds until ``/readyz``, resident memory (RSS) after warm-up;
3. latency per case through the server (client side: upload, queue, prediction, answer) at each ``--concurrency``,
   p50 and p95 over ``--latency-requests`` requests per level;
4. ``--requests`` requests at the highest concurrency: throughput (cases/s), failures, RSS afterwards.

It prints the figures and writes a self-describing JSON record (command, commit, CPU, settings, figures, the issue's
targets and whether they are met) to ``--output`` (default ``benchmarks/results/serve_<date>.json``). The machine
is shared here: the record holds the load average before and after; publish only figures from a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "Task04_Hippocampus"
CLI = [sys.executable, "-c", "import sys; from autounet.cli import main; sys.exit(main())"]
#: The issue's targets.
TARGET_P50_FRACTION_OF_COLD = 0.2
TARGET_MEMORY_GROWTH = 0.10


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model folder or package (.zip)")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="MSD dataset whose imagesTr are sent")
    parser.add_argument("--cases", type=int, default=20, help="distinct images, cycled (default 20)")
    parser.add_argument("--requests", type=int, default=200, help="requests of the throughput run (default 200)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 8], help="concurrent clients (default 1 2 8)")
    parser.add_argument("--latency-requests", type=int, default=30, help="requests per concurrency level (default 30)")
    parser.add_argument("--cold-repeats", type=int, default=3, help="cold autounet predict runs (default 3)")
    parser.add_argument("--max-concurrent", type=int, default=0, help="server's --max-concurrent (default: its own)")
    parser.add_argument("--no-mirroring", action="store_true", help="predict without test-time mirroring (both sides)")
    parser.add_argument("--output", type=Path, default=None, help="JSON record (default benchmarks/results/serve_<date>.json)")
    return parser.parse_args()


def _cold_predict(model: Path, image: Path, mirroring: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as folder:
        inputs = Path(folder) / "in"
        inputs.mkdir()
        shutil.copyfile(image, inputs / image.name)
        command = [*CLI, "predict", "-i", str(inputs), "-o", str(Path(folder) / "out"), "-m", str(model), "--no-progress"]
        if not mirroring:
            command.append("--no-mirroring")
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _start_server(model: Path, port: int, max_concurrent: int, log: Path) -> tuple[subprocess.Popen, float]:
    command = [*CLI, "serve", str(model), "--port", str(port), "--max-queue", "64"]
    if max_concurrent:
        command += ["--max-concurrent", str(max_concurrent)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)


def _run_clients(url: str, model: str, images: list[Path], clients: int, total: int, mirroring: bool) -> dict:
    """``total`` requests from ``clients`` threads; latencies (s) of the successful ones, failures by status."""
    latencies: list[float] = []
    failures: dict[str, int] = {}
    counter = iter(range(total))
    lock = threading.Lock()
    contents = [(image.name, image.read_bytes()) for image in images]
    data = {} if mirroring else {"mirroring": "false"}

    def client() -> None:
        with httpx.Client(base_url=url, timeout=600) as http:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                name, content = contents[index % len(contents)]
                started = time.perf_counter()
                try:
                    status = http.post(f"/v1/models/{model}/predict", files={"file": (name, content)}, data=data).status_code
                except httpx.HTTPError as err:
                    status = type(err).__name__
                elapsed = time.perf_counter() - started
                with lock:
                    if status == 200:
                        latencies.append(elapsed)
                    else:
                        failures[str(status)] = failures.get(str(status), 0) + 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "clients": clients, "requests": total, "ok": len(latencies), "failures": failures, "wall_s": round(wall, 2),
        "throughput_per_s": round(len(latencies) / wall, 3),
        "p50_s": round(statistics.median(ordered), 4) if ordered else None,
        "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4) if ordered else None,
        "mean_s": round(statistics.fmean(ordered), 4) if ordered else None,
    }


def _machine() -> dict:
    model = ""
    flags = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1]
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cores": len(os.sched_getaffinity(0)),
            "avx512_bf16": "avx512_bf16" in flags.split(), "python": platform.python_version()}


def _commit() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def main() -> int:
    args = _parse()
    images = sorted(p for p in (args.dataset / "imagesTr").glob("*.nii.gz") if not p.name.startswith("."))[: args.cases]
    if not images:
        raise SystemExit(f"{args.dataset}/imagesTr: no images")
    mirroring = not args.no_mirroring
    record: dict = {
        "benchmark": "serve", "issue": 21, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]), **_commit(), "machine": _machine(),
        "load_average_before": os.getloadavg(), "model": str(args.model), "mirroring": mirroring,
        "images": f"{len(images)} of {args.dataset.name}/imagesTr, cycled",
    }
    cold = [_cold_predict(args.model, images[0], mirroring) for _ in range(args.cold_repeats)]
    record["cold_predict_s"] = {"median": round(statistics.median(cold), 3), "runs": [round(c, 3) for c in cold]}
    print(f"cold autounet predict of one case: {record['cold_predict_s']['median']:.2f} s (median of {len(cold)})", flush=True)

    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as folder:
        process, ready_s = _start_server(args.model, port, args.max_concurrent, Path(folder) / "serve.log")
        try:
            url = f"http://127.0.0.1:{port}"
            name = httpx.get(f"{url}/v1/models").json()["models"][0]["name"]
            readiness = httpx.get(f"{url}/readyz").json()
            record["server"] = {"ready_s": round(ready_s, 2), "model": name, "queue": readiness["queue"],
                                "threads_per_case": readiness["threads_per_case"], "rss_after_warmup_mb": round(_rss_mb(process.pid), 1)}
            print(f"server ready in {ready_s:.1f} s, RSS {record['server']['rss_after_warmup_mb']:.0f} MB", flush=True)
            record["latency"] = []
            for clients in args.concurrency:
                result = _run_clients(url, name, images, clients, max(args.latency_requests, clients), mirroring)
                record["latency"].append(result)
                print(f"{clients} client(s): p50 {result['p50_s']} s, p95 {result['p95_s']} s, "
                      f"{result['throughput_per_s']} cases/s, failures {result['failures'] or 'none'}", flush=True)
            rss_before = _rss_mb(process.pid)
            run = _run_clients(url, name, images, max(args.concurrency), args.requests, mirroring)
            run["rss_before_mb"], run["rss_after_mb"] = round(rss_before, 1), round(_rss_mb(process.pid), 1)
            record["throughput"] = run
            print(f"{args.requests} requests at {run['clients']} clients: {run['throughput_per_s']} cases/s, "
                  f"failures {run['failures'] or 'none'}, RSS {run['rss_before_mb']:.0f} -> {run['rss_after_mb']:.0f} MB", flush=True)
        finally:
            process.terminate()
            process.wait(timeout=60)
    single = next((r for r in record["latency"] if r["clients"] == 1), record["latency"][0])
    warm = record["server"]["rss_after_warmup_mb"]
    growth = (record["throughput"]["rss_after_mb"] - warm) / warm
    highest = max(record["latency"], key=lambda r: r["clients"])
    record["targets"] = {
        "p50_at_1_client_over_cold": round(single["p50_s"] / record["cold_predict_s"]["median"], 4),
        "p50_at_most_a_fifth_of_cold": single["p50_s"] <= TARGET_P50_FRACTION_OF_COLD * record["cold_predict_s"]["median"],
        "memory_growth_over_requests": round(growth, 4),
        "memory_growth_under_10_percent": growth < TARGET_MEMORY_GROWTH,
        "no_failure_at_highest_concurrency": not highest["failures"] and not record["throughput"]["failures"],
    }
    record["load_average_after"] = os.getloadavg()
    output = args.output or REPO / "benchmarks" / "results" / f"serve_{datetime.now().strftime('%Y-%m-%d_%H%M')}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record["targets"]))
    print(f"record: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
