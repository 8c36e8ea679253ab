"""Inference: sliding-window prediction, fold/configuration/cascade ensembles, export, post-processing, find-best.

See ``docs/inference.md``.
"""

from autounet.inference.batch import PredictionReport
from autounet.inference.ensemble import one_hot_foreground
from autounet.inference.export import export_prediction, read_probabilities, write_probabilities
from autounet.inference.find_best import find_best
from autounet.inference.inputs import InputCase, find_input_cases
from autounet.inference.model_folder import TrainedFold, load_trained_fold, load_trained_folds, read_model_plans
from autounet.inference.postprocessing import (
    PostprocessingDecision,
    apply_postprocessing,
    determine_postprocessing,
    keep_largest_component,
    load_postprocessing,
)
from autounet.inference.predictor import CasePrediction, Predictor
from autounet.inference.sliding_window import (
    compute_tile_starts,
    gaussian_importance_map,
    predict_logits,
)

__all__ = [
    "CasePrediction",
    "InputCase",
    "PostprocessingDecision",
    "PredictionReport",
    "Predictor",
    "TrainedFold",
    "apply_postprocessing",
    "compute_tile_starts",
    "determine_postprocessing",
    "export_prediction",
    "find_best",
    "find_input_cases",
    "gaussian_importance_map",
    "keep_largest_component",
    "load_postprocessing",
    "load_trained_fold",
    "load_trained_folds",
    "one_hot_foreground",
    "predict_logits",
    "read_model_plans",
    "read_probabilities",
    "write_probabilities",
]
