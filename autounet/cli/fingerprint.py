"""``autounet fingerprint DATASET -o FP.json``."""

from __future__ import annotations

import argparse
from pathlib import Path

from autounet.cli.common import add_progress_option, add_workers_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "fingerprint",
        help="measure spacings, shapes, intensities and labels of a dataset",
        description="Write the dataset fingerprint as JSON. An unchanged dataset reuses the existing file.",
    )
    parser.add_argument("dataset", type=Path, help="dataset folder (MSD or nnU-Net v2 layout)")
    parser.add_argument("-o", "--output", type=Path, default=None, help="fingerprint JSON (default: DATASET_fingerprint.json in the current folder)")
    parser.add_argument("--force", action="store_true", help="recompute even if the inputs did not change")
    parser.add_argument("--samples-per-case", type=int, default=10_000, help="foreground voxels sampled per case for intensity statistics")
    add_workers_option(parser)
    add_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autounet.dataset import load_dataset
    from autounet.fingerprint import compute_fingerprint

    dataset = load_dataset(args.dataset)
    output = args.output or Path(f"{args.dataset.resolve().name}_fingerprint.json")
    fingerprint = compute_fingerprint(
        dataset,
        output=output,
        workers=args.workers,
        samples_per_case=args.samples_per_case,
        reuse=not args.force,
        progress=args.progress,
    )
    summary = fingerprint.to_dict()["summary"]
    print(f"{dataset.name}: {fingerprint.num_cases} cases, {len(fingerprint.channel_names)} channel(s)")
    print(f"  median spacing (z, y, x): {[round(s, 4) for s in summary['median_spacing']]} mm")
    print(f"  median shape after crop: {summary['median_shape_after_crop']}")
    for value, stats in fingerprint.label_stats.items():
        print(f"  label {value}: {stats['voxels']} voxels, in {stats['case_fraction']:.0%} of cases")
    print(f"wrote {output}")
    return 0
