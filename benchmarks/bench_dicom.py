"""Time and memory of DICOM in / DICOM-SEG out against NIfTI, on a synthetic 512 x 512 x 300 CT series.

Usage::

    python benchmarks/bench_dicom.py [--slices 300] [--repeats 3] [--output benchmarks/results/dicom.json]

Writes the same CT volume (int16 HU, a body-like cylinder with noise) and a three-label map as a NIfTI pair and as
a DICOM series (one file per slice) in a temporary folder, then measures, each in a fresh process so the peak
resident memory is its own:

- ``nifti``: read the image (``autounet.io.read_image``) and write the label map as ``.nii.gz``;
- ``dicom``: read the series (``read_dicom_series``) and write the label map as a BINARY DICOM-SEG with its
  geometry proof (``write_dicom_seg``); ``dicom_labelmap`` the same as a LABELMAP Segmentation.

The issue's budget: DICOM adds at most 10 s and 1.5 GB over NIfTI. Prints the record and writes it as JSON
(command, commit, CPU, load, figures). Timings on a shared machine are provisional: re-run on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import records  # noqa: E402

#: The issue's budget for what DICOM may add over NIfTI.
BUDGET_SECONDS, BUDGET_GB = 10.0, 1.5
LABELS = {"background": 0, "liver": 1, "kidney": 2, "tumour": 3}


def _synthesise(folder: Path, slices: int) -> None:
    from autounet.dicom.synthetic import write_dicom_series
    from autounet.io import Geometry, write_image

    rng = np.random.default_rng(0)
    shape = (slices, 512, 512)
    geometry = Geometry(spacing=(1.0, 0.78, 0.78), origin=(-150.0, -200.0, -200.0))
    yy, xx = np.mgrid[:512, :512]
    body = ((yy - 256) / 200.0) ** 2 + ((xx - 256) / 230.0) ** 2 < 1
    image = np.full(shape, -1000, np.int16)
    image[:, body] = 40
    image += rng.integers(-20, 20, size=shape, dtype=np.int16)
    label = np.zeros(shape, np.uint8)
    label[slices // 5 : slices // 2, 150:300, 120:280] = 1
    label[slices // 3 : 2 * slices // 3, 280:360, 300:380] = 2
    label[slices // 4 : slices // 4 + 20, 200:230, 150:190] = 3
    write_image(folder / "ct.nii.gz", image, geometry)
    write_image(folder / "label.nii.gz", label, geometry)
    write_dicom_series(folder / "series", image, geometry, rescale=(1.0, -1024.0))


def _worker(mode: str, folder: Path) -> dict:
    """Run one measurement in this (fresh) process; returns seconds and the process's peak RSS."""
    from autounet.dicom.seg_writer import SegOptions, write_dicom_seg
    from autounet.dicom.series import read_dicom_series
    from autounet.io import read_image, write_image

    label = read_image(folder / "label.nii.gz").data[0]
    before = _peak_rss_gb()
    start = time.perf_counter()
    if mode == "nifti":
        image = read_image(folder / "ct.nii.gz")
        write_image(folder / "out.nii.gz", label, image.geometry)
    else:
        volume = read_dicom_series(folder / "series")
        seg_type = "labelmap" if mode == "dicom_labelmap" else "binary"
        write_dicom_seg(folder / "out.dcm", label, volume, LABELS, SegOptions(seg_type=seg_type))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_gb": _peak_rss_gb(), "rss_before_gb": before}


def _peak_rss_gb() -> float:
    """This process's peak resident memory (VmHWM). Not ``ru_maxrss``: Linux carries the parent's peak into a child
    started by fork + exec, which would hide the child's own figure."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _run(mode: str, folder: Path) -> dict:
    output = subprocess.run([sys.executable, __file__, "--worker", mode, "--folder", str(folder)],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    records.add_record_arguments(parser)
    parser.add_argument("--note", default="", help="a remark stored in the record, e.g. 'provisional: shared machine'")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.folder)))
        return
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="autounet_bench_dicom_") as tmp:
        folder = Path(tmp)
        _synthesise(folder, args.slices)
        runs = {mode: [_run(mode, folder) for _ in range(args.repeats)] for mode in ("nifti", "dicom", "dicom_labelmap")}
    figures = {
        mode: {"seconds_median": round(statistics.median(r["seconds"] for r in rs), 2),
               "seconds_min": round(min(r["seconds"] for r in rs), 2),
               "peak_rss_gb_max": round(max(r["peak_rss_gb"] for r in rs), 3)}
        for mode, rs in runs.items()
    }
    for mode in ("dicom", "dicom_labelmap"):
        figures[mode]["added_seconds_over_nifti"] = round(figures[mode]["seconds_median"] - figures["nifti"]["seconds_median"], 2)
        figures[mode]["added_peak_gb_over_nifti"] = round(figures[mode]["peak_rss_gb_max"] - figures["nifti"]["peak_rss_gb_max"], 3)
    within = all(figures[m]["added_seconds_over_nifti"] <= BUDGET_SECONDS
                 and figures[m]["added_peak_gb_over_nifti"] <= BUDGET_GB for m in ("dicom", "dicom_labelmap"))
    settings = {"volume_shape_zyx": [args.slices, 512, 512], "dtype": "int16", "labels": len(LABELS) - 1,
                "repeats": args.repeats, "budget": {"added_seconds": BUDGET_SECONDS, "added_peak_gb": BUDGET_GB}}
    records.record_measurement(args, "dicom_read_seg_write", {**figures, "within_budget": within}, settings,
                               conditions={"load_1min_at_start": round(load, 2)}, note=args.note or None)


if __name__ == "__main__":
    main()
