"""The report says what each fold trained (not the plan's values) and shows the budget decision as a table."""

from __future__ import annotations

import html
import re
import shutil
from dataclasses import replace
from pathlib import Path

from autounet.planners import load_plans
from autounet.planners.time_budget import features_for_base, plan_for_time_budget
from autounet.report import write_report


def _text(page_html: str) -> str:
    without_images = re.sub(r'src="data:[^"]*"', "", page_html)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", without_images)).split())


def test_folds_show_what_they_trained_and_the_budget_decision_is_a_table(trained_3d, tmp_path):
    results = Path(shutil.copytree(trained_3d, tmp_path / "results", symlinks=True))
    plans = load_plans(results / "plans.json")
    conf = plans.configuration("3d_fullres")
    wide = replace(plans, configurations={"3d_fullres": conf.replace(
        features_per_stage=features_for_base(32, conf.n_stages, 320))})
    # Plans made for a budget afterwards: wider than what fold 0 trained (its log says 4-8-16...).
    budget_plans, choice = plan_for_time_budget(
        wide, "3d_fullres", 600, lambda conf: 0.01 * conf.features_per_stage[0], num_training_cases=12,
        device_name="cpu (float32)",
    )
    budget_plans.save(results / "plans.json")
    text = _text(write_report(results, tmp_path / "report.html").read_text(encoding="utf-8"))

    assert "Compute-aware choice for the time budget" in text
    assert f"choice {choice.reason}" in text and "measured on cpu (float32)" in text
    assert "base features batch seconds per iteration (measured)" in text
    assert "budget_candidates" not in text and "{'" not in text  # no raw Python dict
    planned = "-".join(str(f) for f in budget_plans.configuration("3d_fullres").features_per_stage)
    assert f"features per stage (planned) {planned}" in text

    trained = text[text.index("What each fold trained"):]
    assert "0 unet 4-8-16" in trained and "float32" in trained.split("Fold(s)")[0]
    assert "Fold(s) 0 trained other features, patch or batch than the plans' configuration" in trained
