"""``autounet demo``: make synthetic data and run every available stage on it."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="generate a small synthetic dataset and run the pipeline on it",
        description="Generate a synthetic MSD-layout dataset and run the pipeline on it end to end.",
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("demo_output"), help="folder for data and results")
    parser.add_argument("--kind", choices=["3d", "3d_aniso", "2d"], default="3d", help="which synthetic dataset")
    parser.add_argument("--cases", type=int, default=12, help="number of training cases to generate")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autounet.dataset import load_dataset
    from autounet.dataset.demo import DemoSpec, make_demo_dataset
    from autounet.fingerprint import compute_fingerprint

    data_dir = args.output / f"Demo_{args.kind}"
    if not (data_dir / "dataset.json").exists():
        make_demo_dataset(data_dir, DemoSpec(kind=args.kind, num_cases=args.cases))
        print(f"generated {args.cases} synthetic cases in {data_dir}")
    dataset = load_dataset(data_dir)
    fingerprint = compute_fingerprint(dataset, output=args.output / "fingerprint.json")
    print(f"fingerprint: {fingerprint.num_cases} cases -> {args.output / 'fingerprint.json'}")
    return 0
