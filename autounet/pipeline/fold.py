"""``train_fold``: train one configuration on one fold (the trainers), then validate it as it will be predicted
(inference and evaluation)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace

from autounet.locks import folder_lock
from autounet.model_manifest import MODEL_TOP_FILES, record_model_manifest
from autounet.pipeline.final_validation import FinalValidation
from autounet.trainers import Callback, FoldResult, TrainingConfig, fit_fold, setup_fold
from autounet.trainers.data.loader import CaseSource
from autounet.trainers.distributed import context_from_environment
from autounet.trainers.fold_setup import fold_directory
from autounet.trainers.splits import Fold, parse_fold
from autounet.typing import PathType


def train_fold(
    results_dir: PathType,
    configuration: str,
    fold: Fold,
    config: TrainingConfig | None = None,
    *,
    resume: bool = False,
    dataset: PathType | None = None,
    source: CaseSource | None = None,
    callbacks: Sequence[Callback] = (),
) -> FoldResult:
    """Train ``configuration`` on fold ``fold`` of the dataset in ``results_dir``, then validate it.

    Training is :func:`autounet.trainers.setup_fold` and :func:`autounet.trainers.fit_fold` (a budget keeps time for
    the validation, timed with the network being trained); the final validation loads the fold as ``autounet
    predict`` does and scores its held-out cases (:class:`~autounet.pipeline.final_validation.FinalValidation`).

    Parameters
    ----------
    results_dir : path
        The dataset's results folder with ``plans.json`` and ``preprocessed/`` (docs/architecture.md).
    configuration : str
        ``2d``, ``3d_fullres``, ``3d_lowres`` or ``3d_cascade_fullres`` (one present in the plans).
    fold : int or "all"
        Cross-validation fold (``splits.json`` is created on first use) or ``"all"`` to train on every case.
    config : TrainingConfig, optional
        Schedule, optimiser, device, precision, budget, overrides; defaults are nnU-Net's. ``final_validation``
        and ``save_probabilities`` drive the validation.
    resume : bool
        Continue from ``checkpoint_latest.pt`` (same schedule, optimiser state and batches) if there is one; a fold
        that had finished is not trained again and keeps its final validation.
    dataset : path, optional
        Raw dataset folder for the final validation's reference labels (default: the one recorded by
        preprocessing); without labels the final validation predicts but does not score.
    source : CaseSource, optional
        Preprocessed cases in memory instead of ``results_dir/preprocessed`` (tests, notebooks).
    callbacks : sequence of Callback
        Extra callbacks, run after the built-in ones.

    Returns
    -------
    FoldResult

    Raises
    ------
    MissingStageError
        When the plans or the preprocessed data are missing (the message names the command to run).
    CheckpointError
        When ``resume`` finds a checkpoint of another model, or an unsafe or damaged file.
    FolderLockedError
        When another run is training this fold (the message names it: command, pid, host, start time).
    """
    context = context_from_environment()
    fold_dir = fold_directory(results_dir, configuration, fold)
    lock = folder_lock(fold_dir, f"autounet train {configuration} fold {parse_fold(fold)}") if context.is_writer else nullcontext()
    with lock:  # one writer per fold folder: a second run of the same fold stops at once, told who holds it
        result = _train_and_validate(results_dir, configuration, fold, config, resume=resume, dataset=dataset,
                                     source=source, callbacks=callbacks)
    if context.is_writer:  # sha256 of the model's files (this fold's anew), checked by "autounet predict"
        record_model_manifest(results_dir, updated=(*MODEL_TOP_FILES, f"{configuration}/{fold_dir.name}/"))
    return result


def _train_and_validate(
    results_dir: PathType,
    configuration: str,
    fold: Fold,
    config: TrainingConfig | None,
    *,
    resume: bool,
    dataset: PathType | None,
    source: CaseSource | None,
    callbacks: Sequence[Callback],
) -> FoldResult:
    """:func:`train_fold` while holding the fold folder's lock."""
    config = config or TrainingConfig()
    setup = setup_fold(results_dir, configuration, fold, config, dataset=dataset, source=source)
    validation = FinalValidation(setup, config.save_probabilities)
    result = fit_fold(setup, config, resume=resume, callbacks=callbacks, reserve_seconds=validation.estimate_seconds)
    started = time.monotonic()
    summary = None
    if config.final_validation and setup.validation_ids:
        summary = validation.existing() if result.already_trained else None
        if summary is None:
            summary = validation.run(setup.dtype, progress=config.progress)
    setup.context.barrier()
    return replace(result, validation=summary, elapsed_seconds=result.elapsed_seconds + time.monotonic() - started)
