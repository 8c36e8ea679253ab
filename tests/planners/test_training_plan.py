"""The plans' training block is a typed TrainingPlan that round-trips a plans file exactly."""

from __future__ import annotations

import json

import pytest

from autounet.errors import PlansError
from autounet.planners import load_plans, plan_experiment
from autounet.planners.plans import Plans
from autounet.planners.time_budget import plan_for_time_budget
from autounet.planners.training_plan import MeasuredCandidate, TrainingPlan

from .conftest import NO_GPU, make_fingerprint


def test_compute_aware_plans_round_trip_byte_for_byte(tmp_path):
    fingerprint = make_fingerprint([(1.0, 1.0, 1.0)] * 30, [(36, 50, 35)] * 30, labels={"background": 0, "a": 1})
    plans, _ = plan_for_time_budget(plan_experiment(fingerprint, device=NO_GPU), "3d_fullres", 600.0,
                                    lambda c: c.features_per_stage[0] * c.batch_size / 100, num_training_cases=24)
    plans.save(tmp_path / "plans.json")
    text = (tmp_path / "plans.json").read_text()
    training = json.loads(text)["configurations"]["3d_fullres"]["training"]
    assert list(training) == ["budget_seconds", "budget_device", "budget_choice", "budget_candidates",
                              "budget_iterations", "augmentation_scale"]  # the order the planner has always written
    load_plans(tmp_path / "plans.json").save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == text
    conf = load_plans(tmp_path / "plans.json").configuration("3d_fullres")
    assert conf.training.planned_for_budget and conf.training.budget_seconds == 600.0
    assert all(isinstance(c, MeasuredCandidate) for c in conf.training.budget_candidates)


def test_hand_written_entries_are_kept():
    block = {"augmentation_scale": 0.5, "inference_mirror_axes": [1, 2], "mirror_axes": [0], "my_note": {"a": 1}}
    plan = TrainingPlan.from_dict(block)
    assert plan.augmentation_scale == 0.5 and plan.inference_mirror_axes == (1, 2) and not plan.planned_for_budget
    assert plan.extra == {"mirror_axes": [0], "my_note": {"a": 1}}
    assert plan.to_dict() == block
    assert TrainingPlan.from_dict({}).to_dict() == {} and TrainingPlan.from_dict(None) == TrainingPlan()


def test_plans_without_a_training_block_load(tmp_path):
    fingerprint = make_fingerprint([(1.0, 1.0, 1.0)] * 10, [(20, 20, 20)] * 10)
    data = plan_experiment(fingerprint, device=NO_GPU).to_dict()
    for conf in data["configurations"].values():
        del conf["training"]
    assert Plans.from_dict(data).configuration("3d_fullres").training == TrainingPlan()


@pytest.mark.parametrize("block, words", [([1, 2], "must be a JSON object"),
                                          ({"budget_candidates": [{"batch_size": 2}]}, "base_features")])
def test_a_broken_training_block_is_named(block, words):
    with pytest.raises(PlansError, match=words):
        TrainingPlan.from_dict(block)
