"""``autounet export-model RESULTS/<dataset> -o NAME.zip``: a model package people can hand to each other safely."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export-model",
        help="write a trained model as one verified .zip package",
        description="Write the model folder without its preprocessed data, validation predictions, splits and "
        "fingerprint, plus manifest.json (sha256 of every file, labels, channels, configurations, folds, "
        "cross-validation Dice). No pickle. 'autounet predict -m NAME.zip' and 'autounet serve' take the package.",
    )
    parser.add_argument("model_dir", type=Path, help="RESULTS/<dataset> folder (plans.json + trained folds)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the package to write, e.g. Hippocampus.zip")
    parser.add_argument("-c", "--configurations", nargs="+", default=None, help="configuration(s) to include (default: the find-best winner)")
    parser.add_argument("-f", "--folds", nargs="+", default=None, help="folds to include: 0 1 2 3 4 or all (default: every trained fold)")
    parser.add_argument("--checkpoint", choices=["final", "best", "latest"], default="final")
    parser.add_argument("--description", default="", help="free text recorded in the manifest")
    parser.add_argument("--license", default="", help="license of the weights, e.g. CC-BY-4.0")
    parser.add_argument("--model-version", default="", help="version label recorded in the manifest, e.g. 2024.1")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing package")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autounet.packaging import export_model
    from autounet.packaging.unpack import opened_package

    path = export_model(
        args.model_dir, args.output, configurations=args.configurations, folds=args.folds, checkpoint=args.checkpoint,
        description=args.description, license=args.license, model_version=args.model_version, overwrite=args.overwrite,
    )
    with opened_package(path) as opened:  # prove it opens and verifies before telling the user it is done
        manifest = opened.manifest
    dice = (manifest.get("cross_validation") or {}).get("mean_dice")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {len(manifest['files'])} files): {manifest['name']}, "
          f"{', '.join(manifest['configurations'])} folds {', '.join(map(str, manifest['folds']))}"
          + (f", cross-validation Dice {dice:.4f}" if isinstance(dice, float) else ""))
    print(f"sha256 {opened.sha256}")
    return 0
