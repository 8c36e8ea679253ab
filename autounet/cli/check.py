"""``autounet check DATASET [--json OUT]``: list every problem of a dataset; exit 1 if there is an error."""

from __future__ import annotations

import argparse
from pathlib import Path

from autounet.cli.common import add_progress_option, add_workers_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "check",
        help="list every problem of a dataset, each with the file and a fix",
        description="Check a dataset folder (MSD or nnU-Net v2 layout): missing, unreadable or truncated files, "
        "image/label geometry mismatches, channel counts, 2D among 3D, label values, NaN/Inf, numTraining. "
        "Exits with 1 if there is any error, 0 otherwise (warnings allowed).",
    )
    parser.add_argument("dataset", type=Path, help="dataset folder (holds dataset.json)")
    parser.add_argument("--json", dest="json_path", type=Path, default=None, metavar="OUT", help="also write the report as JSON to OUT")
    add_workers_option(parser)
    add_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autounet.dataset.check import check_dataset

    report = check_dataset(args.dataset, workers=args.workers, progress=args.progress)
    print(report.format())
    if args.json_path is not None:
        report.save(args.json_path)
        print(f"wrote {args.json_path}")
    return 0 if report.ok else 1
