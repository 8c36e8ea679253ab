"""Speed tables of docs/benchmarks.md: evaluation, fingerprint, preprocessing, prediction, training step.

Rows are grouped by session (machine label and day); a ratio to nnU-Net is only computed against nnU-Net's record of
the same session through the same interface (CLI against CLI, Python API against Python API).
"""

from __future__ import annotations

from typing import Any

from records import AUTOUNET, NNUNET, select, session_of
from tables.common import (
    INTERFACES,
    cpu_text,
    fmt,
    fmt_pair,
    latest,
    markdown_table,
    ratio,
    session_text,
    sources_line,
)


def _peer(records: list[dict[str, Any]], record: dict[str, Any], **criteria: Any) -> dict[str, Any] | None:
    """nnU-Net's latest record of the same session as ``record`` matching ``criteria``."""
    found = [r for r in select(records, tool=NNUNET, **criteria) if session_of(r) == session_of(record)]
    return found[-1] if found else None


def _ordered(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Oldest session first; within one, autounet before nnU-Net, CLI before API."""
    return sorted(records, key=lambda r: (session_of(r)[1], session_of(r)[0], r["tool"] != AUTOUNET,
                                          r["settings"].get("interface") != "cli"))


def _vs_peer(records: list[dict[str, Any]], record: dict[str, Any], figure: str = "wall_s_min") -> str:
    interface = record["settings"].get("interface")
    if record["tool"] != AUTOUNET:  # the reference, when an autounet record of its session and interface exists
        ours = [r for r in select(records, tool=AUTOUNET, settings__interface=interface)
                if session_of(r) == session_of(record)]
        return "1" if ours else "-"
    peer = _peer(records, record, settings__interface=record["settings"].get("interface"))
    return ratio(record["figures"].get(figure), peer["figures"].get(figure) if peer else None)


def evaluation_table(records: list[dict[str, Any]]) -> str:
    """``autounet evaluate`` against ``nnUNetv2_evaluate_simple`` on the 208 Hippocampus label files."""
    chosen = _ordered(select(records, benchmark="evaluate"))
    rows = [[session_text(r), r["tool"], INTERFACES[r["settings"]["interface"]], r["settings"].get("metrics", "-"),
             r["settings"].get("workers", "-"), fmt_pair(r["figures"]["wall_s_min"], r["figures"]["wall_s_median"]),
             r["figures"].get("repeats", "-"), _vs_peer(chosen, r)] for r in chosen]
    header = ["session", "tool", "interface", "metrics", "workers", "seconds (min / median)", "repeats",
              "vs nnU-Net, same interface"]
    return markdown_table(header, rows) + "\n\n" + sources_line(chosen, ["evaluate"])


def fingerprint_table(records: list[dict[str, Any]]) -> str:
    """Fingerprint of the 208 Hippocampus cases, autounet against ``nnUNetv2_extract_fingerprint``."""
    chosen = _ordered(select(records, benchmark="fingerprint"))
    rows = [[session_text(r), r["tool"], INTERFACES[r["settings"]["interface"]], r["settings"].get("workers", "-"),
             fmt_pair(r["figures"]["wall_s_min"], r["figures"]["wall_s_median"]), r["figures"].get("repeats", "-"),
             _vs_peer(chosen, r)] for r in chosen]
    header = ["session", "tool", "interface", "workers", "wall s (min / median)", "repeats", "vs nnU-Net, same interface"]
    return markdown_table(header, rows) + "\n\n" + sources_line(chosen, ["fingerprint"])


def preprocess_table(records: list[dict[str, Any]]) -> str:
    """Fingerprint + plan + preprocess (3d_fullres, 2d) against ``nnUNetv2_plan_and_preprocess``."""
    chosen = _ordered(select(records, benchmark="preprocess"))
    rows = []
    for r in chosen:
        parts = r["figures"].get("parts_s")
        wall = fmt_pair(r["figures"]["wall_s_min"], r["figures"]["wall_s_median"])
        if parts:
            wall += " (" + ", ".join(f"{name} {seconds:g}" for name, seconds in parts.items()) + ")"
        rows.append([session_text(r), r["tool"], INTERFACES[r["settings"]["interface"]], wall,
                     fmt(r["figures"].get("cpu_s_median"), 1), "yes" if r["settings"].get("interleaved") else "no",
                     _vs_peer(chosen, r)])
    header = ["session", "tool", "interface", "wall s (min / median)", "CPU s of the process tree (median)",
              "runs interleaved", "vs nnU-Net, same session"]
    return markdown_table(header, rows) + "\n\n" + sources_line(chosen, ["preprocess"])


def predict_table(records: list[dict[str, Any]]) -> str:
    """Predicting 52 Hippocampus cases with one fold, mirroring, read to export."""
    chosen = _ordered(select(records, benchmark="predict"))
    rows = [[session_text(r), r["settings"].get("description", r["tool"]), INTERFACES[r["settings"]["interface"]],
             r["settings"].get("precision", "-"), fmt_pair(r["figures"]["wall_s_min"], r["figures"]["wall_s_median"], 1),
             fmt(r["figures"].get("per_case_s"), 2), r["conditions"].get("others_cores", "-"), _vs_peer(chosen, r)]
            for r in chosen]
    header = ["session", "tool", "interface", "precision", "wall s for 52 cases (min / median)", "s per case",
              "others' cores", "vs nnU-Net, same session and interface"]
    return markdown_table(header, rows) + "\n\n" + sources_line(chosen, ["predict"])


def _step_cells(record: dict[str, Any]) -> tuple[str, str]:
    figures = record["figures"]
    return fmt(figures.get("step_s_median"), 2), fmt(figures.get("iteration_s_median"), 2)


def _step_ratio(record: dict[str, Any], peer: dict[str, Any] | None) -> str:
    """Ours against nnU-Net's float32 figure of the same session: data excluded against excluded, included against
    included; where nnU-Net only has the iteration, against that with its batch wait said."""
    if peer is None:
        return "-"
    ours, theirs = record["figures"], peer["figures"]
    for key in ("step_s_median", "iteration_s_median"):
        if ours.get(key) is not None and theirs.get(key) is not None:
            return ratio(ours[key], theirs[key])
    if ours.get("step_s_median") is not None and theirs.get("iteration_s_median") is not None:
        wait = theirs.get("wait_s_median")
        said = f"; its median batch wait {wait:g} s" if wait is not None else ""
        return f"{ratio(ours['step_s_median'], theirs['iteration_s_median'])} (against nnU-Net's iteration{said})"
    return "-"


def train_step_table(records: list[dict[str, Any]]) -> str:
    """One training step of nnU-Net's planned Hippocampus 3d_fullres network, both tools, per precision."""
    chosen = _ordered(select(records, benchmark="train_step"))
    rows = []
    for r in sorted(chosen, key=lambda r: (session_of(r)[1], session_of(r)[0], r["tool"] != NNUNET,
                                            r["settings"].get("precision") != "float32")):
        peer = _peer(chosen, r, settings__precision="float32")
        step, iteration = _step_cells(r)
        rows.append([session_text(r), cpu_text(r["machine"]), r["settings"].get("description", r["tool"]),
                     r["settings"]["precision"], step, iteration,
                     "1" if r["tool"] == NNUNET and r["settings"]["precision"] == "float32" else _step_ratio(r, peer)])
    header = ["session", "CPU", "tool", "precision", "s per step, data pipeline excluded (median)",
              "s per iteration, data pipeline included (median)", "vs nnU-Net float32, same session"]
    return markdown_table(header, rows) + "\n\n" + sources_line(chosen, ["train_step"])


def step_record(records: list[dict[str, Any]], tool: str, precision: str, session: tuple[str, str]) -> dict[str, Any] | None:
    """The latest training-step record of ``tool`` at ``precision`` in ``session`` (README status table)."""
    found = [r for r in select(records, benchmark="train_step", tool=tool, settings__precision=precision)
             if session_of(r) == session]
    return found[-1] if found else None


__all__ = ["evaluation_table", "fingerprint_table", "latest", "predict_table", "preprocess_table", "step_record",
           "train_step_table"]
