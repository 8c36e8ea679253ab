"""The all-in-one pipeline: check -> fingerprint -> plan -> preprocess -> train -> find-best, resumable."""

from autounet.pipeline.run import RunOptions, RunSummary, run_pipeline

__all__ = ["RunOptions", "RunSummary", "run_pipeline"]
