"""``autounet evaluate GT_DIR PRED_DIR [-o OUT]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autounet.cli.common import add_progress_option, add_workers_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="compare predicted label files with reference label files",
        description="Dice, IoU, precision, recall, specificity, HD95, ASSD and NSD per case and label, written as "
        "summary.json, metrics_per_case.csv and metrics_mean.csv. Files are paired by name.",
    )
    parser.add_argument("reference_dir", type=Path, help="folder of reference label files (e.g. labelsTr)")
    parser.add_argument("prediction_dir", type=Path, help="folder of predicted label files with the same names")
    parser.add_argument("-o", "--output", type=Path, default=None, help="output folder or summary .json path (default: PREDICTION_DIR)")
    parser.add_argument("--labels", type=int, nargs="+", default=None, help="label values to evaluate (default: all non-zero values in the references)")
    parser.add_argument("--dataset-json", type=Path, default=None, help="take labels, regions and file ending from this dataset.json")
    parser.add_argument("--nsd-tolerance", dest="nsd_tolerance_mm", type=float, default=1.0, help="normalized surface Dice tolerance in mm (default 1.0)")
    parser.add_argument("--file-ending", default=None, help="only pair files ending with this, e.g. .nii.gz")
    parser.add_argument("--allow-missing", action="store_true", help="score reference cases without a prediction as empty predictions instead of stopping")
    add_workers_option(parser)
    add_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autounet.evaluation import evaluate_folders, format_table, labels_from_dataset_json

    labels, regions, file_ending = args.labels, None, args.file_ending
    if args.dataset_json is not None:
        json_labels, regions, json_ending = labels_from_dataset_json(args.dataset_json)
        labels, file_ending = labels or json_labels, file_ending or json_ending
    result = evaluate_folders(
        args.reference_dir, args.prediction_dir, labels=labels, regions=regions, workers=args.workers,
        nsd_tolerance_mm=args.nsd_tolerance_mm, file_ending=file_ending, allow_missing=args.allow_missing,
        progress=args.progress,
    )
    print(f"{len(result.cases)} cases evaluated (NSD tolerance {result.nsd_tolerance_mm:g} mm)")
    print(format_table(result))
    if result.missing_predictions:
        print(f"{len(result.missing_predictions)} missing prediction(s) scored as empty: {', '.join(result.missing_predictions)}")
    for case_id, message in result.warnings.items():
        print(f"warning: {case_id}: {message}", file=sys.stderr)
    for case_id, message in result.failures.items():
        print(f"autounet evaluate: error: case {case_id} not evaluated: {message}", file=sys.stderr)
    paths = result.save(args.output or args.prediction_dir)
    print(f"wrote {paths['summary']}, {paths['per_case'].name} and {paths['mean'].name}")
    return 1 if result.failures else 0
