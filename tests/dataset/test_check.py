"""Unit tests of ``autounet check`` on tiny synthetic datasets (the real-data corpus is test_check_corpus.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from autounet.dataset import check_dataset
from autounet.dataset.check_case import geometry_mismatches
from autounet.dataset.demo import DemoSpec, make_demo_dataset
from autounet.io import Geometry, write_image

BASE = Geometry(spacing=(2.0, 0.5, 0.5), origin=(10.0, -20.0, 30.0))


@pytest.mark.parametrize(
    "other, expected",
    [
        (Geometry(spacing=(2.0, 0.5, 0.5), origin=(10.0, -20.0, 30.0)), []),
        (Geometry(spacing=(2.001, 0.5002, 0.5), origin=(10.0, -20.0, 30.0)), []),  # below 0.1 %
        (Geometry(spacing=(2.0, 0.5, 0.5), origin=(10.004, -20.0, 30.0)), []),  # < 1/100 of 0.5 mm
        (Geometry(spacing=(2.0, 0.6, 0.5), origin=(10.0, -20.0, 30.0)), ["spacing"]),
        (Geometry(spacing=(2.0, 0.5, 0.5), origin=(10.0, -20.0, 30.5)), ["origin"]),
        (Geometry(spacing=(2.0, 0.5, 0.5), origin=(10.0, -20.0, 30.0), direction=(-1, 0, 0, 0, 1, 0, 0, 0, 1)),
         ["direction"]),
        (Geometry(spacing=(2.0, 0.5, 0.5), origin=(10.0, -20.0, 30.0), direction=(1, 0, 0, 0, 1, 0.0005, 0, 0, 1)), []),
    ],
)
def test_geometry_tolerances(other, expected):
    assert [m.split(" ")[0] for m in geometry_mismatches(BASE, other)] == expected


def _nnunet_v2(root, cases=("a", "b"), ending=".nii.gz", labels=None):
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"}, "labels": labels or {"background": 0, "organ": 1},
        "numTraining": len(cases), "file_ending": ending,
    }))
    for case in cases:
        image = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
        write_image(root / "imagesTr" / f"{case}_0000{ending}", image, BASE)
        write_image(root / "labelsTr" / f"{case}{ending}", (image % 2).astype(np.uint8), BASE)
    return root


def test_clean_dataset_summary_and_json(tmp_path):
    root = _nnunet_v2(tmp_path / "ds")
    report = check_dataset(root, progress=False)
    assert report.ok and report.problems == [] and report.errors == [] and report.warnings == []
    assert report.summary["num_training"] == 2 and report.summary["channel_names"] == ["CT"]
    assert report.summary["spacing_min"] == [2.0, 0.5, 0.5] and report.summary["shape_max"] == [3, 4, 5]
    text = report.format()
    assert text.splitlines()[0].endswith(": OK") and "labels: 0 background, 1 organ" in text
    report.save(tmp_path / "r.json")
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["ok"] is True and saved["summary"]["dimensionality"] == "3D"


def test_stray_files_are_warnings_and_labels_without_images_errors(tmp_path):
    root = _nnunet_v2(tmp_path / "ds")
    (root / "imagesTr" / "notes.txt").write_text("not an image")
    write_image(root / "imagesTr" / "c_0000.nii", np.ones((3, 4, 5), np.int16), BASE)  # wrong ending
    write_image(root / "labelsTr" / "z.nii.gz", np.zeros((3, 4, 5), np.uint8), BASE)
    report = check_dataset(root, progress=False)
    ignored = [p for p in report.problems if p.kind == "ignored_file"]
    assert sorted(p.files[0].rsplit("/", 1)[1] for p in ignored) == ["c_0000.nii", "notes.txt"]
    assert all(p.severity == "warning" for p in ignored)
    (orphan,) = [p for p in report.problems if p.kind == "missing_image"]
    assert orphan.case_id == "z" and orphan.severity == "error" and not report.ok


def test_msd_entry_without_label_and_missing_test_image(tmp_path):
    root = make_demo_dataset(tmp_path / "demo", DemoSpec(num_cases=3, shape=(8, 10, 12)))
    data = json.loads((root / "dataset.json").read_text())
    del data["training"][0]["label"]
    data["test"].append("./imagesTs/gone.nii.gz")
    (root / "dataset.json").write_text(json.dumps(data))
    report = check_dataset(root, progress=False)
    kinds = {(p.case_id, p.kind) for p in report.problems}
    assert ("demo_000", "missing_label") in kinds and ("gone", "missing_image") in kinds
    assert "no label given in dataset.json" in report.format()


def test_test_images_are_checked_too(tmp_path):
    root = make_demo_dataset(tmp_path / "demo", DemoSpec(num_cases=2, shape=(8, 10, 12)))
    test_file = root / "imagesTs" / "demo_003.nii.gz"
    raw = test_file.read_bytes()
    test_file.write_bytes(raw[: len(raw) // 2])
    report = check_dataset(root, progress=False)
    (problem,) = report.problems
    assert (problem.case_id, problem.kind, problem.severity) == ("demo_003", "unreadable", "error")


@pytest.mark.parametrize("ending, text", [(".nrrd", "1 NaN, 0 Inf"), (".nii.gz", "ITK reads them as 0")])
def test_nan_in_image_and_label(tmp_path, ending, text):
    """NRRD keeps NaN when read; ITK's NIfTI reader turns NaN into 0, so the check reads the raw voxels."""
    root = _nnunet_v2(tmp_path / "ds", ending=ending)
    image = np.ones((3, 4, 5), np.float32)
    image[0, 0, 0] = np.nan
    write_image(root / "imagesTr" / f"a_0000{ending}", image, BASE)
    label = np.zeros((3, 4, 5), np.float32)
    label[1, 1, 1] = np.nan
    write_image(root / "labelsTr" / f"b{ending}", label, BASE)
    report = check_dataset(root, progress=False)
    kinds = {(p.case_id, p.kind) for p in report.problems}
    assert kinds == {("a", "nonfinite_intensity"), ("b", "non_integer_label")}
    assert text in report.format()


def test_float_labels_with_whole_values_are_fine(tmp_path):
    root = _nnunet_v2(tmp_path / "ds")
    write_image(root / "labelsTr" / "a.nii.gz", np.ones((3, 4, 5), np.float32), BASE)
    assert check_dataset(root, progress=False).problems == []


def test_vector_image_channels_count(tmp_path):
    """An RGB-like vector image counts as three channels where one is declared."""
    root = _nnunet_v2(tmp_path / "ds")
    itk = sitk.Compose(*[sitk.GetImageFromArray(np.ones((3, 4, 5), np.int16))] * 3)
    itk.SetSpacing((0.5, 0.5, 2.0))
    itk.SetOrigin((30.0, -20.0, 10.0))
    sitk.WriteImage(itk, str(root / "imagesTr" / "b_0000.nii.gz"))
    report = check_dataset(root, progress=False)
    assert [(p.case_id, p.kind) for p in report.problems] == [("b", "channel_count")]


def test_label_numbering_and_missing_num_training(tmp_path):
    root = _nnunet_v2(tmp_path / "ds", labels={"background": 0, "organ": 1, "tumour": 3})
    data = json.loads((root / "dataset.json").read_text())
    del data["numTraining"]
    (root / "dataset.json").write_text(json.dumps(data))
    report = check_dataset(root, progress=False)
    assert {(p.kind, p.severity) for p in report.problems} == {("label_numbering", "warning"), ("num_training", "warning")}
    assert report.ok


def test_unusable_dataset_json_is_reported_not_raised(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    (root / "dataset.json").write_text("{not json")
    report = check_dataset(root, progress=False)
    assert [p.kind for p in report.problems] == ["dataset_json"] and "not valid JSON" in report.problems[0].message
    assert [p.kind for p in check_dataset(tmp_path / "nowhere", progress=False).problems] == ["dataset_json"]


def test_parallel_check_gives_the_same_report(tmp_path):
    root = make_demo_dataset(tmp_path / "demo", DemoSpec(num_cases=4, shape=(8, 10, 12)))
    (root / "labelsTr" / "demo_001.nii.gz").unlink()
    serial = check_dataset(root, workers=1, progress=False)
    parallel = check_dataset(root, workers=2, progress=False)
    assert serial.to_dict() == parallel.to_dict() and not serial.ok


@pytest.mark.parametrize("fixture", ["demo_3d", "demo_aniso", "demo_2d"])
def test_demo_datasets_pass(fixture, request):
    report = check_dataset(request.getfixturevalue(fixture), workers=1, progress=False)
    assert report.ok and report.problems == [], report.format()
