"""``autounet benchmark MSD_ROOT --tasks ...``: the pipeline on Decathlon tasks, with a results table."""

from __future__ import annotations

import argparse
from pathlib import Path

from autounet.cli.common import add_progress_option, add_workers_option, parse_duration


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "benchmark",
        help="run the pipeline on Decathlon tasks and tabulate Dice, time and memory next to nnU-Net",
        description="Run 'autounet run' on each task folder of MSD_ROOT (original Decathlon layout) and write "
        "benchmark.md and benchmark.json: cross-validation Dice per label, time per stage, peak memory, "
        "next to nnU-Net's published Decathlon Dice.",
    )
    parser.add_argument("msd_root", type=Path, help="folder holding Task01_... folders (or one task folder)")
    parser.add_argument("--tasks", nargs="+", help="task folder names, e.g. Task04_Hippocampus (default: all found)")
    parser.add_argument("-o", "--output", type=Path, default=Path("benchmark"), help="output folder (default ./benchmark)")
    parser.add_argument("-c", "--configurations", nargs="+", help="configurations to train (default: every planned one)")
    parser.add_argument("-f", "--folds", nargs="+", default=["0", "1", "2", "3", "4"], help="folds (default all five)")
    parser.add_argument("--budget", type=parse_duration, dest="budget_seconds", help="wall-clock budget per task, e.g. 2h")
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--epochs", type=int, help="epochs per fold (default 1000; with --budget an upper bound)")
    add_workers_option(parser)
    add_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autounet.pipeline import RunOptions
    from autounet.pipeline.benchmark import run_benchmark
    from autounet.trainers import TrainingConfig

    training = {k: v for k, v in (("device", args.device), ("epochs", args.epochs)) if v is not None}
    options = RunOptions(
        configurations=tuple(args.configurations) if args.configurations else None,
        folds=tuple(int(f) if f.isdigit() else f for f in args.folds),
        budget_seconds=args.budget_seconds,
        training=TrainingConfig(**training, progress=args.progress),
        workers=args.workers,
        progress=args.progress,
    )
    results = run_benchmark(args.msd_root, args.tasks, args.output, options)
    print((args.output / "benchmark.md").read_text())
    return 0 if results else 1
