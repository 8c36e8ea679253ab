"""`autounet predict`: a thin wrapper over Predictor.predict_folder; and real Hippocampus images end to end."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from autounet.cli import main
from autounet.io import read_image

from .conftest import make_results, tiny_configuration, tiny_plans, write_case


def test_predict_cli_writes_outputs_and_reports_failures(tmp_path, results_3d, capsys):
    write_case(tmp_path / "in" / "a.nii.gz")
    (tmp_path / "in" / "broken.nii.gz").write_bytes(b"not an image")
    code = main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(results_3d),
                 "-f", "0", "1", "--device", "cpu", "--no-mirroring", "--save-uncertainty", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1
    assert "1 case(s) written" in out and "broken" in out and "1 failed" in out
    assert (tmp_path / "out" / "a.nii.gz").is_file()
    assert (tmp_path / "out" / "uncertainty" / "a_disagreement.nii.gz").is_file()
    report = json.loads((tmp_path / "out" / "prediction_report.json").read_text())
    assert report["written"] == ["a"] and "broken" in report["failed"]
    assert report["settings"]["folds"] == {"3d_fullres": [0, 1]}


def test_predict_cli_errors_without_traceback(tmp_path, capsys):
    code = main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(tmp_path / "nothing")])
    assert code == 2
    assert "model folder not found" in capsys.readouterr().err


@pytest.mark.integration
def test_real_hippocampus_cases_keep_their_geometry(tmp_path, hippocampus_dir):
    """Two real cases (mixed dtypes, 1 mm) through a tiny random model: outputs on the input grids."""
    images = sorted((hippocampus_dir / "imagesTr").glob("*.nii.gz"))[:2]
    (tmp_path / "in").mkdir()
    for image in images:
        shutil.copy(image, tmp_path / "in" / image.name)
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres", patch=(24, 32, 24))},
                       labels={"background": 0, "Anterior": 1, "Posterior": 2})
    results = make_results(tmp_path / "results", plans, {"3d_fullres": (0,)})
    code = main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(results), "--device", "cpu",
                 "--file-ending", ".nii.gz", "--no-progress", "--save-probabilities", "--no-mirroring"])
    assert code == 0
    for image in images:
        source, result = read_image(image), read_image(tmp_path / "out" / image.name)
        assert result.spatial_shape == source.spatial_shape
        np.testing.assert_allclose(result.geometry.origin, source.geometry.origin, atol=1e-4)
        np.testing.assert_allclose(result.geometry.direction, source.geometry.direction, atol=1e-6)
        assert set(np.unique(result.data)) <= {0, 1, 2}
        probabilities = np.load(tmp_path / "out" / image.name.replace(".nii.gz", ".npz"))["probabilities"]
        assert probabilities.shape == (3, *source.spatial_shape)
