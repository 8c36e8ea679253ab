"""Training-quality tables of docs/benchmarks.md: Hippocampus under a budget, bfloat16 against float32, the output
bias, five folds, and the sweep of the budget planner's constants."""

from __future__ import annotations

import statistics
from typing import Any

from records import AUTOUNET, select, session_of
from tables.common import fmt, markdown_table, measured_at, session_text, sources_line, stale, stale_mark

HIPPOCAMPUS_LABELS = ("Anterior", "Posterior")


def _network_text(figures: dict[str, Any]) -> str:
    features = "-".join(str(f) for f in figures.get("features_per_stage", []))
    patch = "x".join(str(p) for p in figures.get("patch_size", []))
    return f"{features}, batch {figures.get('batch_size', '?')}, patch {patch}"


def _budget_text(settings: dict[str, Any]) -> str:
    if settings.get("budget_s"):
        return f"{settings['budget_s'] / 60:g} min"
    return f"none ({settings.get('total_iterations_fixed', '?')} iterations fixed)"


def budget_table(records: list[dict[str, Any]]) -> str:
    """Every budgeted fold-0 run of either tool: network trained, iterations, Dice on the held-back cases."""
    chosen = sorted(select(records, benchmark="hippocampus_budget"),
                    key=lambda r: (r["settings"].get("budget_s") or 0, session_of(r)[1], session_of(r)[0], r["tool"]))
    rows = []
    for r in chosen:
        f = r["figures"]
        augmentation = f.get("augmentation_scale")
        rows.append([
            session_text(r, with_cpu=True), r["tool"], _budget_text(r["settings"]),
            f"{r['settings'].get('train_cases', '?')} / {r['settings'].get('validation_cases', '?')}",
            _network_text(f), f.get("precision", "-"), f"{f.get('iterations', '?')} ({f.get('epochs', '?')})",
            f"x{augmentation:g}" if augmentation is not None else "nnU-Net's",
            fmt(f.get("training_s"), 0), fmt(f["dice"].get("Anterior")), fmt(f["dice"].get("Posterior")),
            fmt(f.get("mean_fg_dice")), measured_at(r),
        ])
    header = ["session (CPU)", "tool", "budget", "training / held-back cases", "network trained (features, batch, patch)",
              "precision", "iterations (epochs)", "augmentation", "wall s incl. final validation", "Dice Anterior",
              "Dice Posterior", "mean", "measured at"]
    return markdown_table(header, rows) + "\n\n" + sources_line(chosen, ["hippocampus_budget"])


def precision_table(records: list[dict[str, Any]]) -> str:
    """bfloat16 against float32 at equal iterations, one row per (precision, seed)."""
    chosen = sorted(select(records, benchmark="precision"),
                    key=lambda r: (session_of(r), r["settings"]["seed"], r["settings"]["precision"] != "bfloat16"))
    rows = [[r["settings"]["precision"], r["settings"]["seed"], r["figures"]["iterations"],
             fmt(r["figures"]["wall_min"], 1), fmt(r["figures"]["dice"]["Anterior"]),
             fmt(r["figures"]["dice"]["Posterior"]), fmt(r["figures"]["mean_fg_dice"]), measured_at(r)]
            for r in chosen]
    header = ["precision", "seed", "iterations", "wall time (min)", "Dice Anterior", "Dice Posterior", "mean fg Dice",
              "measured at"]
    return markdown_table(header, rows) + "\n\n" + sources_line(chosen, ["precision"])


def _short_run_unet(records: list[dict[str, Any]], machine: str, bias: str) -> dict[int, dict[str, Any]]:
    """``seed -> record`` of the plain ``unet`` short runs on Hippocampus (later records override earlier ones)."""
    runs = {}
    for r in select(records, benchmark="families", machine__label=machine, settings__dataset="hippocampus",
                    settings__family="unet", settings__network_kwargs={}, settings__output_bias=bias):
        if r["figures"].get("iterations") is not None:
            runs[r["settings"]["seed"]] = r
    return runs


def short_run_summary(records: list[dict[str, Any]], machine: str, bias: str) -> dict[str, Any] | None:
    """Mean and lowest mean fg Dice of the ``unet`` short runs of one output bias; None without runs."""
    runs = _short_run_unet(records, machine, bias)
    if not runs:
        return None
    values = [r["figures"]["mean_fg_dice"] for r in runs.values()]
    return {"mean": statistics.mean(values), "lowest": min(values), "seeds": len(values),
            "records": list(runs.values())}


def output_bias_table(records: list[dict[str, Any]], machine: str = "D") -> str:
    """``unet`` on Hippocampus, zero bias against the class prior, per seed (pseudo Dice after the first epoch and
    the final validation)."""
    zero, prior = _short_run_unet(records, machine, "zero"), _short_run_unet(records, machine, "prior")

    def first(record: dict[str, Any] | None) -> str:
        dice = (record or {}).get("figures", {}).get("pseudo_dice_first_epoch")
        return " / ".join(f"{dice[label]:.2f}" for label in HIPPOCAMPUS_LABELS) if dice else "-"

    def final(record: dict[str, Any] | None) -> str:
        if record is None:
            return "-"
        f = record["figures"]
        return f"{f['dice']['Anterior']:.3f} / {f['dice']['Posterior']:.3f} ({f['mean_fg_dice']:.3f})"

    rows = [[seed, first(zero.get(seed)), final(zero.get(seed)), first(prior.get(seed)), final(prior.get(seed))]
            for seed in sorted(set(zero) | set(prior))]
    summary = [short_run_summary(records, machine, bias) for bias in ("zero", "prior")]
    cells = [f"**{s['mean']:.3f} ({s['lowest']:.3f})**" if s else "" for s in summary]
    rows.append(["**mean (lowest)**", "", cells[0], "", cells[1]])
    header = ["seed", "zero bias: after 500 (Ant. / Post.)", "zero bias: final Ant. / Post. (mean)",
              "class prior: after 500", "class prior: final (mean)"]
    used = list(zero.values()) + list(prior.values())
    return markdown_table(header, rows) + "\n\n" + sources_line(used, ["families"])


def fivefold_table(records: list[dict[str, Any]]) -> str:
    """The latest five-fold ``autounet benchmark`` of Hippocampus: iterations and Dice per fold, cross-validation."""
    chosen = select(records, benchmark="fivefold", tool=AUTOUNET)
    if not chosen:
        return "(no five-fold record yet)"
    r = chosen[-1]
    rows = [[fold["fold"], fold["iterations"], fmt(fold["dice"]["Anterior"]), fmt(fold["dice"]["Posterior"])]
            for fold in r["figures"]["folds"]]
    crossval = r["figures"]["crossval_dice"]
    rows.append([f"**cross-validation, {r['figures']['crossval_cases']} cases**{stale_mark(r)}", "",
                 f"**{crossval['Anterior']:.3f}**",
                 f"**{crossval['Posterior']:.3f}** (mean **{r['figures']['crossval_mean_fg_dice']:.3f}**)"])
    header = ["fold", "iterations", "Dice Anterior", "Dice Posterior"]
    return markdown_table(header, rows) + "\n\n" + sources_line([r], ["fivefold"])


def budget_constants_table(records: list[dict[str, Any]]) -> str:
    """The sweep of ``TARGET_ITERATIONS`` and ``FULL_AUGMENTATION_PASSES`` on data other than the headline fold."""
    chosen = sorted(select(records, benchmark="budget_constants"),
                    key=lambda r: (r["settings"]["dataset"], str(r["settings"]["fold"]), r["settings"]["budget_s"],
                                   r["settings"]["target_iterations"], r["settings"]["full_augmentation_passes"]))
    if not chosen:
        return ("(no records yet: `python benchmarks/bench_budget_constants.py` writes them; "
                "see \"Budget planner constants\" above)")
    rows = []
    for r in chosen:
        s, f = r["settings"], r["figures"]
        rows.append([session_text(r, with_cpu=True), s["dataset"], s["fold"], f"{s['budget_s'] / 60:g} min",
                     s["target_iterations"], s["full_augmentation_passes"],
                     "-".join(str(v) for v in f.get("features_per_stage", [])) + f", batch {f.get('batch_size')}",
                     f.get("iterations", "-"), fmt(f.get("augmentation_scale")),
                     " / ".join(f"{k} {v:.3f}" for k, v in (f.get("dice") or {}).items()), fmt(f.get("mean_fg_dice")),
                     "yes" if s.get("defaults") else ""])
    header = ["session (CPU)", "dataset", "fold", "budget", "TARGET_ITERATIONS", "FULL_AUGMENTATION_PASSES",
              "network chosen", "iterations", "augmentation scale", "Dice per label", "mean fg Dice", "defaults"]
    return markdown_table(header, rows) + "\n\n" + sources_line(chosen, ["budget_constants"])


__all__ = ["budget_constants_table", "budget_table", "fivefold_table", "output_bias_table", "precision_table",
           "short_run_summary", "stale"]
