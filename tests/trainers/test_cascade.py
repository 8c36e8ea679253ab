"""Cascade training: the previous stage's cross-validation predictions as input, its augmentation, end to end."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from autounet.errors import MissingStageError
from autounet.pipeline import train_fold
from autounet.trainers.data.cascade_transforms import (
    PreviousStageToOneHot,
    RandomMorphology,
    RemoveRandomComponent,
    _ball_operation,
)

from .helpers import quick_config, shrink_plans

STAGES = ("3d_lowres", "3d_cascade_fullres")


@pytest.fixture(scope="module")
def cascade_results(tmp_path_factory):
    """Six 48x64x56 demo cases planned for a tiny GPU so that a 3d_lowres + cascade exists, with tiny networks."""
    from autounet.dataset import load_dataset
    from autounet.dataset.demo import DemoSpec, make_demo_dataset
    from autounet.fingerprint import compute_fingerprint
    from autounet.planners import plan_experiment
    from autounet.preprocessing import preprocess_dataset

    root = tmp_path_factory.mktemp("cascade")
    dataset_dir = make_demo_dataset(root / "dataset", DemoSpec(kind="3d", num_cases=6, shape=(48, 64, 56), seed=3))
    dataset = load_dataset(dataset_dir)
    results = root / "results"
    results.mkdir()
    fingerprint = compute_fingerprint(dataset, output=results / "fingerprint.json", workers=1, progress=False)
    plans = plan_experiment(fingerprint, memory_budget_gb=0.04)
    assert set(STAGES) <= set(plans.configurations), "the planner no longer plans a cascade for this data"
    for name in STAGES:
        plans = shrink_plans(plans, name, (24, 32, 32))
    plans.save(results / "plans.json")
    preprocess_dataset(dataset, plans, list(STAGES), results / "preprocessed", workers=1, progress=False)
    return dataset_dir, results


def test_cascade_needs_every_fold_of_its_previous_stage(cascade_results, tmp_path):
    import shutil

    dataset_dir, template = cascade_results
    results = shutil.copytree(template, tmp_path / "results")
    for stage in STAGES:
        shutil.rmtree(results / stage, ignore_errors=True)
    with pytest.raises(MissingStageError, match=r"folds 0 1 2 3 4 of 3d_lowres.*autounet train .* 3d_lowres 0"):
        train_fold(results, "3d_cascade_fullres", 0, quick_config(), dataset=dataset_dir)


def test_cascade_trains_on_cross_validation_predictions_and_predicts_new_images(cascade_results):
    from autounet.dataset import load_dataset
    from autounet.inference import Predictor
    from autounet.trainers import load_checkpoint
    from autounet.trainers.cascade import previous_stage_folder
    from autounet.planners import load_plans

    dataset_dir, results = cascade_results
    for fold in range(5):
        train_fold(results, "3d_lowres", fold, quick_config(final_validation=True), dataset=dataset_dir)
    result = train_fold(results, "3d_cascade_fullres", 0, quick_config(final_validation=True), dataset=dataset_dir)
    assert result.iterations == 6 and result.validation["failures"] == {}
    assert set(result.validation["mean_dice"]) == {"organ", "lesion"}

    # The network sees the image and one channel per foreground label of the previous stage.
    checkpoint = load_checkpoint(result.fold_dir / "checkpoint_final.pt")
    assert checkpoint["in_channels"] == 1 + 2

    # Every case got the prediction of the 3d_lowres fold that held it out, on the cascade's preprocessed grid.
    plans = load_plans(results / "plans.json")
    splits = json.loads((results / "splits.json").read_text())
    folder = previous_stage_folder(results, plans, "3d_cascade_fullres")
    dataset = load_dataset(dataset_dir)
    for fold, split in enumerate(splits):
        for case_id in split["val"]:
            mapped = np.load(folder / f"{case_id}.npy")
            stored = np.load(results / "preprocessed" / "3d_fullres" / f"{case_id}_seg.npy")
            assert mapped.shape == stored.shape
            assert set(np.unique(mapped)) <= {0, 1, 2}
            assert (results / "3d_lowres" / f"fold_{fold}" / "validation" / f"{case_id}{dataset.description.file_ending}").is_file()

    # A second run maps nothing again (unchanged predictions) and resumes the finished fold.
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    train_fold(results, "3d_cascade_fullres", 0, quick_config(final_validation=True), resume=True, dataset=dataset_dir)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before

    # Inference runs 3d_lowres (all five folds) first and feeds its segmentation to the cascade.
    model = Predictor.from_model_folder(results, "3d_cascade_fullres", folds=[0], device="cpu", autocast_dtype=None, mirroring=False,
                                        postprocessing=None)
    assert len(model.models["3d_lowres"]) == 5 and len(model.models["3d_cascade_fullres"]) == 1
    image = dataset.read_images(dataset.test[0])
    segmentation, _ = model.predict_image(image, return_probabilities=False)
    assert segmentation.shape == image.data.shape[1:]
    assert set(np.unique(segmentation)) <= {0, 1, 2}


def test_previous_stage_moves_to_one_hot_input_channels_after_the_image():
    seg = np.zeros((2, 2, 4, 4, 4), np.float32)
    seg[:, 1, :2] = 1
    seg[:, 1, 3] = 2
    seg[:, 1, 0, 0, 0] = -1
    out = PreviousStageToOneHot(3)(data=np.full((2, 1, 4, 4, 4), 7, np.float32), seg=seg.copy())
    assert out["data"].shape == (2, 3, 4, 4, 4) and out["seg"].shape == (2, 1, 4, 4, 4)
    assert np.all(out["data"][:, 0] == 7)
    assert out["data"][0, 1].sum() == 2 * 16 - 1 and out["data"][0, 2].sum() == 16


@pytest.mark.parametrize("operation, change", [("dilation", 1), ("erosion", -1), ("opening", -1), ("closing", 0)])
def test_ball_operations(operation, change):
    mask = np.zeros((21, 21, 21), bool)
    mask[6:15, 6:15, 6:15] = True
    out = _ball_operation(mask, operation, 2)
    assert np.sign(int(out.sum()) - int(mask.sum())) == change or (change == 0 and out.sum() >= mask.sum())
    assert not _ball_operation(np.zeros_like(mask), operation, 2).any()


def test_degrading_the_previous_stage_keeps_it_one_hot_and_removes_only_small_components():
    rng = np.random.default_rng(0)
    data = np.zeros((4, 3, 24, 24, 24), np.float32)
    data[:, 1, 4:14, 4:14, 4:14] = 1
    data[:, 2, 14:20, 14:20, 14:20] = 1
    data[:, 2, 2:4, 18:20, 18:20] = 1  # a small second component
    np.random.seed(int(rng.integers(2**31)))
    out = RandomMorphology((-2, -1), p_per_sample=1.0)(data=data.copy(), seg=None)["data"]
    assert out[:, 1:].sum(axis=1).max() <= 1  # no voxel in two classes
    assert not np.array_equal(out, data)
    removed = RemoveRandomComponent((-2, -1), p_per_sample=1.0, max_fraction=0.01)(data=data.copy(), seg=None)["data"]
    # The organ cube covers 7% of the patch and stays; the lesion's small component may go, its cube stays.
    assert np.array_equal(removed[:, 1], data[:, 1])
    assert removed[:, 2, 14:20, 14:20, 14:20].all() and removed[:, 2, 2:4, 18:20, 18:20].sum() == 0


def test_cascade_batches_carry_the_previous_stage_as_input(cascade_results, tmp_path):
    """The training loader's batches: image channel plus one-hot channels that agree with the mapped prediction."""
    from autounet.planners import load_plans
    from autounet.preprocessing import open_preprocessed
    from autounet.trainers.cascade import CascadeSource
    from autounet.trainers.data.augmentation import plan_augmentation
    from autounet.trainers.data.loader import PatchLoader

    _, results = cascade_results
    store = open_preprocessed(results / "preprocessed" / "3d_fullres")
    folder = tmp_path / "previous"
    folder.mkdir()
    for case_id in store.case_ids:  # the reference labels themselves as the "previous stage"
        np.save(folder / f"{case_id}.npy", np.asarray(store.load(case_id)[1]))
    plans = load_plans(results / "plans.json")
    loader = PatchLoader(CascadeSource(store, folder), store.case_ids, 2,
                         plan_augmentation((16, 16, 16), augment=False, previous_stage_classes=plans.num_classes))
    batch = loader.batch(0)
    assert batch["data"].shape == (2, 3, 16, 16, 16) and batch["seg"].shape == (2, 1, 16, 16, 16)
    for value in (1, 2):
        assert np.array_equal(batch["data"][:, value] == 1, batch["seg"][:, 0] == value)
    augmented = PatchLoader(CascadeSource(store, folder), store.case_ids, 2,
                            replace(plan_augmentation((16, 16, 16), previous_stage_classes=plans.num_classes)))
    assert augmented.batch(3)["data"].shape == (2, 3, 16, 16, 16)
