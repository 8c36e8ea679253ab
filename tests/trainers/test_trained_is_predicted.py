"""What was trained is what is predicted: a fold trained with overrides that change the network (another patch that
adds a stage, another family with another memory profile) is predicted with the network, patch and context it was
trained with, not with what plans.json says."""

from __future__ import annotations

import json

import pytest

from autounet.cli import main
from autounet.dataset import load_dataset
from autounet.inference import Predictor
from autounet.io import read_image
from autounet.planners import load_plans

QUICK = ["--epochs", "1", "--iterations-per-epoch", "2", "--validation-iterations", "1", "--device", "cpu",
         "--workers", "0", "--precision", "float32", "--no-validation", "--no-progress"]


def _predict(results, tiny_dataset, tmp_path) -> list:
    images = sorted((tiny_dataset / "imagesTr").glob("*.nii.gz"))[:2]
    inputs = tmp_path / "in"
    inputs.mkdir()
    for image in images:
        (inputs / image.name).symlink_to(image)
    code = main(["predict", "-i", str(inputs), "-o", str(tmp_path / "out"), "-m", str(results), "-f", "0",
                 "--device", "cpu", "--no-mirroring", "--no-progress", "--workers", "0"])
    assert code == 0
    for image in images:
        assert read_image(tmp_path / "out" / image.name).data.shape == read_image(image).data.shape
    return images


@pytest.mark.parametrize(
    "override, patch, stages",
    [(["--patch-size", "32", "32", "32"], (32, 32, 32), 4),  # the plans' 16**3 patch has 3 stages
     (["--network", "resenc"], (32, 40, 40), 4)],  # another family: patch and topology planned again for it
)
def test_a_fold_trained_with_a_topology_override_predicts_with_what_it_trained(
    tiny_results, tiny_dataset, tmp_path, override, patch, stages
):
    planned = load_plans(tiny_results / "plans.json").configuration("3d_fullres")
    assert planned.patch_size == (16, 16, 16) and planned.n_stages == 3 and planned.network == "unet"
    assert main(["train", str(tiny_results), "3d_fullres", "0", *QUICK, *override]) == 0

    _predict(tiny_results, tiny_dataset, tmp_path)
    model = Predictor.from_model_folder(tiny_results, "3d_fullres", folds=[0], device="cpu", postprocessing=None)
    trained = model.models["3d_fullres"][0]
    assert trained.patch_size == patch
    assert len(trained.network.encoder.stages) == stages  # type: ignore[union-attr]
    record = json.loads((tiny_results / "3d_fullres" / "fold_0" / "fold.json").read_text())
    assert tuple(record["configuration"]["patch_size"]) == patch
    assert record["configuration"]["network"] == ("resenc" if "--network" in override else "unet")
    # plans.json is the default only: it is not rewritten by a training run.
    assert load_plans(tiny_results / "plans.json").configuration("3d_fullres") == planned


def test_prediction_of_a_training_case_matches_its_final_validation(tiny_results, tiny_dataset):
    """The final validation (trainers) and the predictor (inference) see the same network, patch and settings."""
    from autounet.pipeline import train_fold

    from .helpers import quick_config

    result = train_fold(tiny_results, "3d_fullres", 0, quick_config(patch_size=(32, 32, 32), final_validation=True))
    dataset = load_dataset(tiny_dataset)
    case_id = next(iter(sorted(p.name for p in (result.fold_dir / "validation").glob("*.nii.gz"))))
    case = dataset.case(case_id.replace(".nii.gz", ""))
    model = Predictor.from_model_folder(tiny_results, "3d_fullres", folds=[0], device="cpu", postprocessing=None,
                                        autocast_dtype=None)
    predicted = model.predict_case(dataset.read_images(case)).segmentation
    validated = read_image(result.fold_dir / "validation" / case_id).data[0]
    assert (predicted == validated).mean() > 0.999


@pytest.mark.integration
def test_real_hippocampus_fold_of_another_family_predicts_as_validated(hippocampus_dir, tmp_path):
    """Real cases, a tiny planned U-Net, trained as ``--network resenc`` (patch and topology planned again for that
    family): ``autounet predict`` of the held-out cases gives the final validation's label maps, on their grids."""
    import numpy as np

    from .helpers import hippocampus_subset, make_results

    dataset = hippocampus_subset(hippocampus_dir, tmp_path / "Hippocampus", 6)
    results = make_results(dataset, tmp_path / "results", "3d_fullres", (40, 56, 40))
    assert main(["train", str(results), "3d_fullres", "0", "--epochs", "1", "--iterations-per-epoch", "3",
                 "--validation-iterations", "1", "--device", "cpu", "--workers", "0", "--no-progress",
                 "--network", "resenc"]) == 0
    validation = results / "3d_fullres" / "fold_0" / "validation"
    held_out = sorted(validation.glob("*.nii.gz"))
    assert held_out and json.loads((validation / "fold_summary.json").read_text())["cases"] == len(held_out)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for prediction in held_out:
        (inputs / prediction.name).symlink_to((dataset / "imagesTr" / prediction.name).resolve())
    assert main(["predict", "-i", str(inputs), "-o", str(tmp_path / "out"), "-m", str(results), "-f", "0",
                 "--device", "cpu", "--no-progress", "--no-postprocess"]) == 0
    record = json.loads((results / "3d_fullres" / "fold_0" / "fold.json").read_text())
    assert record["configuration"]["network"] == "resenc" and record["overrides"] == {"network": "resenc"}
    for prediction in held_out:
        validated, predicted = read_image(prediction), read_image(tmp_path / "out" / prediction.name)
        assert predicted.data.shape == read_image(inputs / prediction.name).data.shape
        assert np.allclose(predicted.geometry.spacing, validated.geometry.spacing)
        assert (predicted.data == validated.data).mean() > 0.999
