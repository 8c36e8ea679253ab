"""train_fold end to end on tiny synthetic data: outputs, loss decreasing, fold all, overrides, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autounet.errors import MissingStageError
from autounet.pipeline import train_fold
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
    for key in ("train_loss", "val_loss", "ema_dice", "lr", "epoch_seconds", "data_seconds"):
        assert np.isfinite(record[key]), key
    assert 0 < record["data_seconds"] < record["epoch_seconds"]  # in-process augmentation takes time, not all of it
    assert "data wait" in (fold_dir / "training.log").read_text()
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


def test_2_5d_model_trains_predicts_and_refuses_plans_without_its_context(tiny_dataset, tmp_path):
    """A 2d configuration with one neighbouring slice per side: train, validate, predict; then a plans.json that
    lost the context cannot load the model (the network would see other inputs than it was trained on)."""
    from dataclasses import replace

    from autounet.dataset import load_dataset
    from autounet.inference import Predictor
    from autounet.planners import load_plans
    from autounet.trainers import load_checkpoint
    from autounet.trained_fold.checkpoint import CheckpointError

    from .helpers import make_results

    results = make_results(tiny_dataset, tmp_path / "results", "2d", (16, 16))
    plans = load_plans(results / "plans.json")
    with_context = plans.configuration("2d").replace(context_slices=1)
    replace(plans, configurations={**plans.configurations, "2d": with_context}).save(results / "plans.json")

    result = train_fold(results, "2d", 0, quick_config(final_validation=True))
    assert result.iterations == 6 and result.validation["failures"] == {}
    checkpoint = load_checkpoint(result.fold_dir / "checkpoint_final.pt")
    assert checkpoint["context_slices"] == 1 and checkpoint["in_channels"] == 3

    dataset = load_dataset(tiny_dataset)
    image = dataset.read_images(dataset.training[0])
    model = Predictor.from_model_folder(results, "2d", folds=[0], device="cpu", autocast_dtype=None, postprocessing=None)
    assert model.models["2d"][0].context_slices == 1
    prediction = model.predict_case(image)
    assert prediction.segmentation.shape == image.data.shape[1:]

    replace(plans, configurations={**plans.configurations, "2d": with_context.replace(context_slices=0)}).save(
        results / "plans.json"
    )
    from autounet.model_manifest import ModelManifestError

    with pytest.raises(ModelManifestError, match="changed since it was recorded: .*plans.json"):
        Predictor.from_model_folder(results, "2d", folds=[0], device="cpu")
    (results / "manifest.json").unlink()  # without the manifest, the checkpoint's own record still refuses it
    with pytest.raises(CheckpointError, match="trained with context_slices=1 .* plans.json says context_slices=0"):
        Predictor.from_model_folder(results, "2d", folds=[0], device="cpu")


def test_context_slices_training_override_is_recorded_for_inference(tiny_dataset, tmp_path):
    from autounet.errors import PlansError
    from autounet.inference import Predictor
    from autounet.planners import load_plans
    from autounet.trainers.components import effective_configuration

    from .helpers import make_results

    results = make_results(tiny_dataset, tmp_path / "results", "2d", (16, 16))
    plans = load_plans(results / "plans.json")
    assert plans.configuration("2d").context_slices == 0
    with pytest.raises(PlansError, match=r"3d_fullres, a 3D configuration.*\(--context-slices\)"):
        effective_configuration(plans, "3d_fullres", quick_config(context_slices=1), 6)
    train_fold(results, "2d", 0, quick_config(context_slices=2, epochs=1, iterations_per_epoch=2))
    model = Predictor.from_model_folder(results, "2d", folds=[0], device="cpu", postprocessing=None)
    trained = model.models["2d"][0]
    assert trained.context_slices == 2 and trained.network.in_channels == 5


@pytest.mark.parametrize("error", [MemoryError("Unable to allocate 3.2 GiB for an array"),
                                   "torch"])
def test_running_out_of_memory_names_the_need_and_keeps_the_checkpoints(tiny_results, error):
    import torch

    from autounet.errors import OutOfMemoryError
    from autounet.trainers import Callback

    if error == "torch":
        error = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    class RunOutAt(Callback):
        def on_iteration_end(self, trainer, loss):
            if trainer.state.iteration == 4:
                raise error

    with pytest.raises(OutOfMemoryError) as caught:
        train_fold(tiny_results, "3d_fullres", 0, quick_config(checkpoint_every_seconds=0.0), callbacks=[RunOutAt()])
    message = str(caught.value)
    assert str(error).split(" for ")[0] in message  # the allocator's own words: how much it asked for
    assert "batch 2" in message and "--resume" in message and "GB" in message and "--batch-size (e.g. 1)" in message
    fold_dir = tiny_results / "3d_fullres" / "fold_0"
    assert (fold_dir / "checkpoint_latest.pt").is_file()
    result = train_fold(tiny_results, "3d_fullres", 0, quick_config(), resume=True)
    assert result.iterations == 6


@pytest.mark.parametrize("backend", ["reference", "separable"])
def test_inference_preprocesses_a_training_case_exactly_as_training_did(tmp_path, backend):
    """Cases that need resampling, stored with a chosen resampling backend: the model records it and
    the predictor's arrays for a training image equal the stored training arrays bit for bit."""
    from autounet.dataset import load_dataset
    from autounet.dataset.demo import DemoSpec, make_demo_dataset
    from autounet.fingerprint import compute_fingerprint
    from autounet.inference import Predictor
    from autounet.planners import plan_experiment
    from autounet.preprocessing import open_preprocessed, preprocess_dataset
    from autounet.trainers import load_checkpoint

    from .helpers import shrink_plans

    import SimpleITK as sitk

    dataset_dir = make_demo_dataset(tmp_path / "dataset", DemoSpec(kind="3d", num_cases=5, seed=8))
    for index, case_id in enumerate(["demo_001", "demo_003"]):  # two cases need resampling in every axis
        for folder in ("imagesTr", "labelsTr"):
            path = str(dataset_dir / folder / f"{case_id}.nii.gz")
            image = sitk.ReadImage(path)
            image.SetSpacing((1.15, 0.85, 1.1) if index else (0.9, 1.2, 0.8))
            sitk.WriteImage(image, path)
    dataset = load_dataset(dataset_dir)
    results = tmp_path / "results"
    results.mkdir()
    fingerprint = compute_fingerprint(dataset, output=results / "fingerprint.json", workers=1, progress=False)
    plans = shrink_plans(plan_experiment(fingerprint), "3d_fullres", (16, 16, 16))
    plans.save(results / "plans.json")
    preprocess_dataset(dataset, plans, ["3d_fullres"], results / "preprocessed", workers=1, progress=False,
                       resampling_backend=backend)
    result = train_fold(results, "3d_fullres", 0, quick_config(epochs=1, iterations_per_epoch=1))
    assert load_checkpoint(result.fold_dir / "checkpoint_final.pt")["resampling_backend"] == backend

    store = open_preprocessed(results / "preprocessed" / "3d_fullres")
    model = Predictor.from_model_folder(results, "3d_fullres", folds=[0], device="cpu", postprocessing=None)
    resampled = 0
    for case in dataset.training:
        stored, _, properties = store.load(case.case_id, mmap=False)
        prepared = model.prepare(dataset.read_images(case), case.case_id)
        data, _ = prepared.data["3d_fullres"]
        np.testing.assert_array_equal(data, stored)
        resampled += tuple(properties.shape_after_resampling) != tuple(properties.shape_before_resampling)
    assert resampled > 0  # the comparison covered resampled cases
