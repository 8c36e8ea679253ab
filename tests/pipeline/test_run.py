"""The all-in-one pipeline on a tiny synthetic dataset: every stage runs, and a re-run resumes instead of redoing."""

from __future__ import annotations

import json
import shutil

import pytest

from autounet.cli import main
from autounet.dataset.demo import DemoSpec, make_demo_dataset
from autounet.errors import DatasetError
from autounet.pipeline import RunOptions, run_pipeline
from autounet.trainers import TrainingConfig

TINY_TRAINING = TrainingConfig(epochs=1, iterations_per_epoch=2, validation_iterations=1, progress=False, num_workers=0)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    data = make_demo_dataset(root / "Demo", DemoSpec(num_cases=5, shape=(16, 20, 18), seed=11), name="Demo")
    options = RunOptions(folds=(0,), configurations=("3d_fullres",), training=TINY_TRAINING, progress=False, report=False)
    summary = run_pipeline(data, root / "results", options)
    return data, root, summary


def test_run_produces_every_stage_output(finished_run):
    _, root, summary = finished_run
    results = summary.results_dir
    assert results == root / "results" / "Demo"
    for name in ("dataset.json", "fingerprint.json", "plans.json", "splits.json", "run_log.json", "inference.json"):
        assert (results / name).is_file(), name
    fold_dir = results / "3d_fullres" / "fold_0"
    assert (fold_dir / "checkpoint_final.pt").is_file()
    assert len(list((fold_dir / "validation").glob("*.nii.gz"))) == 1  # 5 cases, fold 0 validates one
    stages = json.loads((results / "run_log.json").read_text())["stages"]
    assert {"check", "fingerprint", "plan", "preprocess", "train", "find_best"} <= set(stages)
    assert all(stage["seconds"] >= 0 and stage["peak_rss_mb"] > 0 for stage in stages.values())
    assert summary.best is not None and summary.best.best.configurations == ("3d_fullres",)


def test_rerun_skips_finished_work(finished_run):
    data, root, summary = finished_run
    checkpoint = summary.results_dir / "3d_fullres" / "fold_0" / "checkpoint_final.pt"
    stamp = checkpoint.stat().st_mtime_ns
    options = RunOptions(folds=(0,), configurations=("3d_fullres",), training=TINY_TRAINING, progress=False, report=False, find_best=False)
    again = run_pipeline(data, root / "results", options)
    assert again.folds == [] and any("already trained" in note for note in again.notes)
    assert checkpoint.stat().st_mtime_ns == stamp
    assert json.loads((summary.results_dir / "run_log.json").read_text())["sessions"] == 2


def test_broken_dataset_stops_before_any_work(tmp_path):
    data = make_demo_dataset(tmp_path / "Broken", DemoSpec(num_cases=3, shape=(8, 10, 9), seed=2), name="Broken")
    (data / "labelsTr" / "demo_001.nii.gz").unlink()
    with pytest.raises(DatasetError, match="demo_001"):
        run_pipeline(data, tmp_path / "results", RunOptions(progress=False))
    assert not (tmp_path / "results" / "Broken" / "plans.json").exists()


def test_unknown_configuration_is_refused(finished_run, tmp_path):
    data, _, _ = finished_run
    shutil.copytree(data, tmp_path / "Demo")
    with pytest.raises(DatasetError, match="not in the plans"):
        run_pipeline(tmp_path / "Demo", tmp_path / "r", RunOptions(configurations=("3d_lowres",), progress=False))


def test_cli_run_reports_the_missing_dataset(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nothing"), "-o", str(tmp_path)]) == 2
    assert "dataset folder not found" in capsys.readouterr().err


def test_a_cascade_is_only_trained_with_all_five_folds_of_its_previous_stage():
    from types import SimpleNamespace

    from autounet.pipeline.prepare import without_unfed_cascades as _without_unfed_cascades

    previous = {"3d_fullres": None, "3d_cascade_fullres": "3d_lowres"}
    plans = SimpleNamespace(configuration=lambda name: SimpleNamespace(previous_stage=previous[name]))
    names = ["3d_fullres", "3d_cascade_fullres"]
    notes: list[str] = []
    assert _without_unfed_cascades(plans, names, RunOptions(), notes) == names and notes == []
    assert _without_unfed_cascades(plans, names, RunOptions(folds=(0,)), notes) == ["3d_fullres"]
    assert "3d_cascade_fullres is not trained" in notes[0] and "folds 0-4" in notes[0]
    with pytest.raises(DatasetError, match="--folds 0 1 2 3 4"):
        _without_unfed_cascades(plans, names, RunOptions(folds=("all",), configurations=tuple(names)), [])
