"""The main paths end to end with a wall-clock budget: ``autounet demo`` (report and a sensible Dice) and
``autounet run --budget`` on real Hippocampus cases (the compute-aware choice and the budget reach the fold)."""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

import pytest

from autounet.cli import main
from autounet.evaluation import load_summary
from autounet.planners import load_plans

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trainers.helpers import hippocampus_subset  # noqa: E402

#: ``autounet demo --budget 60s -f 0 --cases 8`` ended at a validation Dice of 0.79 on a loaded 2-core machine (a 45 s
#: budget, 96 iterations); the full demo (6 minutes, five folds) at 0.88-0.92. A model that learned nothing, or one
#: label only, stays below the bar.
DEMO_MIN_DICE = 0.5
DEMO_BUDGET_SECONDS = 60
#: The pipeline never gives a fold less than this (autounet/pipeline/run.py, MIN_USEFUL_FOLD_SECONDS).
MIN_FOLD_SECONDS = 60


def _text(page: Path) -> str:
    without_images = re.sub(r'src="data:[^"]*"', "", page.read_text(encoding="utf-8"))
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", without_images)).split())


def test_demo_with_a_small_budget_end_to_end(tmp_path, capsys):
    argv = ["demo", "-o", str(tmp_path), "--budget", f"{DEMO_BUDGET_SECONDS}s", "-f", "0", "--cases", "8",
            "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    results = tmp_path / "results" / "Demo_3d"
    assert f"report: {results / 'report' / 'index.html'}" in printed and "next: autounet predict" in printed

    training = load_plans(results / "plans.json").configuration("3d_fullres").training.to_dict()
    assert training["budget_candidates"] and training["budget_choice"] and "augmentation_scale" in training
    fold = results / "3d_fullres" / "fold_0"
    log = json.loads((fold / "training_log.json").read_text())
    assert 0 < log["budget_seconds"] <= max(DEMO_BUDGET_SECONDS, MIN_FOLD_SECONDS)
    assert log["epochs"][-1]["elapsed_seconds"] <= log["budget_seconds"] * 1.5 + 30  # the budget bounded the fold

    dice = load_summary(fold / "validation" / "summary.json").foreground_mean["Dice"]
    assert dice >= DEMO_MIN_DICE
    text = _text(results / "report" / "index.html")
    assert "Compute-aware choice for the time budget" in text and training["budget_choice"] in text
    trained = text[text.index("What each fold trained"):]
    assert "0 unet " + "-".join(str(f) for f in log["features_per_stage"]) in trained
    assert f"{dice:.4f}" in text  # the final validation Dice of the fold


@pytest.mark.integration
def test_run_with_a_budget_on_real_hippocampus_cases(hippocampus_dir, tmp_path, capsys):
    """``autounet run --budget``: the networks are chosen by measuring on this machine, the plans record why, each
    fold trains within its share of the budget (its schedule capped by --epochs), validates, and the report shows it."""
    dataset = hippocampus_subset(hippocampus_dir, tmp_path / "Hippocampus", 20)
    argv = ["run", str(dataset), "-o", str(tmp_path / "results"), "-c", "3d_fullres", "-f", "0", "--budget", "3m",
            "--epochs", "1", "--iterations-per-epoch", "20", "--precision", "float32", "--no-progress"]
    assert main(argv) == 0
    results = tmp_path / "results" / "Hippocampus"
    training = load_plans(results / "plans.json").configuration("3d_fullres").training.to_dict()
    assert 0 < training["budget_seconds"] <= 180 and training["budget_measurement_seconds"] > 0
    assert all(c["seconds_per_iteration"] > 0 for c in training["budget_candidates"])
    assert "iterations" in training["budget_choice"]

    fold = results / "3d_fullres" / "fold_0"
    log = json.loads((fold / "training_log.json").read_text())
    planned = load_plans(results / "plans.json").configuration("3d_fullres")
    assert log["features_per_stage"] == list(planned.features_per_stage)  # the fold trained the budget's choice
    assert 0 < log["budget_seconds"] <= training["budget_seconds"]
    assert log["epochs"][-1]["iteration"] == 20  # the schedule is an upper bound under a budget
    summary = load_summary(fold / "validation" / "summary.json")
    assert len(summary.cases) == 4 and summary.reference_dir == str(dataset / "labelsTr")
    assert "Compute-aware choice for the time budget" in _text(results / "report" / "index.html")
