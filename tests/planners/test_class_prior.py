"""The class prior: planned from the fingerprint's label counts, kept in plans.json, editable and checked."""

from __future__ import annotations

import dataclasses
import json

import pytest

from autounet.errors import PlansError
from autounet.planners import load_plans, plan_experiment
from autounet.planners.class_prior import MIN_CLASS_PRIOR, plan_class_prior


def test_shares_follow_the_label_order_and_sum_to_one() -> None:
    prior = plan_class_prior({2: 300, 0: 9000, 1: 700}, [0, 1, 2])
    assert prior == (0.9, 0.07, 0.03)
    assert sum(prior) == pytest.approx(1.0, abs=1e-3)


def test_rare_classes_are_raised_to_the_floor_and_a_missing_label_counts_as_rare() -> None:
    prior = plan_class_prior({0: 10**7, 1: 3}, [0, 1, 2])
    assert prior is not None
    assert prior[1] == prior[2] == pytest.approx(MIN_CLASS_PRIOR, rel=0.03)
    assert prior[0] == pytest.approx(1 - 2 * MIN_CLASS_PRIOR, rel=0.01)


def test_no_counts_means_no_prior_and_bad_arguments_are_refused() -> None:
    assert plan_class_prior({0: 0, 1: 0}, [0, 1]) is None
    with pytest.raises(ValueError, match="must not be negative"):
        plan_class_prior({0: 10, 1: -1}, [0, 1])
    with pytest.raises(ValueError, match=r"min_prior must be within \[0, 1/3\]"):
        plan_class_prior({0: 10}, [0, 1, 2], min_prior=0.5)


def test_plans_carry_the_prior_of_the_fingerprint(make_fp, no_gpu) -> None:
    fingerprint = make_fp([[1.0, 1.0, 1.0]] * 2, [[40, 40, 40]] * 2, labels={"background": 0, "a": 1, "b": 2})
    counts = ({0: 60_000, 1: 3_000, 2: 1_000}, {0: 60_000, 1: 1_000, 2: 3_000})
    cases = tuple(dataclasses.replace(case, label_voxels=c) for case, c in zip(fingerprint.cases, counts))
    plans = plan_experiment(dataclasses.replace(fingerprint, cases=cases), device=no_gpu)
    assert plans.class_prior == pytest.approx((120 / 128, 4 / 128, 4 / 128), abs=1e-4)
    assert any("class prior background 0.9375" in line for line in plans.explanations["dataset"])


def test_a_fingerprint_without_label_counts_plans_a_zero_bias(make_fp, no_gpu) -> None:
    plans = plan_experiment(make_fp([[1.0, 1.0, 1.0]], [[40, 40, 40]]), device=no_gpu)
    assert plans.class_prior is None
    assert any("output bias starts at zero, as in nnU-Net" in line for line in plans.explanations["dataset"])


def _saved_plans(tmp_path, make_fp, no_gpu, edit) -> object:
    fingerprint = make_fp([[1.0, 1.0, 1.0]], [[40, 40, 40]])
    case = dataclasses.replace(fingerprint.cases[0], label_voxels={0: 990, 1: 10})
    plans = plan_experiment(dataclasses.replace(fingerprint, cases=(case,)), device=no_gpu)
    path = tmp_path / "plans.json"
    plans.save(path)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


def test_a_hand_edited_prior_is_used_and_null_switches_it_off(tmp_path, make_fp, no_gpu) -> None:
    path = _saved_plans(tmp_path, make_fp, no_gpu, lambda d: d.update(class_prior=[0.8, 0.2]))
    assert load_plans(path).class_prior == (0.8, 0.2)
    path = _saved_plans(tmp_path, make_fp, no_gpu, lambda d: d.update(class_prior=None))
    assert load_plans(path).class_prior is None


@pytest.mark.parametrize("bad", [[0.5, 0.3, 0.2], [1.0, 0.0], [0.9, -0.1]])
def test_a_prior_that_does_not_fit_the_labels_names_the_file_and_the_fix(tmp_path, make_fp, no_gpu, bad) -> None:
    path = _saved_plans(tmp_path, make_fp, no_gpu, lambda d: d.update(class_prior=bad))
    with pytest.raises(PlansError, match=r"plans.json: class_prior .* needs one share in \(0, 1\] per label \(2: "
                                         r"background=0, target=1\); fix it or set it to null"):
        load_plans(path)


def test_plans_of_the_previous_version_load_without_a_prior(tmp_path, make_fp, no_gpu) -> None:
    def to_version_1(data: dict) -> None:
        data.pop("class_prior")
        data["plans_version"] = 1

    plans = load_plans(_saved_plans(tmp_path, make_fp, no_gpu, to_version_1))
    assert plans.plans_version == 1
    assert plans.class_prior is None
