"""The results folder is spelled once (autounet.layout), and names read from files go through safe_names there."""

from __future__ import annotations

from pathlib import Path

import pytest

from autounet.layout import ResultsLayout, checkpoint_file, fold_folder
from autounet.safe_names import UnsafeNameError


def test_every_path_of_the_results_folder():
    layout = ResultsLayout("out/Hippo")
    root = Path("out/Hippo")
    assert (layout.dataset_json, layout.fingerprint, layout.plans, layout.splits) == (
        root / "dataset.json", root / "fingerprint.json", root / "plans.json", root / "splits.json")
    assert (layout.run_log, layout.postprocessing, layout.inference, layout.report) == (
        root / "run_log.json", root / "postprocessing.json", root / "inference.json", root / "report" / "index.html")
    assert layout.preprocessed("Dataset_3d") == root / "preprocessed" / "Dataset_3d"
    assert layout.previous_stage_predictions("d3", "3d_lowres") == root / "preprocessed" / "d3__from_3d_lowres"
    assert layout.fold("3d_fullres", "all") == root / "3d_fullres" / "fold_all"
    assert layout.fold_record("2d", 3) == root / "2d" / "fold_3" / "fold.json"
    assert layout.checkpoint("2d", "1", "best") == root / "2d" / "fold_1" / "checkpoint_best.pt"
    assert layout.validation_prediction("2d", 0, "case_7", ".nii.gz") == root / "2d" / "fold_0" / "validation" / "case_7.nii.gz"
    assert layout.crossval("2d") == root / "2d" / "crossval"
    assert layout.ensemble("2d__3d_fullres") == root / "ensembles" / "2d__3d_fullres"
    assert ResultsLayout(root) == layout  # a plain value


@pytest.mark.parametrize(
    "call, what",
    [(lambda l: l.preprocessed("../../etc"), "data_identifier"),
     (lambda l: l.fold("/abs", 0), "configuration name"),
     (lambda l: l.validation_prediction("2d", 0, "../x", ".nii.gz"), "case id"),
     (lambda l: l.validation_prediction("2d", 0, "x", "/../../y"), "case file name"),
     (lambda l: l.previous_stage_predictions("d", "a/b"), "previous_stage"),
     (lambda l: l.ensemble(".."), "ensemble name")],
)
def test_names_from_files_are_checked_before_they_become_paths(call, what):
    with pytest.raises(UnsafeNameError, match=f"{what} .* in out/Hippo"):
        call(ResultsLayout("out/Hippo"))


@pytest.mark.parametrize("fold", [-1, "../0", "x", True, 1.5, None])
def test_bad_folds_are_refused(fold):
    with pytest.raises(ValueError, match="fold must be a number"):
        fold_folder(fold)


def test_checkpoint_names():
    assert [checkpoint_file(n) for n in ("final", "best", "latest")] == [
        "checkpoint_final.pt", "checkpoint_best.pt", "checkpoint_latest.pt"]
    with pytest.raises(ValueError, match="checkpoint must be one of final, best, latest"):
        checkpoint_file("../x")
