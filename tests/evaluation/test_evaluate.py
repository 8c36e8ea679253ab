"""Folder and array evaluation: pairing, statistics, output files, and bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from autounet.errors import DatasetError
from autounet.evaluation import (
    compute_metrics,
    evaluate_cases,
    evaluate_folders,
    find_label_files,
    labels_from_dataset_json,
    load_summary,
)
from autounet.evaluation.metrics import METRIC_NAMES
from autounet.io import Geometry, write_image

GEOMETRY_3D = Geometry(spacing=(2.5, 0.8, 0.9), origin=(1.0, 2.0, 3.0))
GEOMETRY_2D = Geometry(spacing=(999.0, 0.5, 0.5), is_2d=True)


def _flat(nested: dict) -> dict:
    return {(outer, inner): value for outer, metrics in nested.items() for inner, value in metrics.items()}


def assert_metrics_close(actual: dict, expected: dict) -> None:
    """Nested ``{label: {metric: value}}`` dicts equal up to float32 header rounding; NaN equals NaN."""
    assert _flat(actual) == pytest.approx(_flat(expected), rel=1e-6, nan_ok=True)


def _label_map(shape, seed: int) -> np.ndarray:
    """Two box-shaped labels at random positions."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint8)
    for value in (1, 2):
        start = [rng.integers(0, max(1, s // 2)) for s in shape]
        size = [max(1, s // 3) for s in shape]
        labels[tuple(slice(a, a + b) for a, b in zip(start, size))] = value
    return labels


@pytest.fixture
def nifti_folders(tmp_path):
    """Three 3D cases; predictions are the references shifted by one voxel along x."""
    reference_dir, prediction_dir = tmp_path / "gt", tmp_path / "pred"
    arrays = {}
    for i in range(3):
        reference = _label_map((6, 20, 18), seed=i)
        prediction = np.roll(reference, 1, axis=2)
        write_image(reference_dir / f"case_{i}.nii.gz", reference, GEOMETRY_3D)
        write_image(prediction_dir / f"case_{i}.nii.gz", prediction, GEOMETRY_3D)
        arrays[f"case_{i}"] = (reference, prediction)
    return reference_dir, prediction_dir, arrays


def test_folder_evaluation_matches_compute_metrics(nifti_folders, tmp_path):
    reference_dir, prediction_dir, arrays = nifti_folders
    result = evaluate_folders(reference_dir, prediction_dir, output=tmp_path / "out", progress=False)
    assert result.labels == ("1", "2")
    assert [case.case_id for case in result.cases] == ["case_0", "case_1", "case_2"]
    assert not result.failures and not result.warnings and not result.missing_predictions
    for case in result.cases:
        expected = compute_metrics(*arrays[case.case_id], spacing_mm=GEOMETRY_3D.spacing)
        assert_metrics_close(case.metrics, expected)
    dice_label_1 = [case.metrics["1"]["Dice"] for case in result.cases]
    assert result.mean["1"]["Dice"] == pytest.approx(np.mean(dice_label_1))
    assert result.statistic("median")["1"]["Dice"] == pytest.approx(np.median(dice_label_1))
    assert result.statistic("std")["1"]["Dice"] == pytest.approx(np.std(dice_label_1))
    assert result.foreground_mean["Dice"] == pytest.approx((result.mean["1"]["Dice"] + result.mean["2"]["Dice"]) / 2)
    assert result.mean["1"]["HD95"] == pytest.approx(0.9)  # one voxel along x


def test_output_files(nifti_folders, tmp_path):
    reference_dir, prediction_dir, _ = nifti_folders
    result = evaluate_folders(reference_dir, prediction_dir, output=tmp_path / "out", progress=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["labels"] == ["1", "2"] and summary["num_cases"] == 3
    assert set(summary["mean"]["1"]) == set(METRIC_NAMES) == set(summary["foreground_mean"])
    assert summary["metric_per_case"][0]["reference_file"].endswith("case_0.nii.gz")
    assert summary["units"]["HD95"] == "mm"
    with open(tmp_path / "out" / "metrics_per_case.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and rows[0]["case_id"] == "case_0" and rows[0]["label"] == "1"
    assert float(rows[0]["Dice"]) == pytest.approx(result.cases[0].metrics["1"]["Dice"])
    with open(tmp_path / "out" / "metrics_mean.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["label"], r["statistic"]) for r in rows][:4] == [("1", "mean"), ("1", "median"), ("1", "std"), ("1", "count")]
    assert rows[-1]["label"] == "foreground_mean"
    assert float(rows[-1]["Dice"]) == pytest.approx(result.foreground_mean["Dice"])
    reloaded = load_summary(tmp_path / "out")
    assert_metrics_close(reloaded.mean, result.mean)
    assert_metrics_close(reloaded.cases[1].metrics, result.cases[1].metrics)


def test_summary_json_path_and_nan_as_null(tmp_path):
    reference = np.zeros((1, 8, 8), np.uint8)
    reference[0, 2:5, 2:5] = 1
    other = np.zeros_like(reference)
    other[0, 1:3, 1:3] = 2  # label 2 only in this case's reference: both empty in the first case
    result = evaluate_cases([("a", reference, reference, (999, 1, 1)), ("b", other, other, (999, 1, 1))])
    paths = result.save(tmp_path / "results" / "my_summary.json")
    assert paths["summary"].name == "my_summary.json" and paths["per_case"].parent == tmp_path / "results"
    text = paths["summary"].read_text()
    assert "NaN" not in text
    summary = json.loads(text)
    assert summary["metric_per_case"][0]["metrics"]["2"]["Dice"] is None
    assert summary["count"]["2"]["Dice"] == 1  # both-empty case left out of the mean
    assert summary["mean"]["2"]["Dice"] == 1.0


def test_png_folders(tmp_path):
    for i in range(2):
        reference = _label_map((1, 24, 30), seed=10 + i)
        write_image(tmp_path / "gt" / f"img{i}.png", reference, GEOMETRY_2D)
        write_image(tmp_path / "pred" / f"img{i}.png", np.roll(reference, 2, axis=1), GEOMETRY_2D)
    result = evaluate_folders(tmp_path / "gt", tmp_path / "pred", progress=False)
    assert len(result.cases) == 2 and result.labels == ("1", "2")
    # PNG carries no spacing: 1 pixel = 1 mm, so a shift of two rows gives HD95 = 2.
    assert result.mean["1"]["HD95"] == pytest.approx(2.0)
    assert not result.warnings


def test_formats_may_differ_between_folders(tmp_path):
    reference = _label_map((1, 16, 16), seed=3)
    write_image(tmp_path / "gt" / "a.png", reference, GEOMETRY_2D)
    write_image(tmp_path / "pred" / "a.nii.gz", reference, Geometry(spacing=(999.0, 1.0, 1.0), is_2d=True))
    result = evaluate_folders(tmp_path / "gt", tmp_path / "pred", progress=False)
    assert result.mean["1"]["Dice"] == 1.0


def test_labels_and_regions(nifti_folders):
    reference_dir, prediction_dir, arrays = nifti_folders
    result = evaluate_folders(reference_dir, prediction_dir, labels=[2, 5], regions={"both": (1, 2)}, progress=False)
    assert result.labels == ("2", "5", "both")
    assert result.statistic("count")["5"]["Dice"] == 0 and math.isnan(result.mean["5"]["Dice"])
    reference, prediction = arrays["case_0"]
    expected = compute_metrics(reference > 0, prediction > 0, [1], GEOMETRY_3D.spacing)["1"]
    assert result.cases[0].metrics["both"] == pytest.approx(expected, rel=1e-6, nan_ok=True)
    assert not result.warnings  # label 1 of the predictions is part of a region and in the references


def test_labels_from_dataset_json(tmp_path):
    msd = tmp_path / "msd.json"
    msd.write_text(json.dumps({"modality": {"0": "MRI"}, "labels": {"0": "background", "1": "a", "2": "b"}, "training": []}))
    assert labels_from_dataset_json(msd) == ([1, 2], {}, ".nii.gz")
    v2 = tmp_path / "v2.json"
    v2.write_text(json.dumps({"channel_names": {"0": "MRI"}, "labels": {"background": 0, "whole": [1, 2], "core": 2},
                              "file_ending": ".png"}))
    assert labels_from_dataset_json(v2) == ([2], {"whole": (1, 2)}, ".png")
    with pytest.raises(FileNotFoundError, match="dataset.json not found"):
        labels_from_dataset_json(tmp_path / "nope.json")


def test_missing_predictions(nifti_folders):
    reference_dir, prediction_dir, arrays = nifti_folders
    (prediction_dir / "case_1.nii.gz").unlink()
    with pytest.raises(DatasetError, match=r"1 of 3 reference cases have no prediction \(case_1\).*--allow-missing"):
        evaluate_folders(reference_dir, prediction_dir, progress=False)
    result = evaluate_folders(reference_dir, prediction_dir, allow_missing=True, progress=False)
    assert result.missing_predictions == ("case_1",)
    missing = result.cases[1]
    assert missing.case_id == "case_1" and missing.note.startswith("missing prediction")
    assert missing.metrics["1"]["Dice"] == 0.0 and missing.prediction_file == ""
    assert result.statistic("count")["1"]["Dice"] == 3


def test_unmatched_predictions_are_listed(nifti_folders):
    reference_dir, prediction_dir, _ = nifti_folders
    write_image(prediction_dir / "extra.nii.gz", np.zeros((6, 20, 18), np.uint8), GEOMETRY_3D)
    (prediction_dir / "notes.txt").write_text("not an image")
    (prediction_dir / ".hidden.nii.gz").write_bytes(b"junk")
    result = evaluate_folders(reference_dir, prediction_dir, progress=False)
    assert result.unmatched_predictions == ("extra",)
    assert len(result.cases) == 3 and not result.failures


def test_bad_cases_are_reported_and_the_others_evaluated(nifti_folders):
    reference_dir, prediction_dir, _ = nifti_folders
    (prediction_dir / "case_0.nii.gz").write_bytes(b"this is not a NIfTI file")
    write_image(prediction_dir / "case_1.nii.gz", np.zeros((6, 20, 17), np.uint8), GEOMETRY_3D)
    write_image(reference_dir / "case_3.nii.gz", np.zeros((6, 20, 18), np.float32) + 0.5, GEOMETRY_3D)
    write_image(prediction_dir / "case_3.nii.gz", np.zeros((6, 20, 18), np.uint8), GEOMETRY_3D)
    write_image(reference_dir / "case_4.nii.gz", _label_map((6, 20, 18), 4), GEOMETRY_3D)
    write_image(prediction_dir / "case_4.nii.gz", np.zeros((2, 6, 20, 18), np.uint8), GEOMETRY_3D)
    result = evaluate_folders(reference_dir, prediction_dir, progress=False)
    assert [case.case_id for case in result.cases] == ["case_2"]
    assert set(result.failures) == {"case_0", "case_1", "case_3", "case_4"}
    assert "case_0.nii.gz" in result.failures["case_0"]
    assert "case_1.nii.gz: shape (6, 20, 17) differs from the reference's (6, 20, 18)" in result.failures["case_1"]
    assert "case_3.nii.gz" in result.failures["case_3"] and "non-integer" in result.failures["case_3"]
    assert "case_4.nii.gz" in result.failures["case_4"] and "2 channels" in result.failures["case_4"]


def test_geometry_difference_is_a_warning(nifti_folders):
    reference_dir, prediction_dir, arrays = nifti_folders
    moved = Geometry(spacing=(2.5, 0.8, 0.9), origin=(1.0, 2.0, 13.0))
    write_image(prediction_dir / "case_0.nii.gz", arrays["case_0"][1], moved)
    result = evaluate_folders(reference_dir, prediction_dir, progress=False)
    assert list(result.warnings) == ["case_0"] and "geometry differs" in result.warnings["case_0"]
    assert "origin" in result.warnings["case_0"]


def test_prediction_labels_outside_the_evaluated_ones_are_a_warning():
    reference = np.zeros((1, 6, 6), np.uint8)
    reference[0, 1:3, 1:3] = 1
    prediction = reference.copy()
    prediction[0, 4, 4] = 7
    result = evaluate_cases([("a", reference, prediction, (999, 1, 1))])
    assert result.labels == ("1",)
    assert "[7]" in result.warnings["a"]


def test_evaluate_cases_in_memory():
    reference = _label_map((5, 12, 12), seed=1)
    pairs = [
        ("good", reference[None], reference[None], (1.0, 1.0, 1.0)),  # channel axis of length 1 is fine
        ("bad", reference, reference[:, :-1], (1.0, 1.0, 1.0)),
    ]
    result = evaluate_cases(pairs, labels=[1, 2])
    assert [case.case_id for case in result.cases] == ["good"]
    assert result.mean["2"]["Dice"] == 1.0
    assert "case bad prediction: shape (5, 11, 12) differs" in result.failures["bad"]


def test_no_foreground_anywhere_needs_labels(tmp_path):
    empty = np.zeros((1, 4, 4), np.uint8)
    with pytest.raises(DatasetError, match="no reference contains a foreground label.*--labels"):
        evaluate_cases([("a", empty, empty, (999, 1, 1))])
    result = evaluate_cases([("a", empty, empty, (999, 1, 1))], labels=[1])
    assert math.isnan(result.mean["1"]["Dice"])


def test_folder_errors(tmp_path, nifti_folders):
    reference_dir, prediction_dir, _ = nifti_folders
    with pytest.raises(FileNotFoundError, match="prediction folder not found"):
        evaluate_folders(reference_dir, tmp_path / "nope", progress=False)
    with pytest.raises(FileNotFoundError, match="reference folder not found"):
        evaluate_folders(tmp_path / "nope", prediction_dir, progress=False)
    dataset_root = tmp_path / "Task"
    (dataset_root / "labelsTr").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no reference label files.*labelsTr instead"):
        evaluate_folders(dataset_root, prediction_dir, progress=False)
    with pytest.raises(ValueError, match="nsd_tolerance_mm must be"):
        evaluate_folders(reference_dir, prediction_dir, nsd_tolerance_mm=-1, progress=False)


def test_duplicate_case_needs_file_ending(nifti_folders):
    reference_dir, prediction_dir, _ = nifti_folders
    write_image(prediction_dir / "case_0.png", np.zeros((1, 4, 4), np.uint8), GEOMETRY_2D)
    with pytest.raises(DatasetError, match="case case_0 is there twice.*--file-ending"):
        find_label_files(prediction_dir)
    assert set(find_label_files(prediction_dir, ".nii.gz")) == {"case_0", "case_1", "case_2"}
    result = evaluate_folders(reference_dir, prediction_dir, file_ending=".nii.gz", progress=False)
    assert len(result.cases) == 3


def test_worker_processes_give_the_same_result(nifti_folders):
    reference_dir, prediction_dir, _ = nifti_folders
    serial = evaluate_folders(reference_dir, prediction_dir, workers=1, progress=False)
    parallel = evaluate_folders(reference_dir, prediction_dir, workers=2, progress=False)
    for a, b in zip(parallel.cases, serial.cases, strict=True):
        assert_metrics_close(a.metrics, b.metrics)


def test_paths_with_spaces_and_non_ascii(tmp_path):
    folder = tmp_path / "Prädiktionen mit Leerzeichen"
    reference = _label_map((4, 10, 10), seed=5)
    write_image(folder / "gt" / "fall eins.nii.gz", reference, GEOMETRY_3D)
    write_image(folder / "pred" / "fall eins.nii.gz", reference, GEOMETRY_3D)
    result = evaluate_folders(folder / "gt", folder / "pred", output=folder / "out", progress=False)
    assert result.cases[0].case_id == "fall eins" and (folder / "out" / "summary.json").is_file()
    assert Path(result.cases[0].reference_file).name == "fall eins.nii.gz"
