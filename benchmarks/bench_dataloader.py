"""Data pipeline throughput (batches/s) against the training step time, in-process and with worker processes.

Needs a results folder with plans.json and a preprocessed store (``autounet plan`` + ``autounet preprocess``):

    python benchmarks/bench_dataloader.py RESULTS/Hippocampus --configuration 3d_fullres --batches 30
    python benchmarks/bench_dataloader.py RESULTS/Hippocampus --features 16 --train-iterations 20

Reports, for the configuration's batch and patch (both overridable):
1. augmented batches per second with the loader alone: in-process, and with 1 and 2 batchgenerators workers;
2. the training step (forward, deep-supervision loss, backward, SGD) alone, with data already in memory;
3. whole iterations (wait for the batch + step) with 0, 1 and 2 workers, so the cost of sharing cores shows.

The figures go to a record in ``benchmarks/results/dataloader/`` (``--machine`` names the session).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from autounet.trainers import components  # noqa: E402
from autounet.trainers.config import TrainingConfig  # noqa: E402
from autounet.trainers.data import BatchStream, PatchLoader, plan_augmentation  # noqa: E402
from autounet.devices import resolve_precision  # noqa: E402
from autounet.trainers.trainer import Trainer  # noqa: E402
import records  # noqa: E402


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--configuration", default="3d_fullres")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--features", type=int, default=None, help="base features (doubling per stage, capped at 320)")
    parser.add_argument("--batches", type=int, default=30, help="batches per loader measurement")
    parser.add_argument("--train-iterations", type=int, default=15, help="iterations per training measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--precision", default="auto",
                        help="auto (default: bfloat16 where the CPU has bfloat16 units), float32, bfloat16")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--loader-only", action="store_true", help="skip the training measurements")
    records.add_record_arguments(parser)
    return parser.parse_args()


def _loader(store, plans, conf, batch_size: int, augment: bool, seed: int = 0) -> PatchLoader:
    mask = tuple(i for i, n in enumerate(conf.normalization) if n.use_mask)
    return PatchLoader(store, store.case_ids, batch_size, plan_augmentation(conf.patch_size, augment, mask), seed=seed)


def _batches_per_second(loader: PatchLoader, workers: int, count: int) -> float:
    with BatchStream(loader, workers) as stream:
        next(stream)  # worker start-up is not throughput
        start = time.perf_counter()
        for _ in range(count):
            next(stream)
        return count / (time.perf_counter() - start)


def main() -> None:
    args = _parse()
    if args.threads:
        torch.set_num_threads(args.threads)
    plans = components.read_plans(args.results)
    conf = plans.configuration(args.configuration)
    if args.features:
        features = tuple(min(args.features * 2**i, 320) for i in range(conf.n_stages))
        conf = conf.replace(features_per_stage=features)
    batch_size = args.batch_size or conf.batch_size
    store = components.open_store(args.results, conf)
    print(f"# {plans.dataset_name} {args.configuration}: batch {batch_size}, patch {list(conf.patch_size)}, "
          f"features {list(conf.features_per_stage)}, torch threads {torch.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.2f}")
    augment = not args.no_augment
    figures: dict = {"loader_batches_per_s": {}}
    settings = {"results": str(args.results), "configuration": args.configuration, "batch_size": batch_size,
                "patch_size": list(conf.patch_size), "features_per_stage": list(conf.features_per_stage),
                "augment": augment, "threads": torch.get_num_threads(), "precision": args.precision,
                "data_pipeline": "the loader alone, then step and iteration"}

    for workers in args.workers:
        rate = _batches_per_second(_loader(store, plans, conf, batch_size, augment), workers, args.batches)
        figures["loader_batches_per_s"][str(workers)] = round(rate, 3)
        print(f"loader alone, {workers} worker(s): {rate:.2f} batches/s ({1 / rate:.3f} s per batch)")

    if args.loader_only:
        records.record_measurement(args, "dataloader", figures, settings)
        return
    device = torch.device("cpu")
    dtype = resolve_precision(args.precision, device)
    config = TrainingConfig(device="cpu", validation_iterations=0, progress=False)
    memory_format = components.cpu_memory_format(conf, device)

    def make_trainer(batches) -> Trainer:
        torch.manual_seed(0)
        network = components.make_network(conf, plans, True).to(memory_format=memory_format)
        loss = components.make_loss("dice_ce", {}, conf, True)
        return Trainer(network, loss, batches, None, config, device, dtype, {1: "1"},
                       components.supervision_scales(conf, True), memory_format=memory_format)

    fixed = _loader(store, plans, conf, batch_size, augment).batch(0)
    trainer = make_trainer(iter(()))
    for _ in range(3):
        trainer.train_step(fixed)
    times = []
    for _ in range(args.train_iterations):
        start = time.perf_counter()
        trainer.train_step(fixed)
        times.append(time.perf_counter() - start)
    step = statistics.median(times)
    print(f"training step alone ({str(dtype).replace('torch.', '')}): median {step:.3f} s, min {min(times):.3f} s")
    figures.update(step_s_median=round(step, 3), iteration_s_median={}, wait_s_median={})

    for workers in args.workers:
        with BatchStream(_loader(store, plans, conf, batch_size, augment, seed=1), workers) as stream:
            trainer = make_trainer(stream)
            for _ in range(3):
                trainer.train_step(next(stream))
            waits, totals = [], []
            for _ in range(args.train_iterations):
                start = time.perf_counter()
                batch = next(stream)
                got = time.perf_counter()
                trainer.train_step(batch)
                waits.append(got - start)
                totals.append(time.perf_counter() - start)
        print(f"training iteration with {workers} worker(s): median {statistics.median(totals):.3f} s "
              f"(waiting for data {statistics.median(waits):.3f} s), load {os.getloadavg()[0]:.2f}")
        figures["iteration_s_median"][str(workers)] = round(statistics.median(totals), 3)
        figures["wait_s_median"][str(workers)] = round(statistics.median(waits), 3)
    records.record_measurement(args, "dataloader", figures, {**settings, "precision": str(dtype).replace("torch.", "")},
                               conditions={"load_1min_end": os.getloadavg()[0]})


if __name__ == "__main__":
    main()
