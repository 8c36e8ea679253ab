"""``autounet train DATASET_OR_RESULTS CONFIG FOLD``: train one fold (0-4 or all) of a configuration."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from autounet.cli.common import add_progress_option, parse_duration


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one cross-validation fold (0-4 or all) of a configuration",
        description="Train the network the plans describe on one fold, then predict and score its validation cases. "
        "Given a dataset folder, missing stages (fingerprint, plan, preprocess) run first. See docs/training.md.",
    )
    parser.add_argument("target", type=Path, metavar="DATASET_OR_RESULTS", help="dataset folder, or results folder with plans.json")
    parser.add_argument("configuration", metavar="CONFIG", help="2d, 3d_fullres, 3d_lowres, ...")
    parser.add_argument("fold", metavar="FOLD", help="0-4, or all to train on every case")
    parser.add_argument("--results", type=Path, help="results folder (default: the target if it has plans.json, else ./DATASET_NAME)")
    parser.add_argument("--epochs", type=int, help="epochs (default 1000)")
    parser.add_argument("--iterations-per-epoch", type=int, help="iterations per epoch (default 250)")
    parser.add_argument("--budget", type=parse_duration, dest="budget_seconds", help="wall-clock budget, e.g. 30m or 2h: the schedule is fitted to it")
    parser.add_argument("--resume", action="store_true", help="continue from checkpoint_latest.pt")
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"), help="autocast dtype (default auto: bf16 on CPU, fp16 on GPU)")
    parser.add_argument("--loss", help="loss registry name (default: the plans', dice_ce)")
    parser.add_argument("--network", help="network family registry name overriding the plans'")
    parser.add_argument("--batch-size", type=int, help="override the plans' batch size")
    parser.add_argument("--patch-size", type=int, nargs="+", help="override the plans' patch size (topology re-derived)")
    parser.add_argument("--context-slices", type=int, metavar="K", help="2d only: K neighbouring slices on each side as extra input channels (2.5D), overriding the plans'")
    parser.add_argument("--early-stopping", type=int, metavar="PATIENCE", dest="early_stopping_patience", help="stop after PATIENCE epochs without a better smoothed validation Dice")
    parser.add_argument("--workers", type=int, dest="num_workers", help="data augmentation worker processes (default: per device; 0 = in-process)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--augmentation-scale", type=float, help="factor on augmentation probabilities, 0-1 (default: plans', else 1)")
    optimiser = parser.add_argument_group("optimiser and loss (defaults: nnU-Net's)")
    optimiser.add_argument("--initial-lr", type=float, help="initial learning rate of the poly schedule (default 0.01)")
    optimiser.add_argument("--momentum", type=float, help="SGD Nesterov momentum (default 0.99)")
    optimiser.add_argument("--weight-decay", type=float, help="SGD weight decay (default 3e-5)")
    optimiser.add_argument("--poly-exponent", type=float, help="exponent of the poly learning-rate decay (default 0.9)")
    optimiser.add_argument("--grad-clip", type=float, help="gradient norm clipping (default 12)")
    optimiser.add_argument("--loss-kwargs", type=_json_object, help='JSON arguments of the loss, e.g. \'{"alpha": 0.3}\'')
    optimiser.add_argument("--foreground-fraction", type=float, help="share of each batch centred on foreground (default 1/3)")
    optimiser.add_argument("--validation-iterations", type=int, help="pseudo-validation batches per epoch (default 50)")
    optimiser.add_argument("--no-augmentation", dest="augment", action="store_false", help="no data augmentation at all")
    optimiser.add_argument("--output-bias", choices=("prior", "zero"),
                           help="start of the output bias: prior (default: the log class prior of the plans, so the "
                                "untrained network predicts the class frequencies) or zero (nnU-Net's)")
    optimiser.add_argument("--no-deep-supervision", dest="deep_supervision", action="store_false", help="loss on the full-resolution output only")
    parser.add_argument("--threads", type=int, dest="num_threads", help="CPU threads of the network (default: tuned per epoch by timing)")
    parser.add_argument("--checkpoint-every", type=parse_duration, dest="checkpoint_every_seconds", help="write checkpoint_latest.pt this often (default 5m)")
    parser.add_argument("--save-probabilities", action="store_true", help="also save validation probabilities (.npz) for ensembling")
    parser.add_argument("--no-validation", dest="final_validation", action="store_false", help="skip the final validation")
    add_progress_option(parser)
    parser.set_defaults(func=run)


def _json_object(text: str) -> dict:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f'expected a JSON object such as {{"alpha": 0.3}}, got {text}')
    return value


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()  # the budget covers everything from here: preparation, training, final validation
    from autounet.errors import AutounetError
    from autounet.layout import ResultsLayout
    from autounet.pipeline import train_fold
    from autounet.pipeline.prepare import PrepareOptions, default_results_folder, prepare_results
    from autounet.trainers import TrainingConfig

    options = {name: getattr(args, name) for name in (
        "epochs", "iterations_per_epoch", "budget_seconds", "device", "precision", "loss", "network", "batch_size",
        "patch_size", "context_slices", "early_stopping_patience", "num_workers", "seed", "augmentation_scale",
        "initial_lr", "momentum", "weight_decay", "poly_exponent", "grad_clip", "loss_kwargs", "foreground_fraction",
        "validation_iterations", "num_threads", "checkpoint_every_seconds", "output_bias")}
    config = TrainingConfig(**{k: v for k, v in options.items() if v is not None},
                            final_validation=args.final_validation, save_probabilities=args.save_probabilities,
                            augment=args.augment, deep_supervision=args.deep_supervision, progress=args.progress)
    dataset = None
    if args.results is None and ResultsLayout(args.target).plans.is_file():
        results = args.target
    else:  # the same preparation as "autounet run": one fold of one configuration, no selection to keep time for
        dataset = args.target
        prepared = prepare_results(
            dataset, args.results or default_results_folder(dataset),
            PrepareOptions(configurations=(args.configuration,), folds=(args.fold,), with_previous_stages=False,
                           budget_seconds=args.budget_seconds, reserve_fraction=0.0, device=args.device or "auto",
                           precision=args.precision or "auto", progress=args.progress),
            started=started,
        )
        results = prepared.results_dir
        for note in prepared.notes:
            print(f"note: {note}")
    if args.budget_seconds is not None:
        remaining = args.budget_seconds - (time.monotonic() - started)
        if remaining <= 0:
            raise AutounetError(f"preparing {results} took the whole budget of {args.budget_seconds:.0f} s; "
                                "give a larger --budget, or train from the prepared results folder")
        config = config.replace(budget_seconds=remaining)
    result = train_fold(results, args.configuration, args.fold, config, resume=args.resume, dataset=dataset)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    print(f"{result.configuration} fold {result.fold}: {result.epochs} epochs, {result.iterations} iterations, "
          f"{result.elapsed_seconds / 60:.1f} min ({(time.monotonic() - started) / 60:.1f} min with preparation); "
          f"outputs in {result.fold_dir}")
    if result.stop_reason:
        print(f"  stopped early: {result.stop_reason}")
    if result.validation and "mean_dice" in result.validation:
        dice = ", ".join(f"{k} {v:.4f}" for k, v in result.validation["mean_dice"].items())
        print(f"  validation Dice: {dice} (mean {result.validation['foreground_mean_dice']:.4f})")
    return 0
