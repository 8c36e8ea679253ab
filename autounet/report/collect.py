"""Gather what a results folder holds into one :class:`ReportData`, tolerating every file that is missing or broken.

Nothing here draws or formats. A file that does not exist yet leaves its field empty (the page then says "not
available yet"); a file that exists but cannot be read is recorded in ``problems`` with the reason.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autounet.jsonio import read_json
from autounet.layout import (
    CROSSVAL_FOLDER,
    DATASET_FILE,
    FINGERPRINT_FILE,
    FOLD_FOLDER_PREFIX,
    FOLD_SUMMARY_FILE,
    INFERENCE_FILE,
    PLANS_FILE,
    POSTPROCESSING_FILE,
    RUN_LOG_FILE,
    SUMMARY_FILE,
    TRAINING_LOG_FILE,
    VALIDATION_FOLDER,
    ResultsLayout,
)
from autounet.preprocessing.store import MANIFEST_NAME
from autounet.typing import PathType

if TYPE_CHECKING:
    from autounet.evaluation import EvaluationResult
    from autounet.fingerprint import Fingerprint
    from autounet.planners.plans import Plans

logger = logging.getLogger(__name__)

_FOLD_FOLDER = re.compile(rf"^{FOLD_FOLDER_PREFIX}(\d+|all)$")


@dataclass(frozen=True)
class FoldRun:
    """One trained (or training) fold: its log, its final-validation note and its validation scores."""

    configuration: str
    fold: str
    folder: Path
    header: dict[str, Any]
    epochs: list[dict[str, Any]]
    fold_summary: dict[str, Any] | None
    validation: EvaluationResult | None


@dataclass(frozen=True)
class CaseScore:
    """Dice of one validation case (label key -> Dice, NaN where undefined) and where its prediction lies."""

    configuration: str
    fold: str
    case_id: str
    dice: dict[str, float]
    prediction_dir: Path

    @property
    def mean_dice(self) -> float:
        """Mean foreground Dice over the labels where it is defined (NaN if none is)."""
        values = [v for v in self.dice.values() if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan


@dataclass
class ReportData:
    """Everything the report shows; ``None`` or empty means "not available yet"."""

    results_dir: Path
    dataset_json: dict[str, Any] | None = None
    fingerprint: Fingerprint | None = None
    plans: Plans | None = None
    folds: list[FoldRun] = field(default_factory=list)
    crossval: dict[str, EvaluationResult] = field(default_factory=dict)  # configuration -> its crossval/ summary
    inference: dict[str, Any] | None = None
    postprocessing: dict[str, Any] | None = None
    run_log: dict[str, Any] | None = None
    dataset_root: Path | None = None
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def dataset_name(self) -> str:
        if self.fingerprint is not None and self.fingerprint.dataset_name:
            return self.fingerprint.dataset_name
        if self.plans is not None and self.plans.dataset_name:
            return self.plans.dataset_name
        if self.dataset_json and self.dataset_json.get("name"):
            return str(self.dataset_json["name"])
        return self.results_dir.resolve().name

    @property
    def label_names(self) -> dict[str, str]:
        """Label value as a string (as evaluation summaries key them) -> label name."""
        labels: dict[str, Any] = {}
        if self.plans is not None:
            labels = dict(self.plans.labels)
        elif self.fingerprint is not None:
            labels = dict(self.fingerprint.labels)
        elif self.dataset_json and isinstance(self.dataset_json.get("labels"), dict):
            raw = self.dataset_json["labels"]
            # MSD: {"0": "background"}; nnU-Net v2: {"background": 0}
            labels = {v: k for k, v in raw.items()} if all(str(k).isdigit() for k in raw) else raw
        return {str(value): str(name) for name, value in labels.items() if not isinstance(value, (list, tuple))}

    @property
    def configurations(self) -> list[str]:
        """Planned configurations first (plans order), then any other folder with trained folds."""
        names = list(self.plans.configurations) if self.plans is not None else []
        names += sorted({f.configuration for f in self.folds} - set(names))
        return names

    def folds_of(self, configuration: str) -> list[FoldRun]:
        return [f for f in self.folds if f.configuration == configuration]

    def case_scores(self, configuration: str) -> list[CaseScore]:
        """Validation Dice per case of a configuration: every fold's final validation, else its ``crossval/``."""
        scores = []
        for run in self.folds_of(configuration):
            if run.validation is not None:
                folder = run.folder / VALIDATION_FOLDER
                scores += [_case_score(configuration, run.fold, case, folder) for case in run.validation.cases]
        if not scores and configuration in self.crossval:
            folder = self.results_dir / configuration / CROSSVAL_FOLDER
            scores = [_case_score(configuration, "crossval", case, folder) for case in self.crossval[configuration].cases]
        return scores


def _case_score(configuration: str, fold: str, case: Any, folder: Path) -> CaseScore:
    dice = {label: float(metrics.get("Dice", math.nan)) for label, metrics in case.metrics.items()}
    return CaseScore(configuration, fold, case.case_id, dice, folder)


def collect_report_data(results_dir: PathType) -> ReportData:
    """Read every file of a results folder that the report shows.

    Parameters
    ----------
    results_dir : str or Path
        ``RESULTS/<dataset>`` (docs/architecture.md). Any subset of its files may exist.

    Returns
    -------
    ReportData

    Raises
    ------
    FileNotFoundError
        If ``results_dir`` is not a folder.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: results folder not found; pass the folder \"autounet train\" wrote")
    data = ReportData(results_dir=results_dir)
    data.dataset_json = _read(data, DATASET_FILE, lambda p: _json_object(p))
    data.fingerprint = _read(data, FINGERPRINT_FILE, _load_fingerprint)
    data.plans = _read(data, PLANS_FILE, _load_plans)
    data.inference = _read(data, INFERENCE_FILE, _json_object)
    data.postprocessing = _read(data, POSTPROCESSING_FILE, _json_object)
    data.run_log = _read(data, RUN_LOG_FILE, _json_object)
    data.folds = _collect_folds(data)
    for configuration in data.configurations:
        summary = results_dir / configuration / CROSSVAL_FOLDER / SUMMARY_FILE
        result = _read(data, str(summary.relative_to(results_dir)), _load_summary)
        if result is not None:
            data.crossval[configuration] = result
    data.dataset_root = find_dataset_root(data)
    return data


def _read(data: ReportData, relative: str, loader: Any) -> Any:
    path = data.results_dir / relative
    if not path.is_file():
        return None
    try:
        return loader(path)
    except Exception as err:  # a broken file must not stop the report; it says what is wrong instead
        logger.warning("report: cannot read %s: %s", path, err)
        data.problems[relative] = f"{type(err).__name__}: {err}"
        return None


def _json_object(path: Path) -> dict[str, Any]:
    value = read_json(path)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, found {type(value).__name__}")
    return value


def _load_fingerprint(path: Path) -> Any:
    from autounet.fingerprint import load_fingerprint

    dataset_json = path.parent / DATASET_FILE
    return load_fingerprint(path, dataset_json if dataset_json.is_file() else None)


def _load_plans(path: Path) -> Any:
    from autounet.planners.plans import load_plans

    return load_plans(path)


def _load_summary(path: Path) -> Any:
    from autounet.evaluation import load_summary

    return load_summary(path)


def _fold_sort_key(name: str) -> tuple[int, str]:
    number = name.split("_", 1)[1]
    return (int(number), "") if number.isdigit() else (1 << 30, number)


def _collect_folds(data: ReportData) -> list[FoldRun]:
    names = list(data.plans.configurations) if data.plans is not None else []
    names += sorted(p.name for p in data.results_dir.iterdir() if p.is_dir() and p.name not in names)
    runs = []
    for configuration in names:
        folder = data.results_dir / configuration
        if not folder.is_dir():
            continue
        fold_dirs = [p for p in folder.iterdir() if p.is_dir() and _FOLD_FOLDER.match(p.name)]
        for fold_dir in sorted(fold_dirs, key=lambda p: _fold_sort_key(p.name)):
            runs.append(_collect_fold(data, configuration, fold_dir))
    return runs


def _collect_fold(data: ReportData, configuration: str, fold_dir: Path) -> FoldRun:
    relative = fold_dir.relative_to(data.results_dir)
    log = _read(data, str(relative / TRAINING_LOG_FILE), _json_object) or {}
    epochs = [e for e in log.get("epochs", []) if isinstance(e, dict)]
    header = {k: v for k, v in log.items() if k != "epochs"}
    fold_summary = _read(data, str(relative / VALIDATION_FOLDER / FOLD_SUMMARY_FILE), _json_object)
    validation = _read(data, str(relative / VALIDATION_FOLDER / SUMMARY_FILE), _load_summary)
    return FoldRun(configuration, fold_dir.name.split("_", 1)[1], fold_dir, header, epochs, fold_summary, validation)


def find_dataset_root(data: ReportData) -> Path | None:
    """The raw dataset folder (for overlay images): from the validation summaries, the preprocessing manifests or
    ``inference.json``, whichever names an existing folder with a ``dataset.json``."""
    candidates: list[Path] = []
    for run in data.folds:
        if run.validation is not None and run.validation.reference_dir:
            candidates.append(Path(run.validation.reference_dir).parent)
    for result in data.crossval.values():
        if result.reference_dir:
            candidates.append(Path(result.reference_dir).parent)
    for manifest in sorted(ResultsLayout(data.results_dir).preprocessed_root.glob(f"*/{MANIFEST_NAME}")):
        try:
            recorded = read_json(manifest).get("dataset")
        except (ValueError, OSError, AttributeError):
            continue
        if recorded:
            candidates.append(Path(recorded))
    if data.inference and data.inference.get("reference_dir"):
        candidates.append(Path(str(data.inference["reference_dir"])).parent)
    for candidate in candidates:
        if (candidate / DATASET_FILE).is_file():
            return candidate
    return None
