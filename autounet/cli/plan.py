"""``autounet plan DATASET -o PLANS.json`` or ``autounet plan --fingerprint FP.json --dataset-json DATASET.json``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from autounet.cli.common import add_progress_option, add_workers_option, parse_duration

if TYPE_CHECKING:
    from autounet.fingerprint import Fingerprint


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "plan",
        help="plan spacing, patch, batch and network of every configuration from the fingerprint",
        description="Write the plans JSON. Give a dataset folder (its fingerprint is computed or reused) or a "
        "fingerprint file (autounet or nnU-Net v2 dataset_fingerprint.json) with its dataset.json. Anything "
        "not overridden is derived by the rules in docs/planning.md.",
    )
    add = parser.add_argument
    add("dataset", nargs="?", type=Path, help="dataset folder (MSD or nnU-Net v2 layout)")
    add("--fingerprint", type=Path, help="plan from this fingerprint file instead of a dataset folder")
    add("--dataset-json", type=Path, help="dataset.json (MSD or nnU-Net v2 style) for an nnU-Net fingerprint")
    add("-o", "--output", type=Path, help="plans JSON (default: DATASET_NAME/plans.json, or plans.json)")
    add("--gpu-memory", dest="memory_budget_gb", type=float, metavar="GB",
        help="GPU memory to plan for (default: the 8 GB reference)")
    add("--patch-size", type=int, nargs="+", metavar="N",
        help="patch in voxels after transposition: 3 values for the 3D configurations, 2 for 2d")
    add("--batch-size", type=int, help="batch size of every configuration (the patch shrinks until it fits)")
    add("--spacing", type=float, nargs="+", metavar="MM",
        help="full-resolution target spacing in the input axis order (z y x)")
    add("--configurations", nargs="+", metavar="NAME",
        help="plan only these: 2d 3d_fullres 3d_lowres 3d_cascade_fullres")
    add("--network", help="network family registry name (default: unet)")
    add("--context-slices", type=int, metavar="K",
        help="2.5D: feed the 2d configuration K neighbouring slices on each side as extra input channels "
        "(3D data only; default 0)")
    add("--budget", type=parse_duration, dest="budget_seconds", metavar="TIME",
        help="compute-aware: time one fold's training may take (e.g. 30m); measures candidate networks on this "
        "device and chooses width, batch and iterations for it (docs/planning.md)")
    add("--device", default="auto", help="with --budget: device training will use (auto, cpu, cuda, cuda:N, mps)")
    add("--precision", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
        help="with --budget: training precision (default auto: bf16 on CPU, fp16 on GPU)")
    add("--explain", action="store_true", help="print why each value was chosen")
    add_workers_option(parser)
    add_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autounet.planners import PlanOverrides, format_explanations, plan_experiment

    fingerprint, use_mask, output = _load_fingerprint(args)
    overrides = PlanOverrides(
        patch_size=tuple(args.patch_size) if args.patch_size else None,
        batch_size=args.batch_size,
        spacing=tuple(args.spacing) if args.spacing else None,
        configurations=tuple(args.configurations) if args.configurations else None,
        network=args.network,
        use_mask_for_norm=use_mask,
        context_slices=args.context_slices,
    )
    plans = plan_experiment(fingerprint, memory_budget_gb=args.memory_budget_gb, overrides=overrides)
    if args.budget_seconds is not None:
        from autounet.pipeline.budget import plan_configurations_for_budget, training_cases_per_fold

        plans = plan_configurations_for_budget(
            plans, args.budget_seconds, device=args.device, precision=args.precision,
            num_training_cases=training_cases_per_fold(fingerprint.num_cases),
        )
    plans.save(output)
    print(f"{plans.dataset_name}: transpose {list(plans.transpose_forward)}, planned for {plans.memory_budget_gb:g} GB")
    for name, conf in plans.configurations.items():
        print(
            f"  {name}: spacing {[round(s, 4) for s in conf.spacing]} patch {list(conf.patch_size)} "
            f"batch {conf.batch_size} stages {conf.n_stages}"
            + (f" context slices {conf.context_slices}" if conf.context_slices else "")
            + (f" features {list(conf.features_per_stage)}, {conf.training.budget_iterations} iterations"
               if conf.training.budget_iterations is not None else "")
        )
    if args.explain:
        print(format_explanations(plans))
    else:
        for note in plans.notes:
            print(f"  note: {note}")
    print(f"wrote {output}")
    return 0


def _load_fingerprint(args: argparse.Namespace) -> tuple[Fingerprint, bool | None, Path]:
    """The fingerprint, nnU-Net's ``use_mask_for_norm`` from dataset.json (if any) and the output path."""
    from autounet.errors import PlansError
    from autounet.jsonio import read_json
    from autounet.layout import DATASET_FILE, PLANS_FILE, ResultsLayout
    from autounet.pipeline.prepare import default_results_folder

    if (args.dataset is None) == (args.fingerprint is None):
        raise PlansError(
            "give either a dataset folder or --fingerprint FP.json (with --dataset-json for nnU-Net files), not both"
        )
    if args.fingerprint is not None:
        from autounet.fingerprint import load_fingerprint

        fingerprint = load_fingerprint(args.fingerprint, args.dataset_json)
        raw = read_json(args.dataset_json) if args.dataset_json else {}
        if args.dataset_json:
            from autounet.dataset.description import parse_dataset_json
            from autounet.dataset.regions import refuse_region_labels

            refuse_region_labels(parse_dataset_json(raw, str(args.dataset_json)), str(args.dataset_json))
        return fingerprint, raw.get("use_mask_for_norm"), args.output or Path(PLANS_FILE)
    from autounet.dataset import load_dataset
    from autounet.fingerprint import compute_fingerprint

    dataset = load_dataset(args.dataset)
    output = args.output or ResultsLayout(default_results_folder(args.dataset)).plans
    fingerprint = compute_fingerprint(
        dataset, output=ResultsLayout(output.parent).fingerprint, workers=args.workers, progress=args.progress
    )
    dataset_json = args.dataset / DATASET_FILE
    raw = read_json(dataset_json) if dataset_json.is_file() else {}
    return fingerprint, raw.get("use_mask_for_norm"), output
