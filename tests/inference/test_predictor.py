"""Predictor: geometry round trip, fold and configuration ensembles, the cascade, uncertainty (tiny and fake models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from autounet.errors import DatasetError, PlansError
from autounet.inference import Predictor
from autounet.inference.ensemble import one_hot_foreground
from autounet.inference.model_folder import TrainedFold
from autounet.io import Geometry, Image, read_image, write_image
from autounet.planners.plans import Plans

from .conftest import make_results, tiny_configuration, tiny_plans, write_case

OBLIQUE = np.array([[0.0, 0.6, 0.8], [0.0, 0.8, -0.6], [1.0, 0.0, 0.0]])  # a rotation: oblique in-plane axes


class Threshold(nn.Module):
    """Label 1 where the (normalised) first channel is above ``level``, else background; label 2 never."""

    def __init__(self, level: float = 0.0):
        super().__init__()
        self.level = level

    def forward(self, x):
        zero = torch.zeros_like(x[:, :1])
        return torch.cat([zero, (x[:, :1] - self.level) * 10, zero - 100], dim=1)


class Constant(nn.Module):
    """The same logits everywhere."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits, dtype=torch.float32))

    def forward(self, x):
        shape = (x.shape[0], len(self.logits), *x.shape[2:])
        return self.logits.reshape(1, -1, *([1] * (x.ndim - 2))).expand(shape).clone()


class CopyPreviousStage(nn.Module):
    """Logits that reproduce the previous stage's one-hot channels (input channels 1 and 2)."""

    def forward(self, x):
        background = 1 - x[:, 1:3].sum(1, keepdim=True)
        return torch.cat([background, x[:, 1:2], x[:, 2:3]], dim=1) * 10


def fake_fold(configuration: str, network: nn.Module, patch, fold=0) -> TrainedFold:
    return TrainedFold(configuration, fold, Path("fake.pt"), network, None, tuple(patch))


def predictor(plans: Plans, models: dict, configurations, **options) -> Predictor:
    return Predictor(plans, models, configurations, autocast_dtype=None, **options)


@pytest.mark.parametrize("transpose", [(0, 1, 2), (1, 0, 2), (2, 0, 1)])
def test_geometry_round_trip_with_oblique_direction_and_anisotropic_spacing(tmp_path, transpose):
    """A bright cube comes back at the same world position after transpose, crop, resampling and restore."""
    spacing = np.array([0.8, 3.0, 0.6])
    geometry = Geometry(spacing=tuple(spacing), origin=(12.0, -30.0, 7.5), direction=tuple(OBLIQUE.ravel()))
    image = np.zeros((30, 12, 36), np.float32)
    image[2:28, 1:11, 3:33] = 10  # body: cropping removes the zero border
    cube = np.zeros(image.shape, bool)
    cube[10:20, 4:8, 12:24] = True
    image[cube] = 100
    write_image(tmp_path / "case.nii.gz", image, geometry)
    body = image[2:28, 1:11, 3:33]
    halfway = (55 - body.mean()) / body.std()  # the z-scored intensity half way between body and cube

    # planned spacing (transposed order): the coarse axis finer (nearest-neighbour, resampled separately), another
    # axis coarser (linear), so resampling happens both ways without losing the cube's thin side
    transposed = spacing[list(transpose)]
    factors = np.array([1.25, 1.25, 1.0])
    factors[np.argmax(transposed)] = 0.75
    target = tuple(float(s) for s in transposed * factors)
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres", spacing=target)})
    plans = Plans(**{**plans.__dict__, "transpose_forward": transpose, "transpose_backward": tuple(np.argsort(transpose))})
    model = predictor(plans, {"3d_fullres": [fake_fold("3d_fullres", Threshold(halfway), (16, 16, 16))]}, ["3d_fullres"])
    report = model.predict_folder(tmp_path, tmp_path / "out", progress=False)
    assert report.ok and report.written == ["case"]

    result = read_image(tmp_path / "out" / "case.nii.gz")
    np.testing.assert_allclose(result.geometry.spacing, geometry.spacing, rtol=1e-6)
    np.testing.assert_allclose(result.geometry.origin, geometry.origin, atol=1e-5)
    np.testing.assert_allclose(result.geometry.direction, geometry.direction, atol=1e-6)
    segmentation = result.data[0] == 1
    dice = 2 * (segmentation & cube).sum() / (segmentation.sum() + cube.sum())
    assert dice > 0.9
    world = lambda mask: geometry.index_to_world(np.argwhere(mask)).mean(0)  # noqa: E731
    np.testing.assert_allclose(world(segmentation), world(cube), atol=0.5)


def test_fold_ensemble_averages_softmax_probabilities_and_reports_disagreement():
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres")})
    folds = [
        fake_fold("3d_fullres", Constant([0.0, 2.0, 0.0]), (16, 16, 16), 0),
        fake_fold("3d_fullres", Constant([0.0, 0.0, 3.0]), (16, 16, 16), 1),
    ]
    model = predictor(plans, {"3d_fullres": folds}, ["3d_fullres"])
    data = np.full((1, 18, 20, 17), 5.0, np.float32)
    prediction = model.predict_case(Image(data, Geometry(spacing=(1, 1, 1))), probabilities=True, uncertainty=True)
    expected = (torch.softmax(torch.tensor([0.0, 2.0, 0.0]), 0) + torch.softmax(torch.tensor([0.0, 0.0, 3.0]), 0)) / 2
    np.testing.assert_allclose(prediction.probabilities[:, 3, 4, 5], expected.numpy(), rtol=1e-5)
    assert (prediction.segmentation == 2).all()
    np.testing.assert_allclose(prediction.disagreement, 0.5)  # fold 0 says label 1, the ensemble says 2
    entropy = -(expected * expected.log()).sum() / np.log(3)
    np.testing.assert_allclose(prediction.entropy, float(entropy), rtol=1e-5)


def test_configuration_ensemble_averages_in_the_input_geometry():
    plans = tiny_plans({
        "2d": tiny_configuration("2d", ndim=2, spacing=(0.5, 0.5)),
        "3d_fullres": tiny_configuration("3d_fullres", spacing=(2.0, 1.0, 1.0)),
    })
    models = {
        "2d": [fake_fold("2d", Constant([0.0, 2.0, 0.0]), (16, 16))],
        "3d_fullres": [fake_fold("3d_fullres", Constant([0.0, 0.0, 1.0]), (16, 16, 16))],
    }
    model = predictor(plans, models, ["2d", "3d_fullres"])
    image = Image(np.ones((1, 10, 20, 22), np.float32), Geometry(spacing=(1.0, 1.0, 1.0)))
    segmentation, probabilities = model.predict_image(image)
    assert segmentation.shape == probabilities.shape[1:] == (10, 20, 22)
    expected = (torch.softmax(torch.tensor([0.0, 2.0, 0.0]), 0) + torch.softmax(torch.tensor([0.0, 0.0, 1.0]), 0)) / 2
    np.testing.assert_allclose(probabilities.reshape(3, -1).mean(1), expected.numpy(), rtol=1e-4)
    assert (segmentation == 1).all()


def test_cascade_feeds_the_low_resolution_segmentation_as_one_hot_channels(tmp_path):
    plans = tiny_plans({
        "3d_lowres": tiny_configuration("3d_lowres", spacing=(2.0, 2.0, 2.0)),
        "3d_cascade_fullres": tiny_configuration("3d_cascade_fullres", previous_stage="3d_lowres"),
    })
    seen = {}

    class Recorder(CopyPreviousStage):
        def forward(self, x):
            seen["channels"] = x.shape[1]
            return super().forward(x)

    models = {
        "3d_lowres": [fake_fold("3d_lowres", Threshold(), (16, 16, 16))],
        "3d_cascade_fullres": [fake_fold("3d_cascade_fullres", Recorder(), (16, 16, 16))],
    }
    model = predictor(plans, models, ["3d_cascade_fullres"])
    data = np.full((1, 24, 26, 28), 10.0, np.float32)
    data[0, 6:18, 8:20, 6:22] = 100.0
    segmentation, _ = model.predict_image(Image(data, Geometry(spacing=(1, 1, 1))))
    assert seen["channels"] == 3  # 1 image channel + one-hot labels 1 and 2
    lowres_only = predictor(plans, {"3d_lowres": models["3d_lowres"]}, ["3d_lowres"]).predict_image(
        Image(data, Geometry(spacing=(1, 1, 1))), return_probabilities=False
    )[0]
    agreement = (segmentation == lowres_only).mean()
    assert agreement > 0.97 and (segmentation == 1).sum() > 1000


def test_ensembles_and_cascade_from_a_results_folder_with_random_weights(tmp_path):
    plans = tiny_plans({
        "2d": tiny_configuration("2d", ndim=2),
        "3d_fullres": tiny_configuration("3d_fullres"),
        "3d_lowres": tiny_configuration("3d_lowres", spacing=(2.0, 2.0, 2.0)),
        "3d_cascade_fullres": tiny_configuration("3d_cascade_fullres", previous_stage="3d_lowres"),
    })
    results = make_results(
        tmp_path / "results", plans, {"2d": (0,), "3d_fullres": (0, 1), "3d_lowres": (0, 1), "3d_cascade_fullres": (0, 1)}
    )
    write_case(tmp_path / "in" / "a.nii.gz", shape=(20, 22, 18))
    model = Predictor.from_model_folder(results, ["2d", "3d_fullres", "3d_cascade_fullres"], device="cpu", tile_batch_size=8)
    assert set(model.models) == {"2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres"}
    assert [f.fold for f in model.models["3d_lowres"]] == [0, 1]
    assert model.models["3d_cascade_fullres"][0].network.in_channels == 3
    report = model.predict_folder(tmp_path / "in", tmp_path / "out", save_probabilities=True, save_uncertainty=True, progress=False)
    assert report.ok, report.failed
    probabilities = np.load(tmp_path / "out" / "a.npz")["probabilities"]
    assert probabilities.shape == (3, 20, 22, 18)
    np.testing.assert_allclose(probabilities.sum(0), 1.0, atol=1e-5)
    assert read_image(tmp_path / "out" / "uncertainty" / "a_disagreement.nii.gz").data.max() <= 1.0


def test_default_configuration_is_the_single_trained_one_and_several_need_a_choice(tmp_path, results_3d):
    assert Predictor.from_model_folder(results_3d, device="cpu").configurations == ("3d_fullres",)
    plans = tiny_plans({"2d": tiny_configuration("2d", ndim=2), "3d_fullres": tiny_configuration("3d_fullres")})
    results = make_results(tmp_path / "two", plans, {"2d": (0,), "3d_fullres": (0,)})
    with pytest.raises(PlansError, match="several configurations are trained.*find-best"):
        Predictor.from_model_folder(results, device="cpu")


def test_wrong_channel_count_is_explained(results_3d):
    model = Predictor.from_model_folder(results_3d, device="cpu")
    image = Image(np.zeros((2, 8, 8, 8), np.float32), Geometry(spacing=(1, 1, 1)), source="two_channels.nii.gz")
    with pytest.raises(DatasetError, match=r"two_channels.nii.gz: 2 channel\(s\) but the model was trained on 1"):
        model.predict_image(image)


def test_two_dimensional_png_in_png_out(tmp_path):
    plans = tiny_plans({"2d": tiny_configuration("2d", ndim=2)})
    model = predictor(plans, {"2d": [fake_fold("2d", Threshold(), (16, 16))]}, ["2d"])
    picture = np.full((1, 1, 30, 26), 20, np.uint8)
    picture[0, 0, 8:20, 5:15] = 200
    write_image(tmp_path / "in" / "slide.png", picture, Geometry(spacing=(999.0, 1.0, 1.0), is_2d=True))
    report = model.predict_folder(tmp_path / "in", tmp_path / "out", save_uncertainty=True, progress=False)
    assert report.ok, report.failed
    result = read_image(tmp_path / "out" / "slide.png")
    assert result.data.shape == (1, 1, 30, 26)
    assert (result.data[0, 0, 8:20, 5:15] == 1).all() and result.data.sum() == 12 * 10
    assert (tmp_path / "out" / "uncertainty" / "slide_entropy.tif").is_file()


def test_one_hot_foreground():
    seg = np.array([[0, 1, 2, 2, -1]])
    np.testing.assert_array_equal(one_hot_foreground(seg, (0, 1, 2)), [[0, 1, 0, 0, 0], [0, 0, 1, 1, 0]])
