"""Evaluate segmentations: metrics on arrays, and folders of predictions against references.

See ``docs/evaluation.md`` for the definition of every metric and the conventions for empty masks.
"""

from autounet.evaluation.evaluate import evaluate_cases, evaluate_folders, find_label_files, labels_from_dataset_json
from autounet.evaluation.metrics import (
    DEFAULT_NSD_TOLERANCE_MM,
    METRIC_NAMES,
    METRIC_UNITS,
    binary_metrics,
    compute_metrics,
    confusion_counts,
    dice,
    surface_distances,
)
from autounet.evaluation.result import CaseResult, EvaluationResult, format_table, load_summary

__all__ = [
    "CaseResult",
    "DEFAULT_NSD_TOLERANCE_MM",
    "EvaluationResult",
    "METRIC_NAMES",
    "METRIC_UNITS",
    "binary_metrics",
    "compute_metrics",
    "confusion_counts",
    "dice",
    "evaluate_cases",
    "evaluate_folders",
    "find_label_files",
    "format_table",
    "labels_from_dataset_json",
    "load_summary",
    "surface_distances",
]
