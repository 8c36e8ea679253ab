"""``autounet demo``: make synthetic data and run the whole pipeline on it in a few minutes."""

from __future__ import annotations

import argparse
from pathlib import Path

from autounet.cli.common import parse_duration

DEFAULT_BUDGET_SECONDS = 360.0
"""Demo budget: about a minute per fold. Enough on 2 CPU cores even where training runs in float32 (no bfloat16
units): on such a CPU, on one core, the demo ended at a cross-validation mean Dice of 0.88 (docs/benchmarks.md,
"Output bias at the class prior"). Before the output bias started at the class prior it needed twice as long there."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="generate a small synthetic dataset and run the whole pipeline on it",
        description="Generate a synthetic MSD-layout dataset and run 'autounet run' on it with a small budget.",
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("demo_output"), help="folder for data and results")
    parser.add_argument("--kind", choices=["3d", "3d_aniso", "2d"], default="3d", help="which synthetic dataset")
    parser.add_argument("--cases", type=int, default=12, help="number of training cases to generate")
    parser.add_argument(
        "--budget", type=parse_duration, default=DEFAULT_BUDGET_SECONDS, dest="budget_seconds",
        help="wall-clock budget of the run (default 6m, about a minute per fold)",
    )
    parser.add_argument("-f", "--folds", nargs="+", default=["0", "1", "2", "3", "4"], help="folds to train (default all five)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autounet.cli.run import print_summary
    from autounet.dataset.demo import DemoSpec, make_demo_dataset
    from autounet.pipeline import RunOptions, run_pipeline
    from autounet.trainers import TrainingConfig

    data_dir = args.output / f"Demo_{args.kind}"
    if not (data_dir / "dataset.json").exists():
        make_demo_dataset(data_dir, DemoSpec(kind=args.kind, num_cases=args.cases))
        print(f"generated {args.cases} synthetic cases in {data_dir}")
    configuration = "2d" if args.kind == "2d" else "3d_fullres"
    options = RunOptions(
        configurations=(configuration,),
        folds=tuple(int(f) if f.isdigit() else f for f in args.folds),
        budget_seconds=args.budget_seconds,
        training=TrainingConfig(progress=args.progress),
        progress=args.progress,
    )
    summary = run_pipeline(data_dir, args.output / "results", options)
    print_summary(summary)
    print(f"next: autounet predict -i {data_dir / 'imagesTs'} -o {args.output / 'predictions'} -m {summary.results_dir}")
    return 0
