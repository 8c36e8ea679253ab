"""Report pieces that say what each fold actually trained, and the compute-aware budget decision as a table.

The plans say what was planned; a fold may train something else (the compute-aware choice, ``--network``,
``--batch-size``, ``--patch-size``, a precision picked for the CPU). :func:`fold_training_facts` reads what a fold
trained from its own files, so the report never shows the plan's values as the fold's.
"""

from __future__ import annotations

from typing import Any

from autounet.report.collect import FoldRun
from autounet.report.markup import Html, esc, fmt_values, join, key_value_table, paragraph, table, tag

#: Keys of a configuration's ``training`` entry written by compute-aware planning (autounet/planners/time_budget.py).
BUDGET_KEYS = ("budget_seconds", "budget_device", "budget_choice", "budget_candidates", "budget_iterations",
               "augmentation_scale", "budget_measurement_seconds")


def fold_training_facts(run: FoldRun) -> dict[str, Any]:
    """What one fold trained, from its training log: network, features, patch, batch, iterations, precision,
    augmentation scale, output bias, budget.

    Parameters
    ----------
    run : FoldRun
        A fold of the results folder (its ``training_log.json`` header and epochs).

    Returns
    -------
    dict
        Keys ``network``, ``features_per_stage``, ``patch_size``, ``batch_size``, ``iterations``, ``precision``,
        ``augmentation_scale``, ``output_bias``, ``budget_seconds``, ``device``; a value is None where the log does
        not say. (When folds keep a plain-JSON record of what they trained, read it here instead.)
    """
    header = run.header or {}
    last = run.epochs[-1] if run.epochs else {}
    keys = ("network", "features_per_stage", "patch_size", "batch_size", "precision", "augmentation_scale",
            "output_bias", "budget_seconds", "device")
    facts = {key: header.get(key) for key in keys}
    facts["iterations"] = last.get("iteration")
    return facts


def _seconds_text(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "none"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def trained_table(runs: list[FoldRun], planned: Any | None) -> Html:
    """One row per fold: what it trained; a note when that differs from the plans."""
    header = ["fold", "network", "features per stage", "patch", "batch", "iterations", "precision",
              "augmentation scale", "output bias", "budget"]
    rows, differs = [], []
    for run in runs:
        facts = fold_training_facts(run)
        features = facts["features_per_stage"]
        rows.append([
            run.fold, facts["network"] or "n/a", "-".join(str(f) for f in features) if features else "n/a",
            fmt_values(facts["patch_size"]) if facts["patch_size"] else "n/a", facts["batch_size"] or "n/a",
            facts["iterations"] if facts["iterations"] is not None else "n/a", facts["precision"] or "n/a",
            facts["augmentation_scale"] if facts["augmentation_scale"] is not None else "n/a",
            facts["output_bias"] or "n/a", _seconds_text(facts["budget_seconds"]),
        ])
        if planned is not None and features and (
            tuple(features) != tuple(planned.features_per_stage) or facts["batch_size"] != planned.batch_size
            or tuple(facts["patch_size"] or ()) != tuple(planned.patch_size)
        ):
            differs.append(run.fold)
    parts = [table(header, rows, numeric_from=99)]
    if differs:
        parts.append(paragraph(
            f"Fold(s) {', '.join(differs)} trained other features, patch or batch than the plans' configuration "
            "(Plans section): the values above are what was trained."
        ))
    return join(parts)


def budget_decision(training: dict[str, Any]) -> Html:
    """The compute-aware choice recorded in a configuration's ``training`` entry, as sentences and a table of the
    measured candidates; empty when the plans were not made for a budget."""
    if "budget_seconds" not in training:
        return Html("")
    facts = [
        ("budget of one fold", _seconds_text(training.get("budget_seconds"))),
        ("measured on", training.get("budget_device", "n/a")),
        ("choice", training.get("budget_choice", "n/a")),
        ("iterations planned", training.get("budget_iterations", "n/a")),
        ("augmentation probabilities scaled by", training.get("augmentation_scale", "not scaled")),
    ]
    if "budget_measurement_seconds" in training:
        facts.append(("time spent measuring", _seconds_text(training["budget_measurement_seconds"])))
    candidates = training.get("budget_candidates") or []
    rows = [[c.get("base_features"), c.get("batch_size"), c.get("seconds_per_iteration")] for c in candidates]
    parts = [tag("h4", "Compute-aware choice for the time budget"), key_value_table(facts)]
    if rows:
        parts.append(table(["base features", "batch", "seconds per iteration (measured)"], rows))
    return join(parts)


def other_training_entries(training: dict[str, Any]) -> list[tuple[str, Html]]:
    """``(key, value)`` of the ``training`` entries that are not part of the budget decision (hand-written plans)."""
    return [(key, esc(value)) for key, value in training.items() if key not in BUDGET_KEYS]
