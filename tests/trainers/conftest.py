"""Fixtures for trainer tests: a tiny results folder (plans with a 4-16 feature network + preprocessed store)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

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
    fingerprint = compute_fingerprint(dataset, output=results / "fingerprint.json", workers=1, progress=False)
    plans = shrink_plans(plan_experiment(fingerprint), configuration, patch_size)
    plans.save(results / "plans.json")
    preprocess_dataset(dataset, plans, [configuration], results / "preprocessed", workers=1, progress=False)
    return results


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Six isotropic 3D demo cases with two labels (read only)."""
    return make_demo_dataset(tmp_path_factory.mktemp("tiny_dataset"), DemoSpec(kind="3d", num_cases=6, seed=4))


@pytest.fixture(scope="session")
def tiny_results_template(tiny_dataset, tmp_path_factory) -> Path:
    """Plans + preprocessed store for ``tiny_dataset``; copy it before training (see ``tiny_results``)."""
    return make_results(tiny_dataset, tmp_path_factory.mktemp("tiny_results"), "3d_fullres", TINY_PATCH_3D)


@pytest.fixture
def tiny_results(tiny_results_template, tmp_path) -> Path:
    """A private copy of the tiny results folder (training writes into it)."""
    return Path(shutil.copytree(tiny_results_template, tmp_path / "results"))


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
