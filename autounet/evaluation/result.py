"""The result of an evaluation: per-case metrics, statistics per label, and their JSON/CSV files."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from autounet import __version__
from autounet.evaluation.metrics import METRIC_NAMES, METRIC_UNITS
from autounet.jsonio import atomic_path, read_json, write_json
from autounet.layout import SUMMARY_FILE
from autounet.typing import PathType

#: Statistics over cases reported per label; ``count`` is the number of cases where the metric is defined.
STATISTICS = ("mean", "median", "std", "count")

PER_CASE_CSV = "metrics_per_case.csv"
MEAN_CSV = "metrics_mean.csv"

#: Version of the summary.json layout; bump when keys change meaning.
SUMMARY_VERSION = 1

Metrics = dict[str, float]
"""One label's metrics: metric name -> value."""


@dataclass(frozen=True)
class CaseResult:
    """Metrics of one case.

    Parameters
    ----------
    case_id : str
        File name without extension (or the identifier given to :func:`evaluate_cases`).
    metrics : dict of str to dict of str to float
        ``{label: {metric: value}}`` for every evaluated label value (as a string) and region name.
    reference_file, prediction_file : str
        Where the arrays came from (empty for arrays in memory; prediction empty when it was missing).
    note : str
        Anything a reader must know, e.g. that a missing prediction was scored as empty.
    """

    case_id: str
    metrics: dict[str, Metrics]
    reference_file: str = ""
    prediction_file: str = ""
    note: str = ""


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics of every case, with statistics per label over cases.

    Parameters
    ----------
    labels : tuple of str
        Evaluated label values (as strings, e.g. ``"1"``) followed by region names.
    cases : tuple of CaseResult
        The cases that could be evaluated, sorted by ``case_id``.
    nsd_tolerance_mm : float
        Tolerance used for the normalized surface Dice.
    missing_predictions : tuple of str
        Reference cases without a prediction (scored as empty predictions when allowed).
    unmatched_predictions : tuple of str
        Prediction files without a reference; not evaluated.
    failures : dict of str to str
        Case id -> why it could not be evaluated (unreadable file, shape mismatch, ...). Not in the statistics.
    warnings : dict of str to str
        Case id -> something suspicious that did not stop the evaluation (e.g. different geometry).

    Notes
    -----
    Statistics skip NaN values (e.g. Dice of a case where reference and prediction are both empty);
    ``count`` says how many cases went into each. ``foreground_mean`` is the mean over labels and
    regions of the per-label means, as in nnU-Net's ``summary.json``.
    """

    labels: tuple[str, ...]
    cases: tuple[CaseResult, ...]
    nsd_tolerance_mm: float
    missing_predictions: tuple[str, ...] = ()
    unmatched_predictions: tuple[str, ...] = ()
    failures: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)
    reference_dir: str = ""
    prediction_dir: str = ""

    def values(self, label: str, metric: str) -> np.ndarray:
        """The metric of one label over all cases (NaN where undefined), in case order."""
        return np.array([float(case.metrics[label][metric]) for case in self.cases], dtype=np.float64)

    def statistic(self, name: str) -> dict[str, Metrics]:
        """``{label: {metric: value}}`` for ``name`` in :data:`STATISTICS`, NaN values skipped."""
        if name not in STATISTICS:
            raise ValueError(f"unknown statistic {name!r}; use one of {', '.join(STATISTICS)}")
        return {label: {m: _statistic(name, self.values(label, m)) for m in METRIC_NAMES} for label in self.labels}

    @property
    def mean(self) -> dict[str, Metrics]:
        return self.statistic("mean")

    @property
    def foreground_mean(self) -> Metrics:
        """Mean over labels (and regions) of each label's mean, labels with an undefined mean skipped."""
        means = self.mean
        return {m: _statistic("mean", np.array([means[label][m] for label in self.labels])) for m in METRIC_NAMES}

    def to_dict(self) -> dict[str, Any]:
        """The content of ``summary.json`` (NaN written as ``null``)."""
        data: dict[str, Any] = {
            "summary_version": SUMMARY_VERSION,
            "autounet_version": __version__,
            "reference_dir": self.reference_dir,
            "prediction_dir": self.prediction_dir,
            "nsd_tolerance_mm": self.nsd_tolerance_mm,
            "labels": list(self.labels),
            "units": dict(METRIC_UNITS),
            "num_cases": len(self.cases),
            "foreground_mean": self.foreground_mean,
        }
        for name in STATISTICS:
            data[name] = self.statistic(name)
        data["metric_per_case"] = [
            {
                "case_id": case.case_id,
                "reference_file": case.reference_file,
                "prediction_file": case.prediction_file,
                "note": case.note,
                "metrics": case.metrics,
            }
            for case in self.cases
        ]
        data["missing_predictions"] = list(self.missing_predictions)
        data["unmatched_predictions"] = list(self.unmatched_predictions)
        data["failed_cases"] = dict(self.failures)
        data["warnings"] = dict(self.warnings)
        return _nan_to_none(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EvaluationResult":
        """Rebuild a result from the content of ``summary.json`` (``null`` read back as NaN)."""
        cases = tuple(
            CaseResult(
                case_id=str(entry["case_id"]),
                metrics={
                    label: {m: math.nan if v is None else v for m, v in metrics.items()}
                    for label, metrics in entry["metrics"].items()
                },
                reference_file=str(entry.get("reference_file", "")),
                prediction_file=str(entry.get("prediction_file", "")),
                note=str(entry.get("note", "")),
            )
            for entry in data["metric_per_case"]
        )
        return cls(
            labels=tuple(str(label) for label in data["labels"]),
            cases=cases,
            nsd_tolerance_mm=float(data["nsd_tolerance_mm"]),
            missing_predictions=tuple(data.get("missing_predictions", ())),
            unmatched_predictions=tuple(data.get("unmatched_predictions", ())),
            failures=dict(data.get("failed_cases", {})),
            warnings=dict(data.get("warnings", {})),
            reference_dir=str(data.get("reference_dir", "")),
            prediction_dir=str(data.get("prediction_dir", "")),
        )

    def save(self, output: PathType) -> dict[str, Path]:
        """Write ``summary.json``, ``metrics_per_case.csv`` and ``metrics_mean.csv`` (atomically).

        Parameters
        ----------
        output : str or Path
            A folder (created if needed), or a path ending in ``.json`` to name the summary file; the
            CSV files go into the same folder.

        Returns
        -------
        dict of str to Path
            ``{"summary": ..., "per_case": ..., "mean": ...}``.
        """
        output = Path(output)
        folder, summary = (output.parent, output) if output.suffix.lower() == ".json" else (output, output / SUMMARY_FILE)
        paths = {"summary": summary, "per_case": folder / PER_CASE_CSV, "mean": folder / MEAN_CSV}
        write_json(paths["summary"], self.to_dict())
        per_case_rows = [
            [case.case_id, label, *(case.metrics[label][m] for m in METRIC_NAMES), case.reference_file,
             case.prediction_file, case.note]
            for case in self.cases
            for label in self.labels
        ]
        _write_csv(paths["per_case"], ["case_id", "label", *METRIC_NAMES, "reference_file", "prediction_file", "note"], per_case_rows)
        mean_rows = [
            [label, name, *(stats[label][m] for m in METRIC_NAMES)]
            for name, stats in ((name, self.statistic(name)) for name in STATISTICS)
            for label in self.labels
        ]
        mean_rows.sort(key=lambda row: self.labels.index(row[0]))
        foreground = self.foreground_mean
        mean_rows.append(["foreground_mean", "mean", *(foreground[m] for m in METRIC_NAMES)])
        _write_csv(paths["mean"], ["label", "statistic", *METRIC_NAMES], mean_rows)
        return paths


def load_summary(path: PathType) -> EvaluationResult:
    """Read a ``summary.json`` written by :meth:`EvaluationResult.save` (or a folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no evaluation summary here; run \"autounet evaluate\" first")
    data = read_json(path)
    if not isinstance(data, dict) or "metric_per_case" not in data or "labels" not in data:
        raise ValueError(f"{path}: not an autounet evaluation summary (no 'labels'/'metric_per_case'); re-run the evaluation")
    return EvaluationResult.from_dict(data)


def format_table(result: EvaluationResult, metrics: tuple[str, ...] = ("Dice", "HD95", "NSD")) -> str:
    """A small text table: mean of ``metrics`` per label and over labels.

    Examples
    --------
    >>> case = CaseResult("a", {"1": {m: 1.0 for m in METRIC_NAMES}})
    >>> print(format_table(EvaluationResult(("1",), (case,), 1.0), ("Dice",)))
    label                Dice
    1                  1.0000
    foreground mean    1.0000
    """
    means = result.mean
    rows = [(label, [means[label][m] for m in metrics]) for label in result.labels]
    rows.append(("foreground mean", [result.foreground_mean[m] for m in metrics]))
    width = max([len("label")] + [len(name) for name, _ in rows])
    lines = ["label".ljust(width) + "".join(f"{m:>10}" for m in metrics)]
    lines += [name.ljust(width) + "".join(f"{v:>10.4f}" for v in values) for name, values in rows]
    return "\n".join(lines)


def _statistic(name: str, values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    if name == "count":
        return int(defined.size)
    if defined.size == 0:
        return math.nan
    return float({"mean": np.mean, "median": np.median, "std": np.std}[name](defined))


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return None
    return value


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
