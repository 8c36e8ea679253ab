"""``autounet demo``: make synthetic data and run the whole pipeline on it in a few minutes."""

from __future__ import annotations

import argparse
from pathlib import Path

from autounet.cli.common import parse_duration

FAST_BUDGET_SECONDS = 360.0
"""Demo budget on a GPU, MPS or a CPU with bfloat16 units: about a minute per fold on 2 CPU cores."""

FLOAT32_CPU_BUDGET_SECONDS = 720.0
"""Demo budget on a CPU without bfloat16 units, where training runs in float32: in 6 minutes on such a CPU (2
cores, AVX2) the demo ended at a mean Dice of 0.40, against about 0.82 with bfloat16 (docs/benchmarks.md)."""


def default_budget_seconds() -> float:
    """The demo's budget when ``--budget`` is not given: twice as long where training has to run in float32 on a CPU."""
    import torch

    from autounet.networks.cpu_speed import cpu_has_native_bfloat16

    if torch.cuda.is_available() or torch.backends.mps.is_available() or cpu_has_native_bfloat16():
        return FAST_BUDGET_SECONDS
    return FLOAT32_CPU_BUDGET_SECONDS


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
        "--budget", type=parse_duration, default=None, dest="budget_seconds",
        help="wall-clock budget of the run (default 6m, about a minute per fold; 12m on a CPU without bfloat16 units)",
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
    budget = args.budget_seconds
    if budget is None:
        budget = default_budget_seconds()
        if budget == FLOAT32_CPU_BUDGET_SECONDS:
            print(f"this CPU has no bfloat16 units, so training runs in float32: budget {budget / 60:.0f} minutes "
                  f"instead of {FAST_BUDGET_SECONDS / 60:.0f} (--budget sets it)")
    options = RunOptions(
        configurations=(configuration,),
        folds=tuple(int(f) if f.isdigit() else f for f in args.folds),
        budget_seconds=budget,
        training=TrainingConfig(progress=args.progress),
        progress=args.progress,
    )
    summary = run_pipeline(data_dir, args.output / "results", options)
    print_summary(summary)
    print(f"next: autounet predict -i {data_dir / 'imagesTs'} -o {args.output / 'predictions'} -m {summary.results_dir}")
    return 0
