"""Helpers for trainer tests: tiny plans (4-16 features), a results folder for them, a quick training config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from autounet.dataset import load_dataset
from autounet.dataset.demo import DemoSpec, make_demo_dataset
from autounet.fingerprint import compute_fingerprint
from autounet.planners import plan_experiment
from autounet.trainers import TrainingConfig

#: Small enough that a training step takes a few milliseconds on a CPU.
TINY_FEATURES = (4, 8, 16, 16, 16, 16)
TINY_PATCH_3D = (16, 16, 16)


def shrink_plans(plans, configuration: str, patch_size, batch_size: int = 2):
    """Replace ``configuration`` with a tiny network at ``patch_size`` (topology re-derived by the planner)."""
    from autounet.planners import plan_configuration

    conf = plans.configuration(configuration)
    result = plan_configuration(
        configuration,
        conf.spacing,
        conf.median_image_size_in_voxels,
        float(np.prod(conf.median_image_size_in_voxels)) * 10,
        conf.normalization,
        num_classes=plans.num_classes,
        patch_size=patch_size,
        batch_size=batch_size,
        base_features=4,
    ).plan
    tiny = conf.replace(
        patch_size=result.patch_size,
        batch_size=batch_size,
        features_per_stage=TINY_FEATURES[: result.n_stages],
        kernel_sizes=result.kernel_sizes,
        strides=result.strides,
        n_conv_per_stage=result.n_conv_per_stage,
        n_conv_per_stage_decoder=result.n_conv_per_stage_decoder,
    )
    configurations = dict(plans.configurations)
    configurations[configuration] = tiny
    from dataclasses import replace

    return replace(plans, configurations=configurations)


def make_results(dataset_dir: Path, results: Path, configuration: str, patch_size) -> Path:
    from autounet.preprocessing import preprocess_dataset

    dataset = load_dataset(dataset_dir)
    results.mkdir(parents=True, exist_ok=True)
    fingerprint = compute_fingerprint(dataset, output=results / "fingerprint.json", workers=1, progress=False)
    plans = shrink_plans(plan_experiment(fingerprint), configuration, patch_size)
    plans.save(results / "plans.json")
    preprocess_dataset(dataset, plans, [configuration], results / "preprocessed", workers=1, progress=False)
    return results


def quick_config(**changes) -> TrainingConfig:
    """A few iterations on the CPU, in-process data, no progress bar; float32 unless asked."""
    base = dict(
        epochs=2,
        iterations_per_epoch=3,
        validation_iterations=1,
        device="cpu",
        precision="float32",
        num_workers=0,
        num_threads=1,
        progress=False,
        final_validation=False,
        seed=0,
    )
    base.update(changes)
    return TrainingConfig(**base)


class StopAfter(Exception):
    """Raised by :class:`InterruptAt` to simulate a crash."""


def interrupt_at(iteration: int):
    """A callback that raises after ``iteration`` (after the built-in callbacks, which may have checkpointed)."""
    from autounet.trainers import Callback

    class InterruptAt(Callback):
        def on_iteration_end(self, trainer, loss):
            if trainer.state.iteration == iteration:
                raise StopAfter(f"interrupted after iteration {iteration}")

    return InterruptAt()


def final_weights(fold_dir: Path) -> dict:
    from autounet.trainers import load_checkpoint

    return load_checkpoint(fold_dir / "checkpoint_final.pt")["network_weights"]


def run_distributed_rank(rank: int, world_size: int, port: int, results: str, output: str) -> None:
    """Body of one process of the DDP test: join a gloo group through torchrun's variables and train."""
    import os

    import torch

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    from autounet.pipeline import train_fold
    from autounet.trainers import FitToBudget

    # A budget callback that fits early, so the ranks must agree on the schedule (rank 0 broadcasts it).
    budget = FitToBudget(600.0, 0.0, warmup=1, measure=2, refit_seconds=0.0)
    result = train_fold(results, "3d_fullres", 0, quick_config(), callbacks=[budget])

    torch.save({"iterations": result.iterations, "best": result.best_ema_dice}, Path(output) / f"rank{rank}.pt")
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def hippocampus_subset(source: Path, target: Path, count: int) -> Path:
    """The first ``count`` Hippocampus training cases as a dataset of their own (files symlinked)."""
    import json

    description = json.loads((source / "dataset.json").read_text())
    cases = description["training"][:count]
    for folder in ("imagesTr", "labelsTr"):
        (target / folder).mkdir(parents=True, exist_ok=True)
    for case in cases:
        for key in ("image", "label"):
            relative = case[key].lstrip("./")
            (target / relative).symlink_to((source / relative).resolve())
    description.update(training=cases, numTraining=len(cases), test=[], numTest=0)
    (target / "dataset.json").write_text(json.dumps(description))
    return target
