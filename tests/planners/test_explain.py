"""Explanations name the rule and the numbers; format_explanations prints every section."""

from __future__ import annotations

from autounet.planners import PlanOverrides, format_explanations, plan_experiment
from autounet.planners.explain import explain_batch, explain_target_spacing, explain_transpose


def test_every_value_is_explained_with_its_numbers(make_fp, no_gpu):
    fp = make_fp([[1.0, 1.0, 1.0]] * 260, [[36, 50, 35]] * 260, labels={"background": 0, "a": 1, "b": 2})
    plans = plan_experiment(fp, device=no_gpu)
    fullres = "\n".join(plans.explanations["3d_fullres"])
    assert "patch 40x56x40" in fullres and "clipped to the median image 36x50x35" in fullres
    assert "memory estimate 1.917e+07" in fullres
    assert "network: 4 stages" in fullres and "features [32, 64, 128, 256]" in fullres
    assert "batch size 9: memory allows 58 at 8 GB" in fullres and "5% of the dataset" in fullres
    dataset = "\n".join(plans.explanations["dataset"])
    assert "median spacing per axis over 260 cases" in dataset and "per-image z-score" in dataset
    assert "no low-resolution stage is needed" in dataset


def test_format_lists_sections_in_pipeline_order_and_notes(make_fp, no_gpu):
    fp = make_fp([[1.0, 0.8, 0.8]] * 50, [[400, 512, 512]] * 50, channel_names=("CT",))
    text = format_explanations(plan_experiment(fp, overrides=PlanOverrides(batch_size=3), device=no_gpu))
    headers = [line for line in text.splitlines() if not line.startswith(" ")]
    assert headers == ["dataset", "2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres", "notes"]
    assert "batch size 3: set by the user (--batch-size)" in text
    assert "ct normalisation" in text and "growing the spacing by 3% per step" in text


def test_single_rule_sentences():
    assert "axis 0 is anisotropic" in explain_target_spacing((5.0, 0.5, 0.5), (4.2, 0.5, 0.5), 3)
    assert "set by the user" in explain_target_spacing((1.0, 1.0, 1.0), (2.0, 1.0, 1.0), 3, overridden=True)
    assert "1 case is" in explain_target_spacing((1.0, 1.0, 1.0), (1.0, 1.0, 1.0), 1)
    assert "is already first" in explain_transpose((0, 1, 2), (3.0, 1.0, 1.0), True)
    assert "never transposed" in explain_transpose((0, 1, 2), (999.0, 1.0, 1.0), False)
    assert explain_batch(2, 1, 40, 8.0) == "batch size 2: the minimum (2); memory alone would allow only 1"
    assert "5% dataset cap alone" in explain_batch(2, 40, 0, 8.0)
    assert "as many as fit" in explain_batch(12, 12, 40, 8.0)
