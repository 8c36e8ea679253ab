"""Time one full training step (forward, deep-supervision Dice+CE, backward, SGD step) of a network on the CPU.

Defaults reproduce nnU-Net's Task04 Hippocampus 3d_fullres plan: 3D U-Net, 4 stages, features (32, 64, 128, 256),
3x3x3 kernels, strides (1, 2, 2, 2), batch 7, patch 40x56x40, 1 input channel, 3 classes, SGD (Nesterov,
momentum 0.99) with gradient clipping at 12 as nnUNetTrainer does.

    python benchmarks/bench_network_step.py --dtype float32
    python benchmarks/bench_network_step.py --dtype bfloat16
    python benchmarks/bench_network_step.py --dtype float32 --norm torch --no-channels-last   # nnU-Net's setup
    python benchmarks/bench_network_step.py --dtype auto --data benchmarks/_work/Hippocampus  # with the data pipeline

The step alone runs on one fixed random batch (data pipeline excluded). With ``--data RESULTS`` (a results folder
with plans and a preprocessed store of ``--configuration``) every timed iteration first makes its batch in this
process from the real preprocessed cases with nnU-Net's augmentation, as autounet's trainer does by default on CPUs
with few cores, then steps on it: the record then holds the iteration with the data pipeline as well as the step
without it, to compare each with the same figure of nnU-Net (``benchmarks/peer/time_train_step.py``). ``--dtype
auto`` is autounet's default: bfloat16 where the CPU has bfloat16 units (AVX512-BF16 or AMX), float32 elsewhere.
The record goes to ``benchmarks/results/train_step/``.

See benchmarks/compare_network_steps.py to compare several settings in one process on a busy machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from autounet.losses import DeepSupervisionLoss, create_loss, deep_supervision_scales, downsample_target
from autounet.networks import build_network, count_parameters
from autounet.networks.cpu_speed import prepare_for_cpu_speed, to_channels_last, training_autocast
from autounet.networks.norm import InstanceNorm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import records  # noqa: E402

# nnU-Net's SGD settings (nnUNetTrainer: lr 1e-2, momentum 0.99, nesterov, weight decay 3e-5, grad clip 12).
LEARNING_RATE, MOMENTUM, WEIGHT_DECAY, GRAD_CLIP = 1e-2, 0.99, 3e-5, 12.0


@dataclass(frozen=True)
class StepOptions:
    """One benchmark setting."""

    network: str = "unet"
    batch: int = 7
    patch: tuple[int, ...] = (40, 56, 40)
    features: tuple[int, ...] = (32, 64, 128, 256)
    num_classes: int = 3
    in_channels: int = 1
    dtype: str = "bfloat16"
    channels_last: bool = True
    mkldnn: bool = True
    compile: bool = False
    deep_supervision: bool = True
    norm: str = "autounet"

    def label(self) -> str:
        parts = [self.dtype, "channels_last" if self.channels_last else "contiguous", f"norm={self.norm}"]
        if not self.mkldnn:
            parts.append("mkldnn off")
        if self.compile:
            parts.append("torch.compile")
        return ", ".join(parts)


def _configuration(options: StepOptions) -> dict:
    spatial_dims = len(options.patch)
    n_stages = len(options.features)
    return {
        "network": options.network,
        "features_per_stage": list(options.features),
        "kernel_sizes": [[3] * spatial_dims] * n_stages,
        "strides": [[1] * spatial_dims] + [[2] * spatial_dims] * (n_stages - 1),
        "n_conv_per_stage": [2] * n_stages,
        "n_conv_per_stage_decoder": [2] * (n_stages - 1),
    }


def _use_torch_instance_norm(model: torch.nn.Module, spatial_dims: int) -> None:
    """Swap every autounet InstanceNorm for torch.nn.InstanceNorm{2,3}d with the same parameters."""
    cls = torch.nn.InstanceNorm3d if spatial_dims == 3 else torch.nn.InstanceNorm2d
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, InstanceNorm):
                replacement = cls(child.num_features, eps=child.eps, affine=True)
                replacement.load_state_dict(child.state_dict())
                setattr(module, name, replacement)


def make_step(options: StepOptions, seed: int = 0) -> tuple[Callable[..., float], torch.nn.Module]:
    """Build model, optimizer, loss and a fixed random batch; return ``(step, model)``.

    ``step()`` trains on the fixed random batch; ``step(batch)`` on a loader's batch (``{"data", "seg"}`` arrays).
    """
    torch.manual_seed(seed)
    configuration = _configuration(options)
    model = build_network(configuration, options.in_channels, options.num_classes, options.deep_supervision)
    if options.norm == "torch":
        _use_torch_instance_norm(model, len(options.patch))
    model = prepare_for_cpu_speed(model, channels_last=options.channels_last)
    step_model = torch.compile(model) if options.compile else model
    optimizer = torch.optim.SGD(
        model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY
    )
    loss_fn = DeepSupervisionLoss(create_loss("dice_ce"))
    images = torch.randn(options.batch, options.in_channels, *options.patch)
    if options.channels_last:
        images = to_channels_last(images)
    target = torch.randint(0, options.num_classes, (options.batch, 1, *options.patch))
    scales = deep_supervision_scales(configuration["strides"]) if options.deep_supervision else [1.0]
    targets = downsample_target(target, scales)
    dtype = torch.bfloat16 if options.dtype == "bfloat16" else torch.float32

    def step(batch: dict | None = None) -> float:
        inputs, labels = images, targets
        if batch is not None:
            inputs = torch.from_numpy(np.ascontiguousarray(batch["data"]))
            inputs = to_channels_last(inputs) if options.channels_last else inputs
            labels = downsample_target(torch.from_numpy(batch["seg"].astype(np.int64)), scales)
        flags = contextlib.nullcontext() if options.mkldnn else torch.backends.mkldnn.flags(enabled=False)
        with flags:
            optimizer.zero_grad(set_to_none=True)
            with training_autocast(dtype):
                outputs = step_model(inputs)
            loss = loss_fn(outputs, labels if options.deep_supervision else labels[0])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            optimizer.step()
        return float(loss.detach())

    return step, model


def busy_cores_of_others(window_s: float = 2.0) -> float:
    """Cores used by other processes over ``window_s`` seconds (Linux /proc/stat; 0.0 elsewhere)."""

    def busy_jiffies() -> int:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        return sum(fields) - fields[3] - fields[4]  # minus idle and iowait

    try:
        before = busy_jiffies()
        time.sleep(window_s)
        return (busy_jiffies() - before) / os.sysconf("SC_CLK_TCK") / window_s
    except (OSError, ValueError):
        return 0.0


def wait_for_quiet(max_busy_cores: float | None, max_wait_s: float = 600.0) -> float:
    """Sleep until other processes use fewer than ``max_busy_cores`` (None: don't wait); return the last reading."""
    if max_busy_cores is None:
        return 0.0
    start = time.perf_counter()
    busy = busy_cores_of_others()
    while busy >= max_busy_cores and time.perf_counter() - start < max_wait_s:
        time.sleep(5.0)
        busy = busy_cores_of_others()
    return busy


def batch_maker(results: Path, configuration_name: str, options: StepOptions, seed: int = 0) -> Callable[[int], dict]:
    """``make(iteration) -> batch`` of ``options``' batch and patch from a preprocessed store, with nnU-Net's
    augmentation, made in this process (autounet's default on CPUs with few cores)."""
    from autounet.trainers import components
    from autounet.trainers.data.augmentation import plan_augmentation
    from autounet.trainers.data.loader import PatchLoader

    plans = components.read_plans(results)
    configuration = plans.configuration(configuration_name)
    store = components.open_store(results, configuration)
    mask = tuple(i for i, n in enumerate(configuration.normalization) if n.use_mask)
    loader = PatchLoader(store, store.case_ids, options.batch, plan_augmentation(options.patch, True, mask), seed=seed)
    return loader.batch


def time_step(step: Callable[[], float]) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one call."""
    start, cpu_start = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - start, time.process_time() - cpu_start


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="unet", help="registry name (default unet)")
    parser.add_argument("--batch", type=int, default=7)
    parser.add_argument("--patch", type=int, nargs="+", default=[40, 56, 40], help="spatial patch size")
    parser.add_argument("--features", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--num-classes", type=int, default=3)
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto",
                        help="autocast dtype (auto: bfloat16 where the CPU has bfloat16 units, as autounet trains)")
    parser.add_argument("--data", type=Path, default=None,
                        help="results folder with a preprocessed store: time iterations with the data pipeline too")
    parser.add_argument("--configuration", default="3d_fullres", help="configuration of --data")
    parser.add_argument("--iters", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--no-channels-last", action="store_true", help="keep the default contiguous memory format")
    parser.add_argument("--no-mkldnn", action="store_true", help="run with torch.backends.mkldnn disabled")
    parser.add_argument("--compile", action="store_true", help="wrap the network in torch.compile")
    parser.add_argument("--no-deep-supervision", action="store_true")
    parser.add_argument(
        "--norm",
        choices=["autounet", "torch"],
        default="autounet",
        help="instance norm: autounet's layout-keeping one, or torch.nn.InstanceNorm3d for comparison",
    )
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table of one step")
    parser.add_argument(
        "--quiet-cores",
        type=float,
        default=None,
        help="before each timed step wait (up to --max-wait s) until other processes use fewer cores than this",
    )
    parser.add_argument("--max-wait", type=float, default=600.0)
    records.add_record_arguments(parser)
    return parser.parse_args()


def main() -> None:
    args = _parse()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.dtype == "auto":
        from autounet.networks.cpu_speed import cpu_has_native_bfloat16

        args.dtype = "bfloat16" if cpu_has_native_bfloat16() else "float32"
    options = StepOptions(
        network=args.network,
        batch=args.batch,
        patch=tuple(args.patch),
        features=tuple(args.features),
        num_classes=args.num_classes,
        in_channels=args.in_channels,
        dtype=args.dtype,
        channels_last=not args.no_channels_last,
        mkldnn=not args.no_mkldnn,
        compile=args.compile,
        deep_supervision=not args.no_deep_supervision,
        norm=args.norm,
    )
    step, model = make_step(options)
    for _ in range(args.warmup):
        step()
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    walls, cpus, others = [], [], []
    for _ in range(args.iters):
        others.append(wait_for_quiet(args.quiet_cores, args.max_wait))
        wall, cpu = time_step(step)
        walls.append(wall)
        cpus.append(cpu)
    print(
        f"network={options.network} params={count_parameters(model)} batch={options.batch} patch={list(options.patch)} "
        f"threads={torch.get_num_threads()} {options.label()}"
    )
    print(
        f"step time: median {statistics.median(walls):.3f} s, min {min(walls):.3f} s, max {max(walls):.3f} s "
        f"over {args.iters} steps; CPU time (all threads) median {statistics.median(cpus):.3f} s; "
        f"other processes used {statistics.median(others):.2f} cores before a step (median)"
    )
    figures = {"step_s_median": round(statistics.median(walls), 3), "step_s_min": round(min(walls), 3),
               "step_cpu_s_median": round(statistics.median(cpus), 3), "timed_steps": args.iters}
    pipeline = "excluded (one fixed random batch)"
    if args.data is not None:
        figures.update(_iterations_with_data(args, options, step))
        pipeline = "iteration: included (batches made in-process from the preprocessed store, nnU-Net's augmentation); " \
                   "step: excluded"
    records.record_measurement(args, "train_step", figures, {
        "network": options.network, "features_per_stage": list(options.features), "batch_size": options.batch,
        "patch_size": list(options.patch), "precision": options.dtype, "data_pipeline": pipeline,
        "channels_last": options.channels_last, "norm": options.norm, "mkldnn": options.mkldnn,
        "compile": options.compile, "threads": torch.get_num_threads(), "parameters": count_parameters(model),
        "description": f"autounet ({options.label()})",
    }, conditions={"others_cores_before_step_median": round(statistics.median(others), 2)})
    records.compare_with_peer(args, "train_step", "step_s_median", figures["step_s_median"],
                              "benchmarks/peer/time_train_step.py", settings__precision="float32")


def _iterations_with_data(args: argparse.Namespace, options: StepOptions, step: Callable[..., float]) -> dict:
    """Median iteration (make the batch in this process, then step on it) and median batch time."""
    make = batch_maker(args.data, args.configuration, options)
    make(0)
    batches, iterations = [], []
    for iteration in range(1, args.iters + 1):
        wait_for_quiet(args.quiet_cores, args.max_wait)
        start = time.perf_counter()
        batch = make(iteration)
        made = time.perf_counter()
        step(batch)
        batches.append(made - start)
        iterations.append(time.perf_counter() - start)
    print(f"iteration with the data pipeline: median {statistics.median(iterations):.3f} s "
          f"(batch {statistics.median(batches):.3f} s)")
    return {"iteration_s_median": round(statistics.median(iterations), 3),
            "batch_s_median": round(statistics.median(batches), 3)}

if __name__ == "__main__":
    main()
