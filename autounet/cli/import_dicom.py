"""``autounet import-dicom --images STUDIES [--labels LABELS] -o DATASET``: a training dataset from DICOM studies."""

from __future__ import annotations

import argparse
from pathlib import Path

from autounet.cli.common import add_progress_option


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "import-dicom",
        help="make a dataset from DICOM studies and their DICOM-SEG, RTSTRUCT or label-map files",
        description="Pair each DICOM image series with its label (a DICOM Segmentation or RTSTRUCT that refers to "
        "it, or a label-map file named after it), write an nnU-Net v2 layout dataset (NIfTI) and record in "
        "dicom_import.json what was paired and what was left out (autounet check reports those). Example: "
        "autounet import-dicom --images studies/ --labels segs/ -o Dataset001_Liver",
    )
    parser.add_argument("--images", type=Path, required=True, help="folder of DICOM studies (any depth)")
    parser.add_argument("--labels", type=Path, default=None,
                        help="folder of DICOM-SEG/RTSTRUCT files or label maps (default: look beside the images only)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="dataset folder to create")
    parser.add_argument("--name", default=None, help="dataset name (default: the output folder name)")
    parser.add_argument("--label-names", type=_names, default=None,
                        help="segments/ROIs to import in label order, e.g. liver,tumour (default: every name found)")
    parser.add_argument("--dicom-channels", default=None, metavar="NAME=PATTERN,...",
                        help="several series per study as channels, by a glob on SeriesDescription, e.g. T2=*T2*,ADC=*ADC*")
    parser.add_argument("--dicom-resample", action="store_true",
                        help="resample series with irregular slice gaps or gantry tilt instead of leaving them out")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    add_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autounet.dicom.cases import parse_channel_map
    from autounet.dicom.import_dataset import RECORD_FILE, import_dicom_dataset

    result = import_dicom_dataset(
        args.images, args.output, args.labels, name=args.name, label_names=args.label_names,
        dicom_channels=parse_channel_map(args.dicom_channels), resample=args.dicom_resample,
        overwrite=args.overwrite, progress=args.progress,
    )
    print(f"imported {len(result.cases)} case(s) into {result.output}")
    print(f"  channels: {', '.join(result.channel_names)}; labels: " + ", ".join(f"{v} {n}" for n, v in result.labels.items()))
    for case in result.cases:
        print(f"  {case['case']}: {case['label']['kind']} {case['label']['file']}")
    for entry in result.unpaired:
        print(f"  not paired: {entry.get('folder') or entry.get('label')}: {entry['reason']}")
    for entry in result.mismatched:
        print(f"  not imported: {entry['case']}: {entry['reason']}")
    for note in result.notes:
        print(f"  note: {note}")
    print(f'details in {result.output / RECORD_FILE}; next: autounet check "{result.output}"')
    return 0
