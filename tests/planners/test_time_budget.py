"""Compute-aware planning: the width and batch a time budget affords, from (here: invented) measured step times."""

from __future__ import annotations


import pytest

from autounet.planners import load_plans, plan_experiment
from autounet.planners.time_budget import TARGET_ITERATIONS, plan_for_time_budget

from .conftest import NO_GPU, make_fingerprint

from shared_data import HIPPOCAMPUS_REFERENCE as REFERENCE


@pytest.fixture
def plans():
    fingerprint = make_fingerprint([(1.0, 1.0, 1.0)] * 300, [(36, 50, 35)] * 300, labels={"background": 0, "a": 1, "b": 2})
    return plan_experiment(fingerprint, device=NO_GPU)


def linear_cost(configuration) -> float:
    """A pretend device: seconds per iteration proportional to base width x batch."""
    return configuration.features_per_stage[0] * configuration.batch_size / 100


def test_a_long_budget_keeps_the_planned_width(plans):
    planned = plans.configuration("3d_fullres")
    new, choice = plan_for_time_budget(plans, "3d_fullres", 100 * 3600, linear_cost, num_training_cases=166)
    conf = new.configuration("3d_fullres")
    assert conf.features_per_stage == planned.features_per_stage and conf.batch_size == planned.batch_size
    assert choice.iterations >= TARGET_ITERATIONS
    assert conf.training.budget_iterations == choice.iterations


def test_a_short_budget_narrows_the_network_and_records_why(plans):
    planned = plans.configuration("3d_fullres")
    seconds = 1000 * 16 * planned.batch_size / 100 / 0.85  # 16 wide reaches 1000 iterations, 24 does not
    new, choice = plan_for_time_budget(plans, "3d_fullres", seconds, linear_cost, num_training_cases=166)
    conf = new.configuration("3d_fullres")
    assert conf.features_per_stage[0] == 16 and conf.features_per_stage[1] == 32
    assert conf.patch_size == planned.patch_size  # the patch is never changed
    measured = [c.base_features for c in conf.training.budget_candidates]
    assert measured == [8, 12, 16, 24]  # narrowest first, stops at the first that cannot reach the target
    assert 0 < conf.training.augmentation_scale < 1
    assert "compute-aware" in " ".join(new.explanations["3d_fullres"])
    assert choice.reason in conf.training.budget_choice


def test_too_short_for_any_width_halves_the_batch(plans):
    planned = plans.configuration("3d_fullres")
    assert planned.batch_size >= 4
    new, choice = plan_for_time_budget(plans, "3d_fullres", 60, linear_cost)
    conf = new.configuration("3d_fullres")
    assert conf.features_per_stage[0] == 8 and conf.batch_size < planned.batch_size
    assert "no candidate reaches" in choice.reason
    assert conf.training.augmentation_scale is None  # without the case count augmentation stays nnU-Net's


def test_the_plans_survive_a_json_round_trip(plans, tmp_path):
    new, _ = plan_for_time_budget(plans, "3d_fullres", 1800, linear_cost, num_training_cases=166)
    new.save(tmp_path / "plans.json")
    assert load_plans(tmp_path / "plans.json").configuration("3d_fullres") == new.configuration("3d_fullres")


def test_a_budget_that_is_not_positive_is_refused(plans):
    with pytest.raises(ValueError, match="budget must be positive"):
        plan_for_time_budget(plans, "3d_fullres", 0, linear_cost)


@pytest.mark.usefixtures("hippocampus_reference")
def test_cli_plan_with_a_budget_measures_on_this_machine(tmp_path, capsys):
    from autounet.cli import main

    out = tmp_path / "plans.json"
    argv = ["plan", "--fingerprint", str(REFERENCE), "-o", str(out), "--configurations", "3d_fullres",
            "--budget", "2m", "--device", "cpu"]
    assert main(argv) == 0
    conf = load_plans(out).configuration("3d_fullres")
    assert conf.training.budget_seconds == 120 and conf.training.budget_candidates
    assert all(c.seconds_per_iteration > 0 for c in conf.training.budget_candidates)
    assert "iterations" in capsys.readouterr().out
