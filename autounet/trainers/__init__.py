"""Training: the planned network on one cross-validation fold, checkpoints, the fold record, budget.

>>> from autounet.trainers import TrainingConfig, fit_fold, setup_fold
>>> setup = setup_fold("out/Hippocampus", "3d_fullres", 0, TrainingConfig(budget_seconds=1200))  # doctest: +SKIP
>>> result = fit_fold(setup, TrainingConfig(budget_seconds=1200))  # doctest: +SKIP

``setup_fold`` reads the plans and the store and applies the run's overrides; ``fit_fold`` writes the fold record
and trains. Training *and* the final validation of a fold is :func:`autounet.pipeline.train_fold` (the validation
predicts through the inference stage, which trainers do not import). The pieces are public for other uses:
:class:`Trainer` (one class, configured by :class:`TrainingConfig` and callbacks), the callbacks
(:mod:`autounet.trainers.callbacks`), splits (:mod:`autounet.trainers.splits`), the budget rule
(:mod:`autounet.trainers.budget`) and the data pipeline (:mod:`autounet.trainers.data`). Checkpoints and the fold
record live in :mod:`autounet.trained_fold`. See ``docs/training.md``.
"""

from autounet.trained_fold.checkpoint import CheckpointError, check_compatible, load_checkpoint, save_checkpoint
from autounet.trainers.callbacks import (
    Callback,
    Checkpointing,
    EarlyStopping,
    ProgressBar,
    ProgressPlot,
    ThreadTuner,
    TrainingLog,
)
from autounet.trainers.budget import FitToBudget
from autounet.trainers.config import TrainingConfig
from autounet.trainers.splits import fold_cases, load_or_create_splits, make_splits
from autounet.trainers.fold_setup import FoldSetup, fold_directory, setup_fold
from autounet.trainers.train_fold import FoldResult, fit_fold
from autounet.trainers.trainer import Trainer, TrainingState, poly_lr

__all__ = [
    "Callback",
    "CheckpointError",
    "Checkpointing",
    "EarlyStopping",
    "FitToBudget",
    "FoldResult",
    "FoldSetup",
    "ProgressBar",
    "ProgressPlot",
    "ThreadTuner",
    "Trainer",
    "TrainingConfig",
    "TrainingLog",
    "TrainingState",
    "check_compatible",
    "fit_fold",
    "fold_cases",
    "fold_directory",
    "load_checkpoint",
    "load_or_create_splits",
    "make_splits",
    "poly_lr",
    "save_checkpoint",
    "setup_fold",
]
