"""``autounet preprocess DATASET --plans PLANS.json -c 3d_fullres 2d -o OUT``."""

from __future__ import annotations

import argparse
from pathlib import Path

from autounet.cli.common import add_progress_option, add_workers_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "preprocess",
        help="crop, normalise and resample the training cases as the plans say",
        description="Write one folder of preprocessed cases per configuration. Unchanged cases are reused; "
        "an interrupted run continues where it stopped.",
    )
    parser.add_argument("dataset", type=Path, help="dataset folder (MSD or nnU-Net v2 layout)")
    parser.add_argument("--plans", type=Path, required=True, help="plans JSON written by \"autounet plan\"")
    parser.add_argument("-c", "--configurations", nargs="+", default=None, metavar="NAME",
                        help="configurations to preprocess (default: all in the plans)")
    parser.add_argument("-o", "--output-dir", type=Path, default=None,
                        help="parent folder of the <data_identifier> folders (default: 'preprocessed' beside the plans)")
    parser.add_argument("--backend", "--resampling-backend", dest="resampling_backend", default="auto",
                        choices=("auto", "reference", "separable"),
                        help="resampling: scipy reference, the fast separable spline, or auto (fast for large volumes)")
    parser.add_argument("--force", action="store_true", help="recompute every case even if nothing changed")
    add_workers_option(parser)
    add_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autounet.dataset import load_dataset
    from autounet.layout import ResultsLayout
    from autounet.planners.plans import load_plans
    from autounet.preprocessing import open_preprocessed, preprocess_dataset

    dataset = load_dataset(args.dataset)
    plans = load_plans(args.plans)
    output_dir = args.output_dir or ResultsLayout(args.plans.resolve().parent).preprocessed_root
    folders = preprocess_dataset(
        dataset,
        plans,
        args.configurations,
        output_dir,
        workers=args.workers,
        progress=args.progress,
        resampling_backend=args.resampling_backend,
        force=args.force,
    )
    for name, folder in folders.items():
        store = open_preprocessed(folder)
        print(f"{name}: {len(store)} cases in {folder}")
    return 0
