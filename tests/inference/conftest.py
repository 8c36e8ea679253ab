"""Fake results folders: hand-written plans for tiny networks and random-weight checkpoints, as the trainer writes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from autounet.inference.model_folder import network_input_channels
from autounet.io import Geometry, write_image
from autounet.jsonio import write_json
from autounet.networks import build_network
from autounet.planners.plans import PLANS_VERSION, ChannelNormalization, ConfigurationPlan, Plans
from autounet.trained_fold.checkpoint import save_checkpoint

LABELS = {"background": 0, "organ": 1, "lesion": 2}


def tiny_configuration(name: str, ndim: int = 3, spacing=None, patch=None, previous_stage=None, channels: int = 1):
    """A two-stage U-Net with 4 and 8 features: builds in milliseconds, predicts 16**3 patches quickly."""
    spacing = spacing or (1.0,) * ndim
    patch = patch or (16,) * ndim
    return ConfigurationPlan(
        name=name,
        spacing=tuple(spacing),
        patch_size=tuple(patch),
        batch_size=2,
        median_image_size_in_voxels=(24.0,) * ndim,
        normalization=tuple(ChannelNormalization("zscore") for _ in range(channels)),
        features_per_stage=(4, 8),
        kernel_sizes=((3,) * ndim, (3,) * ndim),
        strides=((1,) * ndim, (2,) * ndim),
        n_conv_per_stage=(1, 1),
        n_conv_per_stage_decoder=(1,),
        previous_stage=previous_stage,
        data_identifier=f"tiny_{name}",
    )


def tiny_plans(configurations: dict[str, ConfigurationPlan], channels: int = 1, labels=None) -> Plans:
    return Plans(
        dataset_name="Dataset999_Tiny",
        channel_names=tuple(f"MRI{i}" for i in range(channels)),
        labels=dict(labels or LABELS),
        transpose_forward=(0, 1, 2),
        transpose_backward=(0, 1, 2),
        original_median_spacing_after_transp=(1.0, 1.0, 1.0),
        original_median_shape_after_transp=(24.0, 24.0, 24.0),
        configurations=configurations,
    )


def write_checkpoint(results: Path, plans: Plans, configuration: str, fold, seed: int = 0, name: str = "final", overrides=None) -> Path:
    """A checkpoint with random weights as the trainer writes it; ``overrides`` replaces entries (e.g. ``network``)."""
    plan = plans.configuration(configuration)
    torch.manual_seed(seed)
    network = build_network(plan.to_dict(), network_input_channels(plans, plan), plans.num_classes, deep_supervision=True)
    checkpoint = {
        "network_weights": network.state_dict(),
        "epoch": 1,
        "iteration": 10,
        "configuration": configuration,
        "fold": fold,
        "plans_version": plans.plans_version,
        "network": plan.network,
        **(overrides or {}),
    }
    return save_checkpoint(results / configuration / f"fold_{fold}" / f"checkpoint_{name}.pt", checkpoint)


def make_results(folder: Path, plans: Plans, folds: dict[str, tuple]) -> Path:
    """``folder`` becomes a model folder with ``plans.json``, ``dataset.json`` and one checkpoint per fold."""
    folder.mkdir(parents=True, exist_ok=True)
    plans.save(folder / "plans.json")
    write_json(folder / "dataset.json", {"name": plans.dataset_name, "channel_names": {str(i): c for i, c in enumerate(plans.channel_names)},
                                        "labels": plans.labels, "file_ending": ".nii.gz"})
    for configuration, fold_list in folds.items():
        for index, fold in enumerate(fold_list):
            write_checkpoint(folder, plans, configuration, fold, seed=index + 7 * len(configuration))
    return folder


@pytest.fixture
def results_3d(tmp_path) -> Path:
    """A model folder with 3d_fullres trained on folds 0 and 1 (random weights)."""
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres")})
    return make_results(tmp_path / "results", plans, {"3d_fullres": (0, 1)})


def write_case(path: Path, shape=(20, 24, 22), geometry: Geometry | None = None, seed: int = 0, channels: int = 1) -> np.ndarray:
    """A random image with a bright cube (so cropping and normalisation have something to do)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(100, 10, size=(channels, *shape)).astype(np.float32)
    data[:, 5:12, 6:14, 4:12] += 80
    write_image(path, data if channels > 1 else data[0], geometry or Geometry(spacing=(1.0, 1.0, 1.0)))
    return data
