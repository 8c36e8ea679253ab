"""README.md's status table: autounet beside nnU-Net v2, each comparison taken from one session.

A row pairs autounet's record with nnU-Net's record of the same session (machine label and day): the latest session
that has both, else a named fallback session, in which case the nnU-Net cell says what is missing. The "nnU-Net v2"
column holds only nnU-Net's own results; figures that come from elsewhere say where.
"""

from __future__ import annotations

from typing import Any

from records import AUTOUNET, NNUNET, select, session_of
from tables.common import fmt, markdown_table, pick_session, session_text, stale_mark
from tables.speed import step_record
from tables.training import HIPPOCAMPUS_LABELS, short_run_summary

#: Sessions shown while no session has records of both tools (the transcribed headline figures).
FALLBACK = {"hippocampus_budget": ("A", "2026-12-02")}
#: nnU-Net's published Decathlon result for Hippocampus, as autounet/pipeline/published.py holds it.
PUBLISHED_SOURCE = ("Isensee et al. 2018, arXiv:1809.10486, Table 2: MSD test set, five-fold ensemble trained for "
                    "nnU-Net's full schedule on a GPU; published, not measured here")


def _in_session(records: list[dict[str, Any]], session: tuple[str, str] | None, **criteria: Any) -> dict[str, Any] | None:
    found = [r for r in select(records, **criteria) if session_of(r) == session]
    return found[-1] if found else None


def _seconds(record: dict[str, Any] | None, figure: str = "wall_s_min", digits: int = 1) -> str:
    if record is None:
        return "not measured in this session"
    return f"{fmt(record['figures'][figure], digits)} s"


def _timing_row(records: list[dict[str, Any]], label: str, benchmark: str, interface: str, note: str = "") -> list[str]:
    candidates = select(records, benchmark=benchmark, settings__interface=interface)
    session = pick_session(candidates, FALLBACK.get(benchmark))
    ours = _in_session(candidates, session, tool=AUTOUNET)
    theirs = _in_session(candidates, session, tool=NNUNET)
    peer = _seconds(theirs)
    if theirs is not None and "upper bound" in str(theirs["conditions"].get("others_cores", "")):
        peer += " (other jobs ran meanwhile: an upper bound)"
    return [label + note, _seconds(ours), peer, session_text(ours or theirs, with_cpu=True) if (ours or theirs) else "-"]


def _step_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    session = pick_session(select(records, benchmark="train_step"))
    theirs = step_record(records, NNUNET, "float32", session)
    ours32 = step_record(records, AUTOUNET, "float32", session)
    ours16 = step_record(records, AUTOUNET, "bfloat16", session)
    where = session_text(ours32 or ours16 or theirs, with_cpu=True) if (ours32 or ours16 or theirs) else "-"

    def cell(record: dict[str, Any] | None, precision: str) -> str:
        if record is None:
            return "not measured in this session"
        f = record["figures"]
        if f.get("step_s_median") is not None:
            return f"{f['step_s_median']:.2f} s ({precision}, step alone)"
        wait = f.get("wait_s_median")
        waited = f", its batch wait {wait:g} s included" if wait is not None else ", batch wait included"
        return f"{f['iteration_s_median']:.2f} s ({precision}{waited})"

    planned = "one training step of nnU-Net's planned network (batch 7, 40x56x40)"
    return [
        [f"{planned}, equal precision", cell(ours32, "float32"), cell(theirs, "float32"), where],
        [f"{planned}, each tool's default precision (autounet: bfloat16 where the CPU has AVX512-BF16 or AMX, "
         "float32 on AVX2-only CPUs; nnU-Net: float32, autocast on CUDA only)",
         cell(ours16, "bfloat16"), cell(theirs, "float32"), where],
    ]


def _budget_rows(records: list[dict[str, Any]], budget_s: float) -> list[list[str]]:
    """The budgeted fold-0 row of one budget; none while neither tool has a record of it."""
    candidates = select(records, benchmark="hippocampus_budget", settings__budget_s=budget_s)
    if not candidates:
        return []
    session = pick_session(candidates, FALLBACK["hippocampus_budget"])
    ours = _in_session(candidates, session, tool=AUTOUNET)
    theirs = _in_session(candidates, session, tool=NNUNET)

    def cell(record: dict[str, Any] | None, tool: str) -> str:
        if record is None:
            command = (f"benchmarks/peer/train_budget.py --budget-min {budget_s / 60:g}" if tool == NNUNET
                       else f"benchmarks/bench_hippocampus_budget.py --budget {budget_s / 60:g}m")
            return f"not measured in this session (`{command}`)"
        text = " / ".join(fmt(record["figures"]["dice"].get(label)) for label in HIPPOCAMPUS_LABELS)
        return (f"**{text}**" if tool == AUTOUNET else text) + stale_mark(record)

    label = (f"fold 0 trained in **{budget_s / 60:g} minutes** (everything included), Dice anterior / posterior on "
             "the 42 held-back cases")
    return [[label, cell(ours, AUTOUNET), cell(theirs, NNUNET), session_text(ours or theirs, with_cpu=True)]]


def _precision_row(records: list[dict[str, Any]]) -> list[str]:
    every = select(records, benchmark="precision")
    chosen = [r for r in every if session_of(r) == session_of(every[-1])] if every else []  # one session
    by_seed: dict[int, dict[str, float]] = {}
    for r in chosen:
        by_seed.setdefault(r["settings"]["seed"], {})[r["settings"]["precision"]] = r["figures"]["mean_fg_dice"]
    pairs = "; ".join(f"{d.get('bfloat16', float('nan')):.3f} vs {d.get('float32', float('nan')):.3f}"
                      for _, d in sorted(by_seed.items()))
    never_worse = all(d.get("bfloat16", 0) >= d.get("float32", 1) - 0.005 for d in by_seed.values())
    mark = stale_mark(chosen[-1]) if chosen else ""
    iterations = chosen[-1]["figures"]["iterations"] if chosen else "?"
    text = pairs + (" (bfloat16 never the worse)" if never_worse and by_seed else "") + mark
    return [f"bfloat16 against float32 training, same fold, seed and {iterations} iterations ({len(by_seed)} seeds), "
            "mean Dice", text, "", session_text(chosen[-1], with_cpu=True) if chosen else "-"]


def _short_run_rows(records: list[dict[str, Any]], machine: str = "D") -> list[list[str]]:
    rows = []
    for bias, label in (("prior", "output bias at the class prior (autounet's default)"),
                        ("zero", "autounet's trainer with nnU-Net's zero output bias")):
        summary = short_run_summary(records, machine, bias)
        if summary is None:
            continue
        text = f"{summary['mean']:.3f} (lowest {summary['lowest']:.3f})"
        rows.append([f"short run (1000 iterations, 8-wide, batch 2), fold 0 mean Dice over {summary['seeds']} seeds: "
                     f"{label}", f"**{text}**" if bias == "prior" else text + stale_mark(summary["records"][-1]),
                     "", session_text(summary["records"][-1], with_cpu=True)])
    return rows


def _families_row(records: list[dict[str, Any]], machine: str = "D") -> list[str]:
    runs = [r for r in select(records, benchmark="families", settings__dataset="hippocampus", machine__label=machine,
                              settings__output_bias="prior", settings__network_kwargs={})
            if r["figures"].get("mean_fg_dice") is not None]
    if not runs:
        return ["ten U-Net families, same short run", "not measured", "", "-"]
    values = [r["figures"]["mean_fg_dice"] for r in runs]
    families = sorted({r["settings"]["family"] for r in runs})
    return [f"{len(families)} U-Net families ({', '.join(f'`{f}`' for f in families)}), same short run, fold 0 mean "
            "Dice of every run", f"**{min(values):.3f}-{max(values):.3f}**, every family", "offers `unet` and "
            "`resenc` only (not trained here)", session_text(runs[-1], with_cpu=True)]


def _fivefold_row(records: list[dict[str, Any]]) -> list[str]:
    chosen = select(records, benchmark="fivefold", tool=AUTOUNET)
    if not chosen:
        return ["five folds of 3d_fullres", "not measured", "", "-"]
    r = chosen[-1]
    crossval = r["figures"]["crossval_dice"]
    cores = r["settings"].get("cores")
    label = (f"`autounet benchmark`, five folds of 3d_fullres, **{r['settings']['budget_s'] / 60:g} min** for the whole "
             f"task on **{cores} core{'s' if cores != 1 else ''}** ({r['figures'].get('precision', '?')}), "
             f"cross-validation Dice of all {r['figures']['crossval_cases']} cases")
    ours = (f"**{crossval['Anterior']:.3f} / {crossval['Posterior']:.3f}** (mean "
            f"{r['figures']['crossval_mean_fg_dice']:.3f}){stale_mark(r)}")
    return [label, ours, "not run here", session_text(r, with_cpu=True)]


def _published_row() -> list[str]:
    from autounet.pipeline.published import published_dice

    dice = published_dice("Task04_Hippocampus")
    return [f"nnU-Net's published Decathlon result for Hippocampus ({PUBLISHED_SOURCE})", "",
            " / ".join(f"{dice[label]:.2f}" for label in HIPPOCAMPUS_LABELS), "published"]


def status_table(records: list[dict[str, Any]]) -> str:
    """README.md's table: one row per comparison, the session it comes from in the last column."""
    rows = [
        ["plans on the 12 reference fingerprints", "identical (spacing, patch, batch, topology)", "reference",
         "test: `tests/planners/test_reference.py`"],
        _timing_row(records, "fingerprint, 208 cases, CLI (start-up included)", "fingerprint", "cli"),
        _timing_row(records, "fingerprint + plan + preprocess (3d_fullres, 2d), CLI", "preprocess", "cli"),
        *_step_rows(records),
        *_budget_rows(records, 1200.0),
        *_budget_rows(records, 3600.0),
        _precision_row(records),
        *_short_run_rows(records),
        _families_row(records),
        _timing_row(records, "predicting 52 cases, one fold, mirroring, Python API (read to export)", "predict", "api"),
        _fivefold_row(records),
        _published_row(),
    ]
    return markdown_table(["", "autounet", "nnU-Net v2", "session (machine, CPU, day)"], rows)


__all__ = ["status_table"]
