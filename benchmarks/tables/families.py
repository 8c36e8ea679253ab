"""Network-family tables of docs/benchmarks.md: one row per (family, options, output bias, seed), then per family.

A ``--measure-only`` record of ``benchmarks/bench_families.py`` (parameters, step time and memory on a quiet core)
gives those figures to every training record of its family on the same machine, whose Dice it keeps.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from records import select
from tables.common import markdown_table, measured_at, sources_line, stale

#: Families in the order of the tables: nnU-Net's two first (as in benchmarks/bench_families.py).
FAMILY_ORDER = ("unet", "resenc", "resunet", "attention", "unetpp", "r2unet", "denseunet", "multires", "dilated", "vnet")
#: Figures a measure-only record gives the training records of its family.
MEASURED = ("parameters_m", "step_s", "peak_memory_mib", "estimate_vs_unet")


def family_label(settings: dict[str, Any]) -> str:
    """``resunet zero_init_residual=true``: the family with its options (``key=value``, value as JSON, sorted)."""
    options = [f"{key}={json.dumps(value)}" for key, value in sorted((settings.get("network_kwargs") or {}).items())]
    return " ".join([settings["family"], *options])


def _rows(records: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """``(label, output bias, seed) -> record`` with the figures of the family's measure-only record merged in."""
    runs: dict[tuple[str, str, int], dict[str, Any]] = {}
    measured: dict[str, dict[str, Any]] = {}
    for record in records:  # oldest first: later records override
        settings = record["settings"]
        if settings.get("measure_only"):
            measured[family_label(settings)] = {k: record["figures"][k] for k in MEASURED if k in record["figures"]}
        else:
            key = (family_label(settings), settings.get("output_bias", "zero"), int(settings.get("seed", 0)))
            runs[key] = {**record, "figures": dict(record["figures"])}
    for label, values in measured.items():
        # A measurement of the plain family applies to its variants with options too (their step costs the same).
        for (run_label, _, _), run in runs.items():
            if label in (run_label, run["settings"]["family"]):
                run["figures"].update(values)
    order = {name: index for index, name in enumerate(FAMILY_ORDER)}
    return dict(sorted(runs.items(), key=lambda item: (order.get(item[1]["settings"]["family"], 99), *item[0])))


def _number(value: Any, digits: int | None = None) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" if digits is not None else str(value)


def families_table(
    records: list[dict[str, Any]],
    *,
    dataset: str,
    machine: str,
    labels: tuple[str, ...],
    columns: str = "bias_seed",
    summary: str = "mean_lowest",
) -> str:
    """The family table of one dataset and machine, and the per-family summary.

    Parameters
    ----------
    records : list of dict
        Every record; those of benchmark ``families`` for ``dataset`` on ``machine`` are used.
    dataset : {"hippocampus", "drive"}
    machine : str
        Machine label of the session(s) shown.
    labels : tuple of str
        Foreground label names, one Dice column each.
    columns : {"bias_seed", "seed", "plain"}
        Which of the output-bias and seed columns the table has (the history tables predate them).
    summary : {"mean_lowest", "mean", "none"}
        The per-family table under the runs: with the lowest run, without, or none.
    """
    chosen = select(records, benchmark="families", settings__dataset=dataset, machine__label=machine)
    runs = _rows(chosen)
    old = any(stale(r) for r in runs.values())
    header = ["family", *(["output bias"] if columns == "bias_seed" else []),
              *(["seed"] if columns in ("bias_seed", "seed") else []),
              "parameters", "step (s)", "peak memory (MiB)", "estimate vs unet", "iterations", "fold wall time (min)",
              *[f"Dice {label}" for label in labels], "mean fg Dice", *(["measured at"] if old else [])]
    rows = []
    for (label, bias, seed), run in runs.items():
        f = run["figures"]
        rows.append([
            f"`{label}`", *([bias] if columns == "bias_seed" else []), *([seed] if columns in ("bias_seed", "seed") else []),
            f"{f['parameters_m']:.2f} M" if f.get("parameters_m") is not None else "", _number(f.get("step_s")),
            _number(f.get("peak_memory_mib")), _number(f.get("estimate_vs_unet"), 2), _number(f.get("iterations")),
            _number(f.get("fold_min"), 1), *[_number((f.get("dice") or {}).get(label), 3) for label in labels],
            _number(f.get("mean_fg_dice"), 3) or run.get("note", ""), *([measured_at(run)] if old else []),
        ])
    parts = [markdown_table(header, rows)]
    if summary != "none":
        parts.append(_summary(runs, columns, summary))
    parts.append(sources_line(chosen, ["families"]))
    return "\n\n".join(parts)


def _summary(runs: dict[tuple[str, str, int], dict[str, Any]], columns: str, summary: str) -> str:
    scores: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for (label, bias, seed), run in runs.items():
        if run["figures"].get("mean_fg_dice") is not None:
            scores.setdefault((label, bias), []).append((seed, run["figures"]["mean_fg_dice"]))
    with_bias = columns == "bias_seed"
    header = ["family", *(["output bias"] if with_bias else []), "mean fg Dice per seed", "mean over seeds",
              *(["lowest"] if summary == "mean_lowest" else [])]
    rows = []
    for (label, bias), values in scores.items():
        dice = [value for _, value in values]
        rows.append([f"`{label}`", *([bias] if with_bias else []),
                     ", ".join(f"{value:.3f} (seed {seed})" for seed, value in values), f"{statistics.mean(dice):.3f}",
                     *([f"{min(dice):.3f}"] if summary == "mean_lowest" else [])])
    return markdown_table(header, rows)


__all__ = ["FAMILY_ORDER", "families_table", "family_label"]
