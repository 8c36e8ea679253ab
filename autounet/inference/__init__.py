"""Inference: sliding-window prediction, fold/configuration/cascade ensembles, export, post-processing."""

from autounet.inference.sliding_window import (
    compute_tile_starts,
    gaussian_importance_map,
    predict_logits,
)

__all__ = [
    "compute_tile_starts",
    "gaussian_importance_map",
    "predict_logits",
]
