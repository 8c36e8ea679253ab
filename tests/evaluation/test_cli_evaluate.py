"""``autounet evaluate``: table, output files, exit codes and error messages without tracebacks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autounet.cli import main
from autounet.io import Geometry, write_image

GEOMETRY = Geometry(spacing=(2.0, 1.0, 1.0))


@pytest.fixture
def folders(tmp_path):
    reference = np.zeros((4, 12, 12), np.uint8)
    reference[1:3, 2:8, 2:6] = 1
    reference[1:3, 2:8, 6:10] = 2
    for case in ("a", "b"):
        write_image(tmp_path / "gt" / f"{case}.nii.gz", reference, GEOMETRY)
        write_image(tmp_path / "pred" / f"{case}.nii.gz", reference, GEOMETRY)
    return tmp_path / "gt", tmp_path / "pred"


def test_cli_prints_table_and_writes_files(folders, tmp_path, capsys):
    gt, pred = folders
    assert main(["evaluate", str(gt), str(pred), "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2 cases evaluated (NSD tolerance 1 mm)" in out
    assert "foreground mean" in out and "Dice" in out and "HD95" in out and "NSD" in out
    assert "summary.json" in out
    for name in ("summary.json", "metrics_per_case.csv", "metrics_mean.csv"):
        assert (tmp_path / "out" / name).is_file()


def test_cli_defaults_to_prediction_folder_and_options(folders, capsys):
    gt, pred = folders
    assert main(["evaluate", str(gt), str(pred), "--labels", "2", "--nsd-tolerance", "2.5", "--workers", "1", "--no-progress"]) == 0
    summary = json.loads((pred / "summary.json").read_text())
    assert summary["labels"] == ["2"] and summary["nsd_tolerance_mm"] == 2.5
    # Evaluating again ignores the summary and CSV files now in the prediction folder.
    assert main(["evaluate", str(gt), str(pred), "--no-progress"]) == 0


def test_cli_dataset_json(folders, tmp_path, capsys):
    gt, pred = folders
    dataset_json = tmp_path / "dataset.json"
    dataset_json.write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {"background": 0, "left": 1, "both": [1, 2]},
                                        "file_ending": ".nii.gz"}))
    assert main(["evaluate", str(gt), str(pred), "--dataset-json", str(dataset_json), "--no-progress"]) == 0
    assert json.loads((pred / "summary.json").read_text())["labels"] == ["1", "both"]


def test_cli_bad_case_exit_code_and_message(folders, capsys):
    gt, pred = folders
    (pred / "b.nii.gz").write_bytes(b"\x1f\x8b truncated")
    assert main(["evaluate", str(gt), str(pred), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "1 cases evaluated" in captured.out
    assert "error: case b not evaluated" in captured.err and "b.nii.gz" in captured.err
    assert "Traceback" not in captured.err


def test_cli_missing_predictions(folders, capsys):
    gt, pred = folders
    (pred / "b.nii.gz").unlink()
    assert main(["evaluate", str(gt), str(pred), "--no-progress"]) == 2
    assert "have no prediction (b)" in capsys.readouterr().err
    assert main(["evaluate", str(gt), str(pred), "--allow-missing", "--no-progress"]) == 0
    assert "1 missing prediction(s) scored as empty: b" in capsys.readouterr().out


def test_cli_missing_folder(folders, tmp_path, capsys):
    gt, _ = folders
    assert main(["evaluate", str(gt), str(tmp_path / "nothing"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "autounet evaluate: error:" in err and "nothing: prediction folder not found" in err
