"""Report sections about what came out: training curves, validation Dice, overlays, find-best, stage timings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from autounet.report.collect import CaseScore, FoldRun, ReportData
from autounet.report.figures import plot_dice_boxes, plot_training_curves
from autounet.report.markup import (
    Html,
    bullet_list,
    figure,
    fmt_number,
    join,
    key_value_table,
    not_available,
    paragraph,
    table,
    tag,
)
from autounet.report.overlays import make_overlays
from autounet.report.trained import trained_table


def training_section(data: ReportData) -> Html:
    """Per configuration: a table of the folds, then each fold's curves (losses, pseudo Dice per label, LR)."""
    trained = [c for c in data.configurations if data.folds_of(c)]
    if not trained:
        return not_available("no fold trained yet (run \"autounet train DATASET CONFIGURATION FOLD\")")
    parts: list[Any] = []
    for configuration in trained:
        runs = data.folds_of(configuration)
        parts.append(tag("h3", f"Configuration {configuration}", id=f"training-{configuration}"))
        parts.append(table(
            ["fold", "epochs", "iterations", "train / validation cases", "last train loss", "last validation loss",
             "best smoothed pseudo Dice", "training time", "final validation Dice"],
            [_fold_row(run) for run in runs],
        ))
        parts.append(tag("h4", "What each fold trained"))
        planned = data.plans.configurations.get(configuration) if data.plans is not None else None
        parts.append(trained_table(runs, planned))
        for run in runs:
            if run.epochs:
                title = f"{configuration}, fold {run.fold}"
                parts.append(figure(plot_training_curves(run.epochs, title), f"Training curves of {title}"))
            else:
                parts.append(not_available(f"fold {run.fold}: training log not available yet"))
    return join(parts)


def _fold_row(run: FoldRun) -> list[Any]:
    last = run.epochs[-1] if run.epochs else {}
    emas = [r["ema_dice"] for r in run.epochs if _finite(r.get("ema_dice"))]
    seconds = last.get("elapsed_seconds") if _finite(last.get("elapsed_seconds")) else None
    cases = f"{run.header.get('train_cases', '?')} / {run.header.get('val_cases', '?')}" if run.header else "n/a"
    return [
        run.fold,
        len(run.epochs),
        last.get("iteration", "n/a"),
        cases,
        _num(last.get("train_loss")),
        _num(last.get("val_loss")),
        _num(max(emas)) if emas else "n/a",
        format_seconds(seconds) if seconds is not None else "n/a",
        _final_validation_text(run),
    ]


def _final_validation_text(run: FoldRun) -> str:
    if run.validation is not None:
        return fmt_number(run.validation.foreground_mean.get("Dice", math.nan))
    if run.fold_summary is not None:
        return str(run.fold_summary.get("note", "predicted, not scored"))
    return "not yet"


def dice_section(data: ReportData) -> Html:
    """Box plots of per-case Dice per label and configuration, a table of statistics and the per-case table."""
    names = data.label_names
    scores = {c: data.case_scores(c) for c in data.configurations}
    scores = {c: s for c, s in scores.items() if s}
    if not scores:
        return not_available(
            "no validation results yet: the final validation at the end of each fold writes them "
            "(<configuration>/fold_<k>/validation/summary.json)"
        )
    labels = {c: _label_keys(s) for c, s in scores.items()}
    boxes = {
        c: {names.get(k, k): [score.dice.get(k, math.nan) for score in s] for k in labels[c]} for c, s in scores.items()
    }
    parts: list[Any] = [figure(plot_dice_boxes(boxes), "Dice per validation case, per label and configuration")]
    rows = []
    for configuration, case_scores in scores.items():
        for key in labels[configuration]:
            values = np.array([s.dice.get(key, math.nan) for s in case_scores], dtype=float)
            rows.append([configuration, names.get(key, key), *_statistics(values)])
        means = np.array([s.mean_dice for s in case_scores], dtype=float)
        rows.append([configuration, Html("<strong>mean over labels</strong>"), *_statistics(means)])
    header = ["configuration", "label", "mean Dice", "median", "std", "min", "max", "cases"]
    parts.append(table(header, rows, numeric_from=2))
    parts.append(paragraph(
        "Dice is undefined (n/a) for a label when both the reference and the prediction are empty; those cases are "
        "left out of its statistics."
    ))
    for configuration, case_scores in scores.items():
        header = ["case", "fold", *[names.get(k, k) for k in labels[configuration]], "mean"]
        rows = [
            [s.case_id, s.fold, *[_num(s.dice.get(k, math.nan)) for k in labels[configuration]], _num(s.mean_dice)]
            for s in sorted(case_scores, key=lambda s: s.case_id)
        ]
        summary = tag("summary", f"Dice of every validation case of {configuration} ({len(rows)} cases)")
        parts.append(tag("details", join([summary, table(header, rows, numeric_from=2)])))
    return join(parts)


def _label_keys(scores: list[CaseScore]) -> list[str]:
    keys: dict[str, None] = {}
    for score in scores:
        keys.update(dict.fromkeys(score.dice))
    return list(keys)


def _statistics(values: np.ndarray) -> list[Any]:
    defined = values[~np.isnan(values)]
    if defined.size == 0:
        return ["n/a"] * 5 + [0]
    return [_num(f(defined)) for f in (np.mean, np.median, np.std, np.min, np.max)] + [int(defined.size)]


def overlay_section(data: ReportData) -> Html:
    """Best, median and worst validation case of each configuration, through the slices with most foreground."""
    parts: list[Any] = []
    for configuration in data.configurations:
        scores = data.case_scores(configuration)
        if not scores:
            continue
        parts.append(tag("h3", f"Configuration {configuration}", id=f"overlays-{configuration}"))
        overlays, note = make_overlays(scores, data.dataset_root, data.label_names)
        parts += [figure(o.png, o.caption) for o in overlays]
        if note:
            parts.append(not_available(f"some overlays are not available: {note}"))
    if not parts:
        return not_available("no validation predictions yet, so no overlays")
    intro = paragraph(
        "Cases ranked by mean foreground Dice. Each panel is the slice with the most ground-truth foreground in its "
        "plane (the whole image for 2D data); solid contours are the ground truth, dashed ones the prediction."
    )
    return join([intro, *parts])


def find_best_section(data: ReportData) -> Html:
    """The comparison of configurations and ensembles, and the post-processing decision."""
    parts: list[Any] = []
    inference = data.inference
    if inference is not None:
        parts.append(key_value_table([
            ("best", " + ".join(inference.get("configurations") or []) or "n/a"),
            ("cross-validation mean Dice", _num(inference.get("cross_validation_dice"))),
            ("folds", ", ".join(str(f) for f in inference.get("folds") or []) or "n/a"),
            ("checkpoint", inference.get("checkpoint", "n/a")),
            ("post-processing file", inference.get("postprocessing") or "none"),
        ]))
        if inference.get("command"):
            parts += [paragraph("Predict new cases with:"), tag("pre", str(inference["command"]))]
        candidates = [c for c in inference.get("candidates") or [] if isinstance(c, dict)]
        keys: dict[str, None] = {}
        for candidate in candidates:
            keys.update(dict.fromkeys(candidate.get("dice_per_label") or {}))
        names = data.label_names
        rows = [
            [" + ".join(c.get("configurations") or []), _num(c.get("mean_dice")),
             *[_num((c.get("dice_per_label") or {}).get(k)) for k in keys], c.get("num_cases", "n/a"), c.get("note") or ""]
            for c in candidates
        ]
        if rows:
            header = ["candidate", "mean Dice", *[f"Dice {names.get(k, k)}" for k in keys], "cases", "note"]
            parts.append(table(header, rows))
        skipped = inference.get("skipped") or {}
        if isinstance(skipped, dict) and skipped:
            parts += [paragraph("Not compared:"), bullet_list(f"{k}: {v}" for k, v in skipped.items())]
    parts.append(tag("h3", "Post-processing"))
    parts.append(_postprocessing(data) if data.postprocessing is not None else not_available(
        "no post-processing decision yet (\"autounet find-best\" makes it)"))
    if inference is None:
        parts.insert(0, not_available("find-best has not run yet (\"autounet find-best RESULTS_DIR\")"))
    return join(parts)


def _postprocessing(data: ReportData) -> Html:
    decision = data.postprocessing or {}
    names = data.label_names
    before = decision.get("dice_before") or {}
    after = decision.get("dice_after") or {}
    keys = list(dict.fromkeys([*before, *after]))
    names = {**names, "foreground_mean": "mean over labels"}
    rows = [[names.get(k, k), _num(before.get(k)), _num(after.get(k))] for k in keys]
    parts: list[Any] = [
        paragraph(f"Decision: {decision.get('description', 'n/a')}"),
        key_value_table([
            ("configurations", " + ".join(decision.get("configurations") or []) or "n/a"),
            ("cases it was decided on", decision.get("num_cases", "n/a")),
        ]),
    ]
    if rows:
        parts.append(table(["label", "Dice before", "Dice after"], rows))
    return join(parts)


def timings_section(data: ReportData) -> Html:
    """Seconds and peak memory per stage of ``autounet run`` (its ``run_log.json``)."""
    stages = (data.run_log or {}).get("stages")
    if not isinstance(stages, dict) or not stages:
        return not_available("no stage timings (run_log.json is written by \"autounet run\")")
    rows, total = [], 0.0
    for name, entry in stages.items():
        entry = entry if isinstance(entry, dict) else {}
        seconds = float(entry["seconds"]) if _finite(entry.get("seconds")) else None
        total += seconds or 0.0
        facts = ", ".join(f"{k} {v}" for k, v in entry.items() if k not in ("seconds", "peak_rss_mb"))
        rows.append([name, _num(seconds, 1), format_seconds(seconds) if seconds is not None else "n/a",
                     _num(entry.get("peak_rss_mb"), 0), facts])
    rows.append([Html("<strong>total</strong>"), _num(total, 1), format_seconds(total), "", ""])
    parts: list[Any] = [table(["stage", "seconds", "wall time", "peak memory (RSS, MB)", "details"], rows)]
    sessions = (data.run_log or {}).get("sessions")
    if isinstance(sessions, int) and sessions > 1:
        parts.append(paragraph(f"The run was resumed: {sessions} sessions; times add up over all of them."))
    return join(parts)


def format_seconds(seconds: float) -> str:
    """``h:mm:ss`` wall time.

    Examples
    --------
    >>> format_seconds(3725.4), format_seconds(59.6)
    ('1:02:05', '0:01:00')
    """
    whole = int(round(float(seconds)))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any, digits: int = 4) -> str:
    return fmt_number(float(value), digits) if _finite(value) else "n/a"
