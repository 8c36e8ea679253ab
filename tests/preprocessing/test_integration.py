"""Real data: a few Hippocampus cases (MSD, 3D MRI) and DRIVE images (2D RGB), plus corrupted real cases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from autounet.dataset import Dataset, load_dataset
from autounet.errors import DatasetError
from autounet.io import read_image, write_image
from autounet.planners.plans import ChannelNormalization
from autounet.preprocessing import open_preprocessed, preprocess_case, preprocess_dataset, restore_to_original

from .conftest import make_plans

pytestmark = pytest.mark.integration

HIPPOCAMPUS_CASES = ("hippocampus_001", "hippocampus_003", "hippocampus_004", "hippocampus_006")
HIPPOCAMPUS_LABELS = {"background": 0, "anterior": 1, "posterior": 2}


def _hippocampus_subset(root: Path) -> Dataset:
    dataset = load_dataset(root)
    keep = [case for case in dataset.training if case.case_id in HIPPOCAMPUS_CASES]
    return Dataset(dataset.root, dataset.description, keep, [])


def test_hippocampus_cases_round_trip(hippocampus_dir, tmp_path):
    plans = make_plans(spacing_3d=(1.0, 1.0, 1.0), spacing_2d=(1.0, 1.0), labels=HIPPOCAMPUS_LABELS)
    dataset = _hippocampus_subset(hippocampus_dir)
    folders = preprocess_dataset(dataset, plans, ["3d_fullres", "2d"], tmp_path, workers=1, progress=False)
    store = open_preprocessed(folders["3d_fullres"])
    assert store.case_ids == HIPPOCAMPUS_CASES and store.is_complete
    for case in dataset.training:
        data, seg, props = store.load(case.case_id)
        assert data.dtype == np.float32 and abs(float(data.mean())) < 1e-4 and abs(float(data.std()) - 1) < 1e-3
        label = read_image(case.label_file)
        one_hot = np.stack([seg[0] == v for v in (0, 1, 2)]).astype(np.float32)
        np.testing.assert_array_equal(restore_to_original(one_hot, props), label.data[0])
        assert sorted(store.foreground_locations(case.case_id)) == [1, 2]


def test_hippocampus_resampled_and_inference_path(hippocampus_dir):
    plans = make_plans(spacing_3d=(1.5, 0.8, 1.3), labels=HIPPOCAMPUS_LABELS)
    dataset = _hippocampus_subset(hippocampus_dir)
    case = dataset.training[0]
    image, label = dataset.read_images(case), dataset.read_label(case)
    data, seg, props = preprocess_case(image, plans, "3d_fullres", label)
    inference_data, _, _ = preprocess_case(image, plans, "3d_fullres")
    np.testing.assert_array_equal(data, inference_data)
    assert set(np.unique(seg)) == {0, 1, 2} and props.resampling_backend in ("reference", "separable")
    probabilities = np.stack([seg[0] == v for v in (0, 1, 2)]).astype(np.float32)
    restored = restore_to_original(probabilities, props)
    truth = label.data[0]
    for value in (1, 2):
        dice = 2 * np.sum((restored == value) & (truth == value)) / (np.sum(restored == value) + np.sum(truth == value))
        assert dice > 0.85


def _drive_dataset(drive_dir: Path, target: Path, count: int = 3) -> Path:
    """A tiny nnU-Net v2 layout from DRIVE: one grey PNG per colour channel, vessel labels 0/1."""
    images = sorted((drive_dir / "training" / "images").glob("*.tif"))[:count]
    for path in images:
        case_id = f"drive_{path.stem.split('_')[0]}"
        rgb = read_image(path)
        for channel in range(3):
            write_image(target / "imagesTr" / f"{case_id}_{channel:04d}.png", rgb.data[channel : channel + 1], rgb.geometry)
        manual = read_image(drive_dir / "training" / "1st_manual" / f"{path.stem.split('_')[0]}_manual1.gif")
        write_image(target / "labelsTr" / f"{case_id}.png", (manual.data > 127).astype(np.uint8), manual.geometry)
    (target / "dataset.json").write_text(json.dumps({
        "name": "DRIVE_subset", "channel_names": {"0": "R", "1": "G", "2": "B"},
        "labels": {"background": 0, "vessel": 1}, "numTraining": len(images), "file_ending": ".png",
    }))
    return target


def test_drive_images(drive_dir, tmp_path):
    root = _drive_dataset(drive_dir, tmp_path / "drive")
    plans = make_plans(
        spacing_3d=None, spacing_2d=(2.0, 2.0), labels={"background": 0, "vessel": 1},
        normalization=(ChannelNormalization("rgb_to_0_1"),) * 3,
    )
    folders = preprocess_dataset(root, plans, ["2d"], tmp_path / "out", workers=1, progress=False)
    store = open_preprocessed(folders["2d"])
    assert len(store) == 3
    data, seg, props = store.load(store.case_ids[0])
    assert data.shape[:2] == (3, 1) and 0 <= data.min() and data.max() <= 1
    assert props.original_shape == (1, 584, 565) and props.is_2d
    assert data.shape[2:] == tuple(round(s / 2) for s in props.shape_before_resampling[1:])
    assert set(np.unique(seg)) == {0, 1} and len(store.foreground_locations(store.case_ids[0])[1]) > 1000


def _copy_hippocampus(source: Path, target: Path) -> Path:
    training = []
    for case_id in HIPPOCAMPUS_CASES:
        for folder in ("imagesTr", "labelsTr"):
            (target / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / folder / f"{case_id}.nii.gz", target / folder / f"{case_id}.nii.gz")
        training.append({"image": f"./imagesTr/{case_id}.nii.gz", "label": f"./labelsTr/{case_id}.nii.gz"})
    description = json.loads((source / "dataset.json").read_text())
    description.update(training=training, test=[], numTraining=len(training))
    (target / "dataset.json").write_text(json.dumps(description))
    return target


def _rewrite(path: Path, change) -> Path:
    image = sitk.ReadImage(str(path))
    sitk.WriteImage(change(image), str(path))
    return path


def _with_array(image: sitk.Image, array: np.ndarray) -> sitk.Image:
    result = sitk.GetImageFromArray(array)
    result.CopyInformation(image)
    return result


def _label(root: Path) -> Path:
    return root / "labelsTr" / "hippocampus_003.nii.gz"


def _image(root: Path) -> Path:
    return root / "imagesTr" / "hippocampus_003.nii.gz"


CORRUPTIONS = {
    "label-value-out-of-range": lambda root: _rewrite(
        _label(root), lambda im: _with_array(im, np.where(sitk.GetArrayFromImage(im) == 2, 7, sitk.GetArrayFromImage(im)).astype(np.uint8))),
    "fractional-label": lambda root: _rewrite(
        _label(root), lambda im: _with_array(im, sitk.GetArrayFromImage(im).astype(np.float32) * 0.5)),
    "swapped-label-axes": lambda root: _rewrite(
        _label(root), lambda im: sitk.GetImageFromArray(np.ascontiguousarray(np.swapaxes(sitk.GetArrayFromImage(im), 1, 2)))),
    "label-shifted": lambda root: _rewrite(
        _label(root), lambda im: (im.SetOrigin(tuple(o + 3.0 for o in im.GetOrigin())), im)[1]),
    "image-truncated": lambda root: _image(root).write_bytes(_image(root).read_bytes()[:2000]) and _image(root),
    "2d-among-3d": lambda root: [_rewrite(p, lambda im: im[:, :, im.GetSize()[2] // 2]) for p in (_image(root), _label(root))][0],
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupted_real_case_is_named_and_the_rest_kept(hippocampus_dir, tmp_path, corruption):
    root = _copy_hippocampus(hippocampus_dir, tmp_path / "data")
    CORRUPTIONS[corruption](root)
    plans = make_plans(spacing_3d=(1.0, 1.0, 1.0), labels=HIPPOCAMPUS_LABELS)
    with pytest.raises(DatasetError, match=r"(?s)1 of 4 cases .*hippocampus_003\.nii\.gz"):
        preprocess_dataset(root, plans, ["3d_fullres"], tmp_path / "out", workers=1, progress=False)
    assert len(open_preprocessed(tmp_path / "out" / "3d_fullres")) == 3
