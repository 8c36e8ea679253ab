"""The all-in-one pipeline: check -> fingerprint -> plan -> preprocess -> train -> find-best, resumable; and the
steps that join stages: preparing a results folder, training a fold with its final validation."""

from autounet.pipeline.fold import train_fold
from autounet.pipeline.run import RunOptions, RunSummary, run_pipeline
from autounet.trainers import FoldResult

__all__ = ["FoldResult", "RunOptions", "RunSummary", "run_pipeline", "train_fold"]
