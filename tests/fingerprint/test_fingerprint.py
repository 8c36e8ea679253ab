"""Fingerprints of synthetic and real datasets: correct numbers, deterministic, reused when unchanged."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from autounet.cli import main
from autounet.dataset import load_dataset
from autounet.dataset.demo import DemoSpec, make_demo_dataset
from autounet.errors import DatasetError
from autounet.fingerprint import Fingerprint, compute_fingerprint, fingerprint_case, load_fingerprint


def test_case_fingerprint_measures_crop_labels_and_samples(tmp_path):
    image = np.zeros((10, 12, 14), np.float32)
    image[2:8, 3:9, 4:12] = 5.0  # the non-zero body
    label = np.zeros_like(image, dtype=np.uint8)
    label[3:5, 4:6, 5:7] = 1  # 8 voxels
    label[6, 6, 6] = 2
    for name, array in (("img.nii.gz", image), ("lab.nii.gz", label)):
        itk = sitk.GetImageFromArray(array)
        itk.SetSpacing((0.5, 0.5, 2.0))
        sitk.WriteImage(itk, str(tmp_path / name))
    case, samples = fingerprint_case("c", [tmp_path / "img.nii.gz"], tmp_path / "lab.nii.gz", samples_per_case=5)
    assert case.shape == (10, 12, 14)
    assert case.spacing == (2.0, 0.5, 0.5)
    assert case.shape_after_crop == (6, 6, 8)
    assert case.relative_size_after_crop == pytest.approx(6 * 6 * 8 / (10 * 12 * 14))
    assert case.label_voxels == {0: 10 * 12 * 14 - 9, 1: 8, 2: 1}
    assert len(samples) == 1 and samples[0].shape == (5,) and np.all(samples[0] == 5.0)


def test_label_shape_mismatch_names_the_file(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((4, 4, 4), np.float32)), str(tmp_path / "i.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((4, 4, 5), np.uint8)), str(tmp_path / "l.nii.gz"))
    with pytest.raises(DatasetError, match=r"l\.nii\.gz: label shape"):
        fingerprint_case("c", [tmp_path / "i.nii.gz"], tmp_path / "l.nii.gz")


def test_non_integer_labels_are_refused(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((4, 4, 4), np.float32)), str(tmp_path / "i.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(np.full((4, 4, 4), 0.5, np.float32)), str(tmp_path / "l.nii.gz"))
    with pytest.raises(DatasetError, match="non-integer"):
        fingerprint_case("c", [tmp_path / "i.nii.gz"], tmp_path / "l.nii.gz")


def test_demo_fingerprint_is_deterministic_and_worker_independent(demo_aniso):
    dataset = load_dataset(demo_aniso)
    one = compute_fingerprint(dataset, workers=1, progress=False)
    two = compute_fingerprint(dataset, workers=2, progress=False)
    assert one.to_dict() == two.to_dict()
    assert one.channel_names == ("MRI", "MRI")
    assert len(one.intensity) == 2
    spacings = one.spacings
    assert spacings[:, 0].min() > 3 * spacings[:, 1].max()  # anisotropic along z
    assert all(c.relative_size_after_crop < 1.0 for c in one.cases)  # the body leaves zero margins to crop
    assert set(one.label_stats) == {0, 1, 2} and one.label_stats[1]["case_fraction"] == 1.0


def test_fingerprint_json_round_trip_and_reuse(demo_2d, tmp_path):
    dataset = load_dataset(demo_2d)
    output = tmp_path / "fp.json"
    first = compute_fingerprint(dataset, output=output, progress=False)
    assert first.is_2d
    assert Fingerprint.from_dict(json.loads(output.read_text())) == first
    stamp = os.stat(output).st_mtime_ns
    again = compute_fingerprint(dataset, output=output, progress=False)
    assert again == first and os.stat(output).st_mtime_ns == stamp  # reused, not rewritten


def test_changed_input_invalidates_the_fingerprint(tmp_path):
    folder = make_demo_dataset(tmp_path / "d", DemoSpec(num_cases=3, seed=5))
    output = tmp_path / "fp.json"
    first = compute_fingerprint(load_dataset(folder), output=output, progress=False)
    label = folder / "labelsTr" / "demo_000.nii.gz"
    itk = sitk.ReadImage(str(label))
    array = sitk.GetArrayFromImage(itk)
    array[:] = 0
    changed = sitk.GetImageFromArray(array)
    changed.CopyInformation(itk)
    sitk.WriteImage(changed, str(label))
    second = compute_fingerprint(load_dataset(folder), output=output, progress=False)
    assert second.signature != first.signature
    assert second.cases[0].label_voxels.keys() == {0}


def test_nnunet_fingerprint_and_reference_files_load(tmp_path):
    nnunet = {
        "spacings": [[3.0, 0.7, 0.7], [2.5, 0.8, 0.8]],
        "shapes_after_crop": [[20, 100, 100], [22, 110, 100]],
        "median_relative_size_after_cropping": 0.9,
        "foreground_intensity_properties_per_channel": {
            "0": {"mean": 1, "median": 1, "std": 2, "min": 0, "max": 5, "percentile_00_5": 0, "percentile_99_5": 4}
        },
    }
    (tmp_path / "fp.json").write_text(json.dumps(nnunet))
    (tmp_path / "dataset.json").write_text(
        json.dumps({"channel_names": {"0": "CT"}, "labels": {"background": 0, "x": 1}, "file_ending": ".nii.gz"})
    )
    fingerprint = load_fingerprint(tmp_path / "fp.json", tmp_path / "dataset.json")
    assert fingerprint.num_cases == 2 and fingerprint.channel_names == ("CT",)
    assert fingerprint.median_relative_size_after_crop == pytest.approx(0.9)
    with pytest.raises(ValueError, match="dataset.json"):
        load_fingerprint(tmp_path / "fp.json")


def test_cli_writes_fingerprint(demo_3d, tmp_path, capsys):
    assert main(["fingerprint", str(demo_3d), "-o", str(tmp_path / "fp.json"), "--no-progress"]) == 0
    assert "8 cases" in capsys.readouterr().out
    assert load_fingerprint(tmp_path / "fp.json").num_cases == 8
    assert main(["fingerprint", str(tmp_path / "missing")]) == 2
    assert "dataset folder not found" in capsys.readouterr().err


@pytest.mark.integration
def test_hippocampus_fingerprint_matches_the_files(hippocampus_dir):
    dataset = load_dataset(hippocampus_dir)
    fingerprint = compute_fingerprint(dataset, progress=False)
    assert fingerprint.num_cases == len(dataset.training) == 208
    # Independent check against the files: every header read here with SimpleITK directly (no pixels needed).
    reader = sitk.ImageFileReader()
    shapes, spacings = [], []
    for case in dataset.training:
        reader.SetFileName(str(case.image_files[0]))
        reader.ReadImageInformation()
        shapes.append(reader.GetSize()[::-1])
        spacings.append(reader.GetSpacing()[::-1])
    by_id = {c.case_id: c for c in fingerprint.cases}
    for case, shape, spacing in zip(dataset.training, shapes, spacings):
        assert by_id[case.case_id].shape == shape
        assert by_id[case.case_id].spacing == pytest.approx(spacing)
    median_spacing = np.median(fingerprint.spacings, axis=0)
    median_shape = np.median([c.shape for c in fingerprint.cases], axis=0)
    assert median_spacing == pytest.approx(np.median(spacings, axis=0))
    assert median_shape == pytest.approx(np.median(shapes, axis=0))
    # and it is what the Decathlon's Hippocampus looks like: 1 mm isotropic, about 36 x 50 x 35 voxels
    assert median_spacing == pytest.approx([1.0, 1.0, 1.0])
    assert np.all(np.abs(median_shape - [36, 50, 35]) <= 1.5)
    assert set(fingerprint.label_stats) == {0, 1, 2}
