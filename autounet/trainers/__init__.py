"""Training: five-fold cross-validation of the planned network, checkpoints, budget, final validation.

>>> from autounet.trainers import TrainingConfig, train_fold
>>> result = train_fold("out/Hippocampus", "3d_fullres", 0, TrainingConfig(budget_seconds=1200))  # doctest: +SKIP

``train_fold(results_dir, configuration, fold, config) -> FoldResult`` is the whole job; the pieces are public for
other uses: :class:`Trainer` (one class, configured by :class:`TrainingConfig` and callbacks), the callbacks
(:mod:`autounet.trainers.callbacks`), splits (:mod:`autounet.trainers.splits`), checkpoints
(:mod:`autounet.trained_fold.checkpoint`), the budget rules (:mod:`autounet.trainers.budget`) and the data pipeline
(:mod:`autounet.trainers.data`). See ``docs/training.md``.
"""

from autounet.trained_fold.checkpoint import CheckpointError, check_compatible, load_checkpoint, save_checkpoint
from autounet.trainers.callbacks import (
    Callback,
    Checkpointing,
    EarlyStopping,
    FitToBudget,
    ProgressBar,
    ProgressPlot,
    ThreadTuner,
    TrainingLog,
)
from autounet.trainers.config import TrainingConfig
from autounet.trainers.splits import fold_cases, load_or_create_splits, make_splits
from autounet.trainers.train_fold import FoldResult, fold_directory, train_fold
from autounet.trainers.trainer import Trainer, TrainingState, poly_lr

__all__ = [
    "Callback",
    "CheckpointError",
    "Checkpointing",
    "EarlyStopping",
    "FitToBudget",
    "FoldResult",
    "ProgressBar",
    "ProgressPlot",
    "ThreadTuner",
    "Trainer",
    "TrainingConfig",
    "TrainingLog",
    "TrainingState",
    "check_compatible",
    "fold_cases",
    "fold_directory",
    "load_checkpoint",
    "load_or_create_splits",
    "make_splits",
    "poly_lr",
    "save_checkpoint",
    "train_fold",
]
