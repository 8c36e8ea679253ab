"""A model folder from elsewhere is checked before use: unsafe checkpoints, mismatching plans and missing folds are
refused with a message that says what to do."""

from __future__ import annotations

import json
import os

import pytest
import torch

from autounet.errors import MissingStageError, PlansError
from autounet.inference import Predictor
from autounet.inference.model_folder import load_trained_fold, trained_folds
from autounet.planners.plans import load_plans
from autounet.trained_fold.checkpoint import CheckpointError

from .conftest import tiny_configuration, tiny_plans, write_checkpoint


class _Payload:
    """Unpickling this runs ``os.system``: a checkpoint carrying it must never be unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_with_a_pickle_payload_is_refused_without_running_it(tmp_path, results_3d):
    marker = tmp_path / "pwned"
    path = results_3d / "3d_fullres" / "fold_0" / "checkpoint_final.pt"
    state = torch.load(path, weights_only=True)
    state["training_config"] = _Payload(marker)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="refused to load"):
        Predictor.from_model_folder(results_3d, folds=[0], device="cpu")
    assert not marker.exists()


def test_plans_that_do_not_match_the_weights_are_refused(results_3d):
    plans = load_plans(results_3d / "plans.json")
    wider = plans.configuration("3d_fullres").replace(features_per_stage=(6, 12))
    plans.__class__(**{**plans.__dict__, "configurations": {"3d_fullres": wider}}).save(results_3d / "plans.json")
    with pytest.raises(CheckpointError, match=r"do not fit the network that plans.json describes for 3d_fullres: shapes differ"):
        Predictor.from_model_folder(results_3d, device="cpu")


def test_checkpoint_of_another_configuration_or_network_is_refused(results_3d):
    plans = load_plans(results_3d / "plans.json")
    write_checkpoint(results_3d, plans, "3d_fullres", 0, overrides={"network": "resenc"})
    with pytest.raises(CheckpointError, match=r"network 'resenc' but the model folder's plans.json says 'unet'"):
        load_trained_fold(results_3d, plans, "3d_fullres", 0)
    write_checkpoint(results_3d, plans, "3d_fullres", 0, overrides={"configuration": "2d"})
    with pytest.raises(CheckpointError, match="configuration '2d'"):
        load_trained_fold(results_3d, plans, "3d_fullres", 0)


def test_newer_plans_version_is_refused(results_3d):
    data = json.loads((results_3d / "plans.json").read_text())
    data["plans_version"] = 99
    (results_3d / "plans.json").write_text(json.dumps(data))
    with pytest.raises(PlansError, match="plans version 99 is newer"):
        Predictor.from_model_folder(results_3d, device="cpu")


def test_checkpoint_of_older_plans_version_is_refused(results_3d):
    plans = load_plans(results_3d / "plans.json")
    write_checkpoint(results_3d, plans, "3d_fullres", 1, overrides={"plans_version": 0})
    with pytest.raises(CheckpointError, match="plans_version 0"):
        Predictor.from_model_folder(results_3d, device="cpu")


def test_not_a_checkpoint_is_refused(results_3d):
    path = results_3d / "3d_fullres" / "fold_1" / "checkpoint_final.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not an autounet checkpoint"):
        Predictor.from_model_folder(results_3d, device="cpu")


def test_missing_folds_and_configurations_are_explained(tmp_path, results_3d):
    assert trained_folds(results_3d, "3d_fullres") == [0, 1]
    with pytest.raises(FileNotFoundError, match=r"trained folds of 3d_fullres with checkpoint_final.pt: 0, 1"):
        Predictor.from_model_folder(results_3d, folds=[0, 3], device="cpu")
    with pytest.raises(PlansError, match="no configuration '2d'.*planned: 3d_fullres"):
        Predictor.from_model_folder(results_3d, configurations="2d", device="cpu")
    with pytest.raises(FileNotFoundError, match="checkpoint_best.pt"):
        Predictor.from_model_folder(results_3d, folds=[0], checkpoint="best", device="cpu")
    with pytest.raises(MissingStageError, match="no plans.json.*did you mean"):
        Predictor.from_model_folder(results_3d.parent, device="cpu")
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        Predictor.from_model_folder(tmp_path / "nowhere", device="cpu")


def test_untrained_configuration_is_explained(tmp_path):
    plans = tiny_plans({"2d": tiny_configuration("2d", ndim=2), "3d_fullres": tiny_configuration("3d_fullres")})
    folder = tmp_path / "results"
    folder.mkdir()
    plans.save(folder / "plans.json")
    write_checkpoint(folder, plans, "2d", 0)
    with pytest.raises(MissingStageError, match="no trained fold.*configurations with trained folds: 2d"):
        Predictor.from_model_folder(folder, configurations="3d_fullres", folds=None, device="cpu")


def test_fold_names_are_checked(results_3d):
    with pytest.raises(ValueError, match="fold must be 0..4 or 'all'"):
        Predictor.from_model_folder(results_3d, folds=[7], device="cpu")
