"""Compare training-step settings in one process, interleaving their steps so that load from other jobs on a
shared machine hits every setting alike. Prints median and min wall time per setting and the ratio to the first.

    python benchmarks/compare_network_steps.py --rounds 8
    python benchmarks/compare_network_steps.py --rounds 5 --with-compile --with-mkldnn-off
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_network_step import StepOptions, make_step, time_step, wait_for_quiet  # noqa: E402
import records  # noqa: E402

BASE = StepOptions()
VARIANTS = [
    # nnU-Net's own setup on a CPU: float32, default layout, torch's instance norm.
    StepOptions(dtype="float32", channels_last=False, norm="torch"),
    StepOptions(dtype="float32", channels_last=True, norm="torch"),
    StepOptions(dtype="float32", channels_last=False),
    StepOptions(dtype="float32", channels_last=True),
    StepOptions(dtype="bfloat16", channels_last=False, norm="torch"),
    StepOptions(dtype="bfloat16", channels_last=True, norm="torch"),
    StepOptions(dtype="bfloat16", channels_last=False),
    StepOptions(dtype="bfloat16", channels_last=True),  # autounet's defaults
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6, help="timed steps per setting, interleaved")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=BASE.batch)
    parser.add_argument("--patch", type=int, nargs="+", default=list(BASE.patch))
    parser.add_argument("--network", default=BASE.network)
    parser.add_argument("--with-compile", action="store_true", help="add bfloat16 + torch.compile")
    parser.add_argument("--with-mkldnn-off", action="store_true", help="add float32 with mkldnn disabled")
    parser.add_argument(
        "--quiet-cores",
        type=float,
        default=None,
        help="before each timed step wait (up to --max-wait s) until other processes use fewer cores than this",
    )
    parser.add_argument("--max-wait", type=float, default=600.0)
    parser.add_argument("--only", type=int, nargs="+", default=None, help="indices into the variant list")
    records.add_record_arguments(parser)
    args = parser.parse_args()

    variants = list(VARIANTS)
    if args.with_mkldnn_off:
        variants.append(StepOptions(dtype="float32", channels_last=False, norm="torch", mkldnn=False))
    if args.with_compile:
        variants.append(StepOptions(dtype="bfloat16", channels_last=True, compile=True))
    if args.only is not None:
        variants = [variants[i] for i in args.only]
    common = {"batch": args.batch, "patch": tuple(args.patch), "network": args.network}
    variants = [StepOptions(**{**v.__dict__, **common}) for v in variants]

    steps = []
    for options in variants:
        step, _ = make_step(options)
        for _ in range(args.warmup):
            step()
        steps.append(step)
    walls: list[list[float]] = [[] for _ in variants]
    for _ in range(args.rounds):
        for index, step in enumerate(steps):
            wait_for_quiet(args.quiet_cores, args.max_wait)
            walls[index].append(time_step(step)[0])
    reference = statistics.median(walls[0])
    print(f"threads={torch.get_num_threads()} batch={args.batch} patch={args.patch} rounds={args.rounds}")
    print(f"{'setting':58s} {'median s':>9s} {'min s':>7s} {'vs first':>9s}")
    for options, times in zip(variants, walls):
        median = statistics.median(times)
        print(f"{options.label():58s} {median:9.3f} {min(times):7.3f} {reference / median:8.2f}x")
    records.record_measurement(args, "compare_network_steps", {
        "settings": [{"setting": options.label(), "step_s_median": round(statistics.median(times), 3),
                      "step_s_min": round(min(times), 3), "speed_vs_first": round(reference / statistics.median(times), 3)}
                     for options, times in zip(variants, walls)]},
        {"batch_size": args.batch, "patch_size": list(args.patch), "network": args.network, "rounds": args.rounds,
         "threads": torch.get_num_threads(), "data_pipeline": "excluded (one fixed random batch)"})


if __name__ == "__main__":
    main()
