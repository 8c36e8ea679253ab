"""``autounet run DATASET``: every stage from raw data to a selected, post-processed model, resumable."""

from __future__ import annotations

import argparse
from pathlib import Path

from autounet.cli.common import add_progress_option, add_workers_option, parse_duration


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run every stage: check, fingerprint, plan, preprocess, train all folds, find the best, report",
        description="Run the whole pipeline on a dataset. Re-running continues where a killed run stopped. "
        "Results go to RESULTS/<dataset name>/ (see docs/user_guide.md for the layout).",
    )
    parser.add_argument("dataset", type=Path, help="dataset folder (MSD or nnU-Net v2 layout)")
    parser.add_argument("-o", "--results", type=Path, default=Path("results"), help="results root folder (default ./results)")
    parser.add_argument("-c", "--configurations", nargs="+", help="configurations to train (default: every planned one)")
    parser.add_argument("-f", "--folds", nargs="+", default=["0", "1", "2", "3", "4"], help="folds to train (default 0 1 2 3 4; 'all' = one model on every case)")
    parser.add_argument("--budget", type=parse_duration, dest="budget_seconds", help="wall-clock budget of the whole run, e.g. 30m or 8h")
    parser.add_argument("--epochs", type=int, help="epochs per fold (default 1000; with --budget an upper bound)")
    parser.add_argument("--iterations-per-epoch", type=int, help="iterations per epoch (default 250)")
    parser.add_argument("--network", help="network family for every configuration (default: the plans', unet)")
    parser.add_argument("--gpu-memory", type=float, dest="gpu_memory_gb", help="GPU memory to plan for, in GB (default 8)")
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"), help="autocast dtype (default: bf16 on CPU, fp16 on GPU)")
    parser.add_argument("--replan", action="store_true", help="plan again even if plans.json exists")
    parser.add_argument("--no-check", dest="check", action="store_false", help="skip the dataset check")
    parser.add_argument("--no-find-best", dest="find_best", action="store_false", help="skip model selection and post-processing")
    parser.add_argument("--no-report", dest="report", action="store_false", help="skip the HTML report")
    add_workers_option(parser)
    add_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autounet.pipeline import RunOptions, run_pipeline
    from autounet.trainers import TrainingConfig

    training = {name: getattr(args, name) for name in ("epochs", "iterations_per_epoch", "device", "precision")}
    options = RunOptions(
        configurations=tuple(args.configurations) if args.configurations else None,
        folds=tuple(int(f) if f.isdigit() else f for f in args.folds),
        budget_seconds=args.budget_seconds,
        training=TrainingConfig(**{k: v for k, v in training.items() if v is not None}, progress=args.progress),
        workers=args.workers,
        check=args.check,
        replan=args.replan,
        gpu_memory_gb=args.gpu_memory_gb,
        network=args.network,
        find_best=args.find_best,
        report=args.report,
        progress=args.progress,
    )
    summary = run_pipeline(args.dataset, args.results, options)
    print_summary(summary)
    return 0


def print_summary(summary) -> None:
    """Print what a run produced: folds, the winner, the predict command and the report."""
    print(f"results: {summary.results_dir}")
    for note in summary.notes:
        print(f"  note: {note}")
    for fold in summary.folds:
        dice = (fold.validation or {}).get("foreground_mean_dice")
        shown = f"validation Dice {dice:.4f}" if isinstance(dice, float) else "no validation"
        print(f"  {fold.configuration} fold {fold.fold}: {fold.iterations} iterations, {fold.elapsed_seconds / 60:.1f} min, {shown}")
    if summary.best is not None:
        print(f"best: {summary.best.describe_best()}")
        if summary.best.command:
            print(f"predict with: {summary.best.command}")
    for name, stage in summary.stages.items():
        print(f"  stage {name}: {stage['seconds']:.1f} s, peak memory {stage['peak_rss_mb']:.0f} MiB")
    if summary.report:
        print(f"report: {summary.report}")
