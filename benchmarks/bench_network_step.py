"""Time one full training step (forward, deep-supervision Dice+CE, backward, SGD step) of a network on the CPU.

Defaults reproduce nnU-Net's Task04 Hippocampus 3d_fullres plan: 3D U-Net, 4 stages, features (32, 64, 128, 256),
3x3x3 kernels, strides (1, 2, 2, 2), batch 7, patch 40x56x40, 1 input channel, 3 classes.

    python benchmarks/bench_network_step.py --dtype float32
    python benchmarks/bench_network_step.py --dtype bfloat16
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from autounet.losses import DeepSupervisionLoss, create_loss, deep_supervision_scales, downsample_target
from autounet.networks import build_network, count_parameters
from autounet.networks.cpu_speed import prepare_for_cpu_speed, to_channels_last, training_autocast
from autounet.networks.norm import InstanceNorm

# nnU-Net's SGD settings (nnUNetTrainer: lr 1e-2, momentum 0.99, nesterov, weight decay 3e-5, grad clip 12).
LEARNING_RATE, MOMENTUM, WEIGHT_DECAY, GRAD_CLIP = 1e-2, 0.99, 3e-5, 12.0


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="unet", help="registry name (default unet)")
    parser.add_argument("--batch", type=int, default=7)
    parser.add_argument("--patch", type=int, nargs="+", default=[40, 56, 40], help="spatial patch size")
    parser.add_argument("--features", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--num-classes", type=int, default=3)
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="bfloat16", help="autocast dtype")
    parser.add_argument("--iters", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--no-channels-last", action="store_true", help="keep the default contiguous memory format")
    parser.add_argument("--no-mkldnn", action="store_true", help="torch.backends.mkldnn.enabled = False")
    parser.add_argument("--compile", action="store_true", help="wrap the network in torch.compile")
    parser.add_argument("--no-deep-supervision", action="store_true")
    parser.add_argument(
        "--norm", choices=["autounet", "torch"], default="autounet",
        help="instance norm: autounet's layout-keeping one or torch.nn.InstanceNorm (for comparison)",
    )
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table of one step")
    return parser.parse_args()


def _configuration(args: argparse.Namespace) -> dict:
    spatial_dims = len(args.patch)
    n_stages = len(args.features)
    strides = [[1] * spatial_dims] + [[2] * spatial_dims] * (n_stages - 1)
    return {
        "network": args.network,
        "features_per_stage": args.features,
        "kernel_sizes": [[3] * spatial_dims] * n_stages,
        "strides": strides,
        "n_conv_per_stage": [2] * n_stages,
        "n_conv_per_stage_decoder": [2] * (n_stages - 1),
    }


def _use_torch_instance_norm(model: torch.nn.Module) -> None:
    """Swap every autounet InstanceNorm for torch.nn.InstanceNorm{2,3}d with the same parameters."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, InstanceNorm):
                spatial_dims = len(model.topology.kernel_sizes[0])
                cls = torch.nn.InstanceNorm3d if spatial_dims == 3 else torch.nn.InstanceNorm2d
                replacement = cls(child.num_features, eps=child.eps, affine=True)
                replacement.load_state_dict(child.state_dict())
                setattr(module, name, replacement)


def main() -> None:
    args = _parse()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.no_mkldnn:
        torch.backends.mkldnn.enabled = False
    torch.manual_seed(0)
    configuration = _configuration(args)
    deep_supervision = not args.no_deep_supervision
    model = build_network(configuration, args.in_channels, args.num_classes, deep_supervision)
    if args.norm == "torch":
        _use_torch_instance_norm(model)
    model = prepare_for_cpu_speed(model, channels_last=not args.no_channels_last)
    step_model = torch.compile(model) if args.compile else model
    optimizer = torch.optim.SGD(
        model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY
    )
    loss_fn = DeepSupervisionLoss(create_loss("dice_ce"))
    images = torch.randn(args.batch, args.in_channels, *args.patch)
    if not args.no_channels_last:
        images = to_channels_last(images)
    target = torch.randint(0, args.num_classes, (args.batch, 1, *args.patch))
    scales = deep_supervision_scales(configuration["strides"]) if deep_supervision else [1.0]
    targets = downsample_target(target, scales)
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with training_autocast(dtype):
            outputs = step_model(images)
        loss = loss_fn(outputs, targets if deep_supervision else targets[0])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        return float(loss.detach())

    for _ in range(args.warmup):
        step()
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(
        f"network={args.network} params={count_parameters(model)} batch={args.batch} patch={args.patch} "
        f"dtype={args.dtype} threads={torch.get_num_threads()} channels_last={not args.no_channels_last} "
        f"mkldnn={torch.backends.mkldnn.enabled} compile={args.compile} norm={args.norm}"
    )
    print(
        f"step time: median {statistics.median(times):.3f} s, min {min(times):.3f} s, max {max(times):.3f} s "
        f"over {args.iters} steps"
    )


if __name__ == "__main__":
    main()
