#!/usr/bin/env python3
"""Convert MSD Task04_Hippocampus to nnU-Net v2 raw format (Dataset004_Hippocampus).

    python3 benchmarks/peer/convert_hippocampus.py [--copy] [--src DIR]

Source (read-only, never modified): /work/shared/datasets/Task04_Hippocampus
Target: benchmarks/_peer/nnUNet_raw/Dataset004_Hippocampus/
    imagesTr/hippocampus_XXX_0000.nii.gz   (symlink to the MSD image; --copy to copy)
    labelsTr/hippocampus_XXX.nii.gz        (symlink to the MSD label; --copy to copy)
    dataset.json  {channel_names, labels, numTraining, file_ending, ...}

Hippocampus is single-modality 3D, so no 4D splitting is needed (that is all
nnUNetv2_convert_MSD_dataset would add). Idempotent: re-running rebuilds the
folder. Plain stdlib: runs with any python3, no venv needed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATASET_NAME, MSD_SOURCE, RAW  # noqa: E402


def convert(src: Path, dst_root: Path, copy: bool = False) -> Path:
    src_json = json.loads((src / "dataset.json").read_text())
    out = dst_root / DATASET_NAME
    if out.exists():
        shutil.rmtree(out)
    (out / "imagesTr").mkdir(parents=True)
    (out / "labelsTr").mkdir(parents=True)

    modalities = src_json["modality"]
    n_channels = len(modalities)
    if n_channels != 1:
        raise SystemExit("this converter handles single-channel MSD tasks only")
    ending = ".nii.gz"
    cases = []
    for entry in src_json["training"]:
        img = (src / entry["image"]).resolve()
        lab = (src / entry["label"]).resolve()
        case = Path(entry["image"]).name[: -len(ending)]
        if not img.is_file() or not lab.is_file():
            raise SystemExit(f"missing file for case {case}: {img} / {lab}")
        pairs = [(img, out / "imagesTr" / f"{case}_0000{ending}"), (lab, out / "labelsTr" / f"{case}{ending}")]
        for s, d in pairs:
            if copy:
                shutil.copy2(s, d)
            else:
                os.symlink(s, d)
        cases.append(case)

    labels = {name: int(k) for k, name in sorted(src_json["labels"].items(), key=lambda kv: int(kv[0]))}
    # nnU-Net v2 wants "background" spelled that way for label 0
    labels = {("background" if v == 0 else k): v for k, v in labels.items()}
    dataset_json = {
        "channel_names": {k: v for k, v in modalities.items()},
        "labels": labels,
        "numTraining": len(cases),
        "file_ending": ending,
        "name": src_json.get("name", "Hippocampus"),
        "description": src_json.get("description", ""),
        "reference": src_json.get("reference", ""),
        "licence": src_json.get("licence", ""),
        "release": src_json.get("release", ""),
        "converted_from": str(src),
    }
    (out / "dataset.json").write_text(json.dumps(dataset_json, indent=4))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=MSD_SOURCE)
    ap.add_argument("--dst", type=Path, default=RAW)
    ap.add_argument("--copy", action="store_true", help="copy files instead of symlinking")
    args = ap.parse_args()
    out = convert(args.src, args.dst, args.copy)
    n_img = len(list((out / "imagesTr").iterdir()))
    n_lab = len(list((out / "labelsTr").iterdir()))
    print(json.dumps({"converted": str(out), "images": n_img, "labels": n_lab,
                      "mode": "copy" if args.copy else "symlink"}))


if __name__ == "__main__":
    main()
