"""What ``autounet check`` found: one :class:`Problem` per finding, collected in a :class:`CheckReport`."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from autounet.jsonio import write_json
from autounet.typing import PathType

Severity = Literal["error", "warning"]

#: Problems that are not about one case (dataset.json, numTraining, 2D/3D mix) are grouped under this heading.
DATASET_LEVEL = "dataset"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset.

    Parameters
    ----------
    severity : {"error", "warning"}
        Errors make later stages fail or give wrong results; warnings deserve a look but do not stop anything.
    case_id : str or None
        The case the problem belongs to; None for dataset-level problems (``dataset.json``, ``numTraining``).
    files : tuple of str
        The file(s) involved, absolute paths.
    message : str
        What is wrong: what was expected and what was found.
    fix : str
        One line saying what to do about it.
    kind : str
        Stable machine-readable name of the check, e.g. ``"missing_label"`` (see ``docs/user_guide.md``).
    """

    severity: Severity
    case_id: str | None
    files: tuple[str, ...]
    message: str
    fix: str
    kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = list(self.files)
        return data


@dataclass
class CheckReport:
    """Every problem found in one dataset, plus a summary of what the dataset holds.

    Attributes
    ----------
    root : Path
        The dataset folder.
    problems : list of Problem
        In the order found: dataset-level problems first, then per case.
    summary : dict
        Cases, channels, labels, dimensionality, spacing and shape ranges (empty if the dataset did not load).
    """

    root: Path
    problems: list[Problem] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def kinds(self) -> set[str]:
        """The distinct ``Problem.kind`` values found."""
        return {p.kind for p in self.problems}

    def for_case(self, case_id: str | None) -> list[Problem]:
        return [p for p in self.problems if p.case_id == case_id]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": str(self.root),
            "ok": self.ok,
            "num_errors": len(self.errors),
            "num_warnings": len(self.warnings),
            "summary": self.summary,
            "problems": [p.to_dict() for p in self.problems],
        }

    def save(self, path: PathType) -> None:
        """Write :meth:`to_dict` as JSON (atomically)."""
        write_json(path, self.to_dict())

    def format(self) -> str:
        """Text for people: a summary, then the problems grouped by case, each with its fix."""
        lines = [f"{self.root}: " + ("OK" if not self.problems else _count_text(self))]
        lines += ["  " + line for line in format_summary(self.summary)]
        groups: dict[str | None, list[Problem]] = {}
        for problem in self.problems:
            groups.setdefault(problem.case_id, []).append(problem)
        for case_id, problems in groups.items():
            lines.append("")
            lines.append(DATASET_LEVEL if case_id is None else f"case {case_id}")
            for problem in problems:
                lines.append(f"  {problem.severity}: {problem.message}")
                if problem.files:
                    lines.append(f"      files: {', '.join(_display_path(f, self.root) for f in problem.files)}")
                lines.append(f"      fix: {problem.fix}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _count_text(report: CheckReport) -> str:
    errors, warnings = len(report.errors), len(report.warnings)
    cases = {p.case_id for p in report.problems if p.case_id is not None}
    where = f" in {len(cases)} case(s)" if cases else ""
    return f"{errors} error(s), {warnings} warning(s){where}"


def _display_path(path: str, root: Path) -> str:
    """``path`` relative to the dataset folder when it lies inside it."""
    try:
        relative = os.path.relpath(path, root)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith("..") else relative


def format_summary(summary: dict[str, Any]) -> list[str]:
    """Short description of a dataset from :attr:`CheckReport.summary`: cases, channels, labels, spacing.

    Examples
    --------
    >>> format_summary({"layout": "msd", "num_training": 2, "num_test": 0, "dimensionality": "3D",
    ...                 "channel_names": ["MRI"], "labels": {"background": 0, "a": 1},
    ...                 "spacing_min": [1, 1, 1], "spacing_max": [1, 2, 1],
    ...                 "shape_min": [30, 40, 30], "shape_max": [35, 50, 36]})
    ['2 training case(s), 0 test case(s), msd layout, 3D, 1 channel(s): MRI', 'labels: 0 background, 1 a', 'spacing (z, y, x) mm: 1, 1..2, 1', 'shape (z, y, x): 30..35 x 40..50 x 30..36']
    """
    if not summary:
        return []
    lines = [
        f"{summary['num_training']} training case(s), {summary['num_test']} test case(s), {summary['layout']} layout, "
        f"{summary['dimensionality']}, {len(summary['channel_names'])} channel(s): {', '.join(summary['channel_names'])}",
        "labels: " + ", ".join(f"{value} {name}" for name, value in sorted(summary["labels"].items(), key=lambda kv: kv[1])),
    ]
    if summary.get("regions"):
        lines.append("regions: " + ", ".join(f"{name} = {values}" for name, values in summary["regions"].items()))
    if summary.get("spacing_min"):
        first = 1 if summary["dimensionality"] == "2D" else 0  # 2D: skip the placeholder axis
        axes = "(y, x)" if first else "(z, y, x)"
        ranges = [_range_text(lo, hi) for lo, hi in zip(summary["spacing_min"][first:], summary["spacing_max"][first:])]
        lines.append(f"spacing {axes} mm: " + ", ".join(ranges))
        shapes = [_range_text(lo, hi) for lo, hi in zip(summary["shape_min"][first:], summary["shape_max"][first:])]
        lines.append(f"shape {axes}: " + " x ".join(shapes))
    return lines


def _range_text(low: float, high: float) -> str:
    return f"{low:g}" if low == high else f"{low:g}..{high:g}"
