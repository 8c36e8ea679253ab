"""One preparation for ``autounet run`` and ``autounet train DATASET``: fingerprint, plan, preprocess, budget."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from autounet.dataset.demo import DemoSpec, make_demo_dataset
from autounet.errors import DatasetError
from autounet.pipeline.prepare import PrepareOptions, choose_configurations, prepare_results
from autounet.pipeline.timing import StageLog

ONLY_3D = PrepareOptions(configurations=("3d_fullres",), with_previous_stages=False, progress=False, workers=1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("prepare") / "Demo", DemoSpec(num_cases=4, shape=(12, 14, 13), seed=3))


def test_prepares_once_and_keeps_what_exists(dataset, tmp_path):
    results = tmp_path / "results"
    prepared = prepare_results(dataset, results, ONLY_3D)
    assert prepared.configurations == ["3d_fullres"] and not prepared.kept_plans and prepared.notes == []
    for name in ("dataset.json", "fingerprint.json", "plans.json", "preprocessed/3d_fullres/manifest.json"):
        assert (results / name).is_file(), name
    case = next((results / "preprocessed" / "3d_fullres").glob("*_seg.npy"))
    written = case.stat().st_mtime_ns
    plans = (results / "plans.json").read_text()

    again = prepare_results(dataset, results, PrepareOptions(**{**ONLY_3D.__dict__, "budget_seconds": 600.0}))
    assert again.kept_plans and (results / "plans.json").read_text() == plans
    assert case.stat().st_mtime_ns == written  # unchanged cases are not preprocessed again
    assert any("not planned for a time budget" in note for note in again.notes)


def test_stages_are_logged_for_a_run(dataset, tmp_path):
    log = StageLog(tmp_path / "results").load()
    prepare_results(dataset, tmp_path / "results", PrepareOptions(configurations=("3d_fullres",), check=True,
                                                                  progress=False, workers=1), log=log)
    assert {"check", "fingerprint", "plan", "preprocess"} <= set(log.data["stages"])


def test_a_configuration_that_is_not_planned_is_named_with_the_command(dataset, tmp_path):
    with pytest.raises(DatasetError, match=r"3d_cascade_fullres are not in the plans .*plans.json.*autounet plan"):
        prepare_results(dataset, tmp_path / "results",
                        PrepareOptions(configurations=("3d_cascade_fullres",), progress=False, workers=1))


def test_train_prepares_a_cascade_alone_and_run_with_its_previous_stage():
    previous = {"3d_fullres": None, "3d_lowres": None, "3d_cascade_fullres": "3d_lowres"}
    plans = SimpleNamespace(configurations=previous, configuration=lambda n: SimpleNamespace(previous_stage=previous[n]))
    train = PrepareOptions(configurations=("3d_cascade_fullres",), folds=("0",), with_previous_stages=False)
    assert choose_configurations(plans, train, []) == ["3d_cascade_fullres"]  # its previous stage is trained already
    run = PrepareOptions(configurations=("3d_cascade_fullres",))
    assert choose_configurations(plans, run, []) == ["3d_lowres", "3d_cascade_fullres"]
    with pytest.raises(DatasetError, match="--folds 0 1 2 3 4"):
        choose_configurations(plans, PrepareOptions(configurations=("3d_cascade_fullres",), folds=(0,)), [])
