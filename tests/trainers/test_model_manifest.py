"""Model folders verified when loaded (issue 20, item 7): training a fold records the sha256 of the model's files in
``manifest.json``; ``autounet predict`` checks the files it is about to read and names the one that changed, went
missing or was added; training another fold re-records only that fold, so an earlier change stays reported."""

from __future__ import annotations

import json
import shutil

import pytest

from autounet.cli import main
from autounet.model_manifest import MANIFEST_FILE, ModelManifestError, read_manifest, verify_manifest
from autounet.pipeline import train_fold

from .helpers import quick_config


@pytest.fixture
def trained(tiny_results, tiny_dataset):
    train_fold(tiny_results, "3d_fullres", 0, quick_config(epochs=1, iterations_per_epoch=1))
    images = tiny_results.parent / "in"
    images.mkdir()
    shutil.copy(sorted((tiny_dataset / "imagesTr").glob("*.nii.gz"))[0], images / "case.nii.gz")
    return tiny_results


def _predict(model, tmp_path, capsys, *extra):
    capsys.readouterr()
    code = main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(model), "--device",
                 "cpu", "--no-mirroring", "--no-progress", *extra])
    return code, capsys.readouterr().err


def test_training_records_the_model_files(trained):
    files = read_manifest(trained)["files"]
    assert {"plans.json", "splits.json", "fingerprint.json", "3d_fullres/fold_0/checkpoint_final.pt",
            "3d_fullres/fold_0/training_log.json"} <= set(files)
    assert not any(name.startswith("preprocessed/") or "checkpoint_latest" in name or "/validation/" in name
                   for name in files)
    entry = files["3d_fullres/fold_0/checkpoint_final.pt"]
    assert len(entry["sha256"]) == 64 and entry["bytes"] == (trained / "3d_fullres/fold_0/checkpoint_final.pt").stat().st_size
    assert read_manifest(trained)["format"] == "autounet-model-manifest"
    verify_manifest(trained, files)


def test_predict_names_the_checkpoint_that_changed(trained, tmp_path, capsys):
    assert _predict(trained, tmp_path, capsys)[0] == 0
    checkpoint = trained / "3d_fullres" / "fold_0" / "checkpoint_final.pt"
    data = bytearray(checkpoint.read_bytes())
    data[-100] ^= 0xFF  # one flipped bit in the weights: loads fine, predicts wrongly
    checkpoint.write_bytes(bytes(data))
    code, err = _predict(trained, tmp_path / "again", capsys)
    assert code == 2 and err.count("error:") == 1, err
    assert f"changed since it was recorded: {checkpoint}" in err and "restore the original files" in err


def test_predict_names_hand_edited_plans_and_a_fold_added_afterwards(trained, tmp_path, capsys):
    plans = json.loads((trained / "plans.json").read_text())
    plans["configurations"]["3d_fullres"]["resampling"]["order_z"] = 1  # plausible, silently changes outputs
    (trained / "plans.json").write_text(json.dumps(plans))
    code, err = _predict(trained, tmp_path, capsys)
    assert code == 2 and f"changed since it was recorded: {trained / 'plans.json'}" in err, err
    shutil.copytree(trained / "3d_fullres" / "fold_0", trained / "3d_fullres" / "fold_1")
    code, err = _predict(trained, tmp_path, capsys, "-f", "1")
    assert code == 2 and "not recorded (added afterwards): " in err and "fold_1/checkpoint_final.pt" in err, err


def test_training_another_fold_does_not_bless_an_earlier_change(trained):
    checkpoint = trained / "3d_fullres" / "fold_0" / "checkpoint_final.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:-10] + b"0123456789")
    train_fold(trained, "3d_fullres", 1, quick_config(epochs=1, iterations_per_epoch=1))
    verify_manifest(trained, ["3d_fullres/fold_1/checkpoint_final.pt", "plans.json"])
    with pytest.raises(ModelManifestError, match="fold_0/checkpoint_final.pt"):
        verify_manifest(trained, ["3d_fullres/fold_0/checkpoint_final.pt"])


def test_a_model_folder_without_manifest_is_used_with_a_warning(trained, tmp_path, capsys, caplog):
    (trained / MANIFEST_FILE).unlink()
    assert _predict(trained, tmp_path, capsys)[0] == 0
    assert "has no manifest.json" in caplog.text
