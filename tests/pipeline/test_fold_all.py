"""``autounet run -f all``: one model on every case. Nothing to cross-validate, yet the run ends with a usable model,
an inference.json that leads ``autounet predict`` to fold all, the report and the predict command.

The run itself is the session fixture ``fold_all_run`` (tests/conftest.py), shared with tests/test_progress.py."""

from __future__ import annotations

import json

import numpy as np

from autounet.io import read_image

def test_run_fold_all_finishes_with_a_note_a_report_and_the_predict_command(fold_all_run):
    _, results, completed = fold_all_run
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "note: " in out and "no cross-validation" in out
    predict_lines = [line for line in out.splitlines() if line.startswith("predict with: ")]
    assert predict_lines and predict_lines[0].endswith("-c 3d_fullres -f all")
    inference = json.loads((results / "inference.json").read_text())
    assert inference["configurations"] == ["3d_fullres"] and inference["folds"] == ["all"]
    assert (results / "3d_fullres" / "fold_all" / "checkpoint_final.pt").is_file()
    report = results / "report" / "index.html"
    assert report.is_file() and f"report: {report}" in out
    assert "-f all" in report.read_text()  # the report shows the predict command too


def test_predict_uses_the_fold_all_model_without_being_told(fold_all_run, run_cli, tmp_path):
    data, results, _ = fold_all_run
    completed = run_cli("predict", "-i", data / "imagesTs", "-o", tmp_path / "out", "-m", results, "--workers", "0")
    assert completed.returncode == 0, completed.stderr
    assert "3d_fullres (folds all)" in completed.stdout
    outputs = sorted((tmp_path / "out").glob("*.nii.gz"))
    inputs = sorted((data / "imagesTs").glob("*.nii.gz"))
    assert len(outputs) == len(inputs) == 2
    for output, source in zip(outputs, inputs):
        segmentation, image = read_image(output), read_image(source)
        assert segmentation.spatial_shape == image.spatial_shape
        assert set(np.unique(segmentation.data)) <= {0, 1, 2}
    assert "\r" not in completed.stderr and "predict: 2/2 cases, " in completed.stderr  # a pipe: a line, no frames
