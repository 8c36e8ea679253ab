"""train_fold end to end on tiny synthetic data: outputs, loss decreasing, fold all, overrides, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autounet.errors import MissingStageError
from autounet.trainers import train_fold
from .helpers import quick_config


def test_train_fold_writes_checkpoints_logs_and_plot(tiny_results):
    result = train_fold(tiny_results, "3d_fullres", 0, quick_config())
    fold_dir = tiny_results / "3d_fullres" / "fold_0"
    assert result.fold_dir == fold_dir
    assert (result.epochs, result.iterations) == (2, 6)
    for name in ("checkpoint_latest.pt", "checkpoint_best.pt", "checkpoint_final.pt", "training_log.json",
                 "training.log", "progress.png"):
        assert (fold_dir / name).is_file(), name
    log = json.loads((fold_dir / "training_log.json").read_text())
    assert len(log["epochs"]) == 2
    record = log["epochs"][-1]
    assert set(record["dice_per_label"]) == {"1", "2"} or len(record["dice_per_label"]) == 2
    for key in ("train_loss", "val_loss", "ema_dice", "lr", "epoch_seconds"):
        assert np.isfinite(record[key]), key
    assert (tiny_results / "splits.json").is_file()


def test_missing_plans_names_the_command(tmp_path):
    with pytest.raises(MissingStageError, match='autounet plan'):
        train_fold(tmp_path, "3d_fullres", 0, quick_config())


@pytest.mark.parametrize(
    "spec, configuration, patch",
    [(dict(kind="2d", num_cases=5, num_labels=3, seed=5), "2d", (32, 32)),
     (dict(kind="3d_aniso", num_cases=5, num_channels=2, seed=6), "3d_fullres", (8, 32, 32))],
)
def test_2d_and_anisotropic_configurations_train(tmp_path, spec, configuration, patch):
    from autounet.dataset.demo import DemoSpec, make_demo_dataset

    from .helpers import make_results

    dataset = make_demo_dataset(tmp_path / "dataset", DemoSpec(**spec))
    results = make_results(dataset, tmp_path / "results", configuration, patch)
    result = train_fold(results, configuration, 0, quick_config(final_validation=True))
    assert result.iterations == 6
    assert result.validation["cases"] == 1 and set(result.validation["mean_dice"]) and result.validation["failures"] == {}
