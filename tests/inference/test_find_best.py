"""find-best: merge fold validations, evaluate configurations and their ensembles, write inference.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autounet.cli import main
from autounet.errors import MissingStageError
from autounet.evaluation import evaluate_folders
from autounet.inference import Predictor
from autounet.inference.find_best import FindBestError, find_best, find_postprocessing_file
from autounet.inference.export import write_probabilities
from autounet.inference.model_folder import read_model_plans
from autounet.io import Geometry, write_image

from .conftest import make_results, tiny_configuration, tiny_plans, write_checkpoint

GEOMETRY = Geometry(spacing=(2.0, 1.0, 1.0))
CASES = ["c0", "c1", "c2", "c3"]


def _reference(index: int) -> np.ndarray:
    seg = np.zeros((6, 12, 14), np.uint8)
    seg[1:5, 2:7, 2:7] = 1
    seg[1:5, 2:7, 8:12 - index % 2] = 2
    return seg


def _probabilities(seg: np.ndarray, confidence: float) -> np.ndarray:
    probabilities = np.full((3, *seg.shape), (1 - confidence) / 2, np.float32)
    for value in range(3):
        probabilities[value][seg == value] = confidence
    return probabilities


def _write_validation(results, configuration, damage, with_probabilities=True):
    """Folds 0 and 1 each validate two cases; ``damage(seg, index)`` makes the configuration's errors."""
    for fold, cases in ((0, CASES[:2]), (1, CASES[2:])):
        folder = results / configuration / f"fold_{fold}" / "validation"
        for case in cases:
            index = CASES.index(case)
            prediction = damage(_reference(index).copy(), index)
            write_image(folder / f"{case}.nii.gz", prediction, GEOMETRY)
            if with_probabilities:
                write_probabilities(folder / f"{case}.npz", _probabilities(prediction, 0.6 if configuration == "2d" else 0.9), (0, 1, 2))
        evaluate_folders(results.parent / "labels", folder, labels=[1, 2], output=folder, progress=False, allow_missing=True)


def _island(seg, index):
    seg[5, 10, 12] = 1  # a spurious island of label 1 in every case
    return seg


def _eroded(seg, index):
    seg[1, :, :] = 0  # misses a slice
    return seg


@pytest.fixture
def results(tmp_path):
    for index, case in enumerate(CASES):
        write_image(tmp_path / "labels" / f"{case}.nii.gz", _reference(index), GEOMETRY)
    plans = tiny_plans({"2d": tiny_configuration("2d", ndim=2), "3d_fullres": tiny_configuration("3d_fullres")})
    folder = make_results(tmp_path / "results", plans, {"2d": (0, 1), "3d_fullres": (0, 1)})
    _write_validation(folder, "3d_fullres", _island)
    _write_validation(folder, "2d", _eroded)
    return folder


def test_find_best_compares_configurations_and_ensembles_and_writes_inference_json(results):
    outcome = find_best(results, progress=False, workers=1)  # reference folder from the validation summaries
    names = [c.name for c in outcome.candidates]
    assert set(names) == {"3d_fullres", "2d", "2d__3d_fullres"}
    assert outcome.best.name == "3d_fullres"  # its only error, the island, is small
    assert all(c.num_cases == 4 for c in outcome.candidates)
    assert sorted(p.name for p in (results / "3d_fullres" / "crossval").glob("*.nii.gz")) == [f"{c}.nii.gz" for c in CASES]
    assert (results / "ensembles" / "2d__3d_fullres" / "c0.npz").is_file()
    # the island is removed by post-processing label 1 (the foreground filter would delete label 2's block in case 1)
    assert outcome.postprocessing.keep_largest_labels == (1,) or outcome.postprocessing.keep_largest_foreground
    data = json.loads((results / "inference.json").read_text())
    assert data["configurations"] == ["3d_fullres"] and data["folds"] == [0, 1]
    assert data["command"].startswith("autounet predict -i INPUT_FOLDER -o OUTPUT_FOLDER -m ")
    assert "-c 3d_fullres -f 0 1" in data["command"]
    assert "3d_fullres" in outcome.table() and "2d__3d_fullres" in outcome.table()
    # predict picks up the winner and its post-processing without being told
    predictor = Predictor.from_model_folder(results, device="cpu")
    assert predictor.configurations == ("3d_fullres",) and predictor.postprocessing is not None
    assert find_postprocessing_file(results, ["2d"]) is None
    # issue 20: find-best records its decisions in the model's manifest, which predict checks
    recorded = json.loads((results / "manifest.json").read_text())["files"]
    assert {"plans.json", "inference.json", "postprocessing.json", "3d_fullres/crossval/postprocessing.json"} <= set(recorded)


def test_a_postprocessing_path_in_inference_json_stays_inside_the_model_folder(results):
    """Issue 20, item 1: the file named in inference.json is a name, never a path out of the folder."""
    from autounet.safe_names import UnsafeNameError

    find_best(results, progress=False, workers=1)
    data = json.loads((results / "inference.json").read_text())
    data["postprocessing"] = "../../elsewhere.json"
    (results / "inference.json").write_text(json.dumps(data))
    with pytest.raises(UnsafeNameError, match="postprocessing file '../../elsewhere.json' in .*inference.json"):
        find_postprocessing_file(results, ["3d_fullres"])


def test_ensembles_need_probabilities(tmp_path, results):
    for npz in (results / "2d").rglob("*.npz"):
        npz.unlink()
    outcome = find_best(results, tmp_path / "labels", progress=False, workers=1)
    assert "2d__3d_fullres" in outcome.skipped and "save_probabilities" in outcome.skipped["2d__3d_fullres"]
    assert "save_probabilities" in outcome.table()


def test_find_best_cli(tmp_path, results, capsys):
    assert main(["find-best", str(results), "--reference", str(tmp_path / "labels"), "--workers", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "best: 3d_fullres" in out and "autounet predict" in out


def test_nothing_to_compare_is_explained(tmp_path):
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres")})
    folder = make_results(tmp_path / "results", plans, {"3d_fullres": (0,)})
    with pytest.raises(MissingStageError, match="no configuration has validation predictions"):
        find_best(folder, progress=False)
    write_image(folder / "3d_fullres" / "fold_0" / "validation" / "c0.nii.gz", _reference(0), GEOMETRY)
    with pytest.raises(FindBestError, match="--reference"):
        find_best(folder, progress=False)


def test_only_fold_all_is_chosen_with_a_note_instead_of_an_error(tmp_path):
    """Fold "all" trains on every case: nothing to cross-validate, but predict must find the model."""
    plans = tiny_plans({"2d": tiny_configuration("2d", ndim=2), "3d_fullres": tiny_configuration("3d_fullres")})
    folder = make_results(tmp_path / "results", plans, {"2d": ("all",), "3d_fullres": ("all",)})
    outcome = find_best(folder, progress=False)
    assert outcome.best.configurations == ("3d_fullres",)  # no score to rank by: nnU-Net's default configuration
    assert any("no cross-validation" in note and "fold all" in note for note in outcome.notes)
    assert any("-c 2d" in note for note in outcome.notes)  # the other trained configuration stays one option away
    assert outcome.command.endswith("-c 3d_fullres -f all")
    data = json.loads((folder / "inference.json").read_text())
    assert data["configurations"] == ["3d_fullres"] and data["folds"] == ["all"]
    assert data["cross_validation_dice"] is None and data["postprocessing"] is None and data["notes"]
    predictor = Predictor.from_model_folder(folder, device="cpu")  # inference.json leads predict to fold all
    assert predictor.configurations == ("3d_fullres",) and [f.fold for f in predictor.models["3d_fullres"]] == ["all"]
    assert "n/a" in outcome.table() and "3d_fullres fold all" in outcome.describe_best()


def test_find_best_cli_on_fold_all_prints_the_note(tmp_path, capsys):
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres")})
    folder = make_results(tmp_path / "results", plans, {"3d_fullres": ("all",)})
    assert main(["find-best", str(folder), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "note: " in out and "no cross-validation" in out and "-f all" in out


def test_with_folds_and_fold_all_the_cross_validated_folds_are_chosen_and_fold_all_is_offered(results):
    write_checkpoint(results, read_model_plans(results), "3d_fullres", "all")
    outcome = find_best(results, progress=False, workers=1)
    assert outcome.best.name == "3d_fullres"
    data = json.loads((results / "inference.json").read_text())
    assert data["folds"] == [0, 1]  # the folds whose validation the score measures
    offered = [note for note in outcome.notes if "fold all" in note]
    assert offered and "-c 3d_fullres -f all" in offered[0]
