"""``autounet find-best RESULTS_DIR``: pick the best configuration or ensemble by cross-validation Dice."""

from __future__ import annotations

import argparse
from pathlib import Path

from autounet.cli.common import add_progress_option, add_workers_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "find-best",
        help="compare trained configurations and their ensembles by cross-validation Dice",
        description="Merge each configuration's fold validation predictions into <configuration>/crossval, evaluate "
        "them and every pair of configurations averaged, decide the post-processing of the winner and write "
        "inference.json with the predict command.",
    )
    parser.add_argument("results_dir", type=Path, help="RESULTS/<dataset> folder")
    parser.add_argument("--reference", dest="reference_dir", type=Path, default=None,
                        help="folder of the training labels (default: the one the validation summaries name)")
    parser.add_argument("-c", "--configurations", nargs="+", default=None, help="candidates (default: every trained one)")
    parser.add_argument("--no-ensembles", dest="ensembles", action="store_false", help="do not evaluate pairs of configurations")
    parser.add_argument("--no-postprocessing", dest="postprocessing", action="store_false", help="do not decide post-processing")
    add_workers_option(parser)
    add_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autounet.inference.find_best import find_best

    result = find_best(
        args.results_dir,
        args.reference_dir,
        args.configurations,
        ensembles=args.ensembles,
        postprocessing=args.postprocessing,
        workers=args.workers,
        progress=args.progress,
    )
    print(result.table())
    print(f"\nbest: {result.describe_best()}")
    for note in result.notes:
        print(f"note: {note}")
    if result.postprocessing is not None:
        print(f"post-processing: {result.postprocessing.describe()}")
    print(f"predict with:\n  {result.command}")
    print(f"wrote {result.inference_file}")
    return 0
