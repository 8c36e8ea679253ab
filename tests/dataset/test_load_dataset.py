"""Both dataset layouts load into the same interface."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autounet.dataset import load_dataset
from autounet.dataset.demo import DemoSpec, make_demo_dataset
from autounet.dataset.description import parse_dataset_json
from autounet.errors import DatasetError, ImageReadError
from autounet.io import Geometry, write_image

GEOMETRY = Geometry(spacing=(2.0, 1.0, 1.0))


def _write_nnunet_v2(root, cases=("a", "b"), channels=2, regions=False):
    labels = {"background": 0, "organ": 1, "tumor": 2}
    if regions:
        labels = {"background": 0, "whole": [1, 2], "core": 2}
    (root / "dataset.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "dataset.json").write_text(
        json.dumps({"channel_names": {str(c): f"ch{c}" for c in range(channels)}, "labels": labels,
                    "numTraining": len(cases), "file_ending": ".nii.gz"})
    )
    for case in cases:
        for c in range(channels):
            write_image(root / "imagesTr" / f"{case}_{c:04d}.nii.gz", np.full((3, 4, 5), c + 1, np.float32), GEOMETRY)
        write_image(root / "labelsTr" / f"{case}.nii.gz", np.zeros((3, 4, 5), np.uint8), GEOMETRY)
    return root


def test_msd_layout_with_4d_multichannel_images(demo_aniso):
    dataset = load_dataset(demo_aniso)
    assert dataset.description.layout == "msd"
    assert len(dataset.training) == 6 and len(dataset.test) == 2
    case = dataset.training[0]
    assert len(case.image_files) == 1  # one 4D file holds both channels
    image = dataset.read_images(case)
    assert image.num_channels == 2
    assert dataset.read_label(case).data.shape == (1,) + image.spatial_shape


def test_nnunet_v2_layout_groups_channel_files(tmp_path):
    dataset = load_dataset(_write_nnunet_v2(tmp_path / "ds"))
    assert dataset.description.layout == "nnunet_v2"
    assert dataset.case_ids == ["a", "b"]
    image = dataset.read_images(dataset.training[1])
    assert image.data.shape == (2, 3, 4, 5)
    assert image.data[1].max() == 2  # channel order follows _0000, _0001


def test_nnunet_v2_regions_are_parsed(tmp_path):
    dataset = load_dataset(_write_nnunet_v2(tmp_path / "ds", regions=True))
    assert dataset.description.regions == {"whole": (1, 2)}
    assert dataset.description.labels == {"background": 0, "core": 2}
    assert dataset.description.label_values == (0, 1, 2)


def test_missing_channel_file_fails_when_read(tmp_path):
    root = _write_nnunet_v2(tmp_path / "ds")
    (root / "imagesTr" / "b_0001.nii.gz").unlink()
    dataset = load_dataset(root)
    with pytest.raises(ImageReadError, match="b_0001.nii.gz: file not found"):
        dataset.read_images(dataset.case("b"))


def test_channel_count_mismatch_is_explained(tmp_path):
    folder = make_demo_dataset(tmp_path / "d", DemoSpec(num_cases=2))
    data = json.loads((folder / "dataset.json").read_text())
    data["modality"] = {"0": "T1", "1": "T2"}
    (folder / "dataset.json").write_text(json.dumps(data))
    dataset = load_dataset(folder)
    with pytest.raises(DatasetError, match="found 1 channel.*declares 2"):
        dataset.read_images(dataset.training[0])


@pytest.mark.parametrize(
    "content, message",
    [
        ({"labels": {"0": "bg"}}, "neither MSD style"),
        ({"modality": {"1": "MRI"}, "labels": {"0": "bg"}, "training": []}, "without gaps"),
        ({"modality": {"0": "MRI"}, "labels": {"bg": "0"}, "training": []}, "must be integer values"),
        ({"channel_names": {"0": "CT"}, "labels": {"bg": 0}}, "file_ending"),
        ([], "JSON object"),
    ],
)
def test_bad_dataset_json_is_explained(content, message):
    with pytest.raises(DatasetError, match=message):
        parse_dataset_json(content)


def test_missing_folder_or_json(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_dataset(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="autounet import"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "empty" / "dataset.json").write_text("{broken")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_dataset(tmp_path / "empty")


@pytest.mark.parametrize("kind", ["3d", "3d_aniso", "2d"])
def test_demo_datasets_have_learnable_labels(tmp_path, kind):
    folder = make_demo_dataset(tmp_path / kind, DemoSpec(kind=kind, num_cases=3, num_labels=3, seed=4))
    dataset = load_dataset(folder)
    for case in dataset.training:
        image = dataset.read_images(case).data[0].astype(float)
        label = dataset.read_label(case).data[0]
        assert set(np.unique(label)) <= {0, 1, 2, 3} and (label == 1).any() and (label == 2).any()
        # Each label is brighter than the background on average: there is something to learn.
        background = image[(label == 0) & (image > 0)].mean()
        assert image[label == 1].mean() > background + 30


@pytest.mark.integration
def test_real_hippocampus_loads(hippocampus_dir):
    dataset = load_dataset(hippocampus_dir)
    assert len(dataset.training) == 208
    assert dataset.description.channel_names == ("MRI",)
    assert dataset.description.labels == {"background": 0, "Anterior": 1, "Posterior": 2}
    case = dataset.training[0]
    assert dataset.read_images(case).spatial_shape == dataset.read_label(case).spatial_shape


@pytest.mark.parametrize(
    ("folder", "expected"),
    [("Dataset900_BraTSsample", "BraTSsample"), ("Dataset004_Hippocampus", "Hippocampus"),
     ("Task04_Hippocampus", "Hippocampus"), ("MyScans", "MyScans"), ("Dataset900", "Dataset900")],
)
def test_a_dataset_without_name_is_named_after_its_folder_as_nnunet_does(tmp_path, folder, expected):
    assert load_dataset(_write_nnunet_v2(tmp_path / folder)).name == expected


def test_the_name_in_dataset_json_wins_over_the_folder(tmp_path):
    root = _write_nnunet_v2(tmp_path / "Dataset900_BraTSsample")
    raw = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**raw, "name": "BrainTumour"}))
    assert load_dataset(root).name == "BrainTumour"
