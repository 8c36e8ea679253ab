"""``setup_fold``: what one fold trains on and where, resolved before training starts: plans, the effective
configuration, the preprocessed cases (with the cascade's previous-stage predictions), the split, the device."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from autounet.dataset.regions import refuse_regions_in_folder
from autounet.devices import resolve_device, resolve_precision
from autounet.errors import MissingStageError
from autounet.layout import ResultsLayout
from autounet.preprocessing.store import require_complete
from autounet.trainers import components
from autounet.trainers.cascade import CascadeSource, cascade_case_ids, prepare_previous_stage, previous_stage_folder
from autounet.trainers.config import TrainingConfig
from autounet.trainers.data.loader import CaseSource
from autounet.trainers.distributed import DistributedContext, context_from_environment, init_process_group
from autounet.trainers.splits import Fold, fold_cases, load_or_create_splits, parse_fold
from autounet.typing import PathType


def fold_directory(results_dir: PathType, configuration: str, fold: Fold) -> Path:
    """``results_dir/<configuration>/fold_<k>`` (``fold_all`` for fold "all")."""
    return ResultsLayout(results_dir).fold(configuration, parse_fold(fold))


@dataclass(frozen=True)
class FoldSetup:
    """What a fold trains on and where, resolved before training starts (:func:`setup_fold`).

    Attributes
    ----------
    results_dir, fold_dir : Path
        The dataset's results folder and ``<configuration>/fold_<k>/``.
    configuration_name : str
    fold : int or "all"
    plans : Plans
    configuration : ConfigurationPlan
        The effective configuration: the plans' one with the run's overrides (network, patch, batch, context).
    source : CaseSource
        The preprocessed cases (for a cascade, with the previous stage's predictions as a second label channel).
    train_ids, validation_ids : list of str
    dataset : Path or None
        The raw dataset folder, when given.
    device : torch.device
    dtype : torch.dtype
        Autocast dtype (float32 = none).
    context : DistributedContext
    started : float
        ``time.monotonic()`` when the setup began (counted in the fold's elapsed time).
    """

    results_dir: Path
    fold_dir: Path
    configuration_name: str
    fold: Fold
    plans: Any
    configuration: Any
    source: Any
    train_ids: list[str]
    validation_ids: list[str]
    dataset: Path | None
    device: torch.device
    dtype: torch.dtype
    context: DistributedContext
    started: float


def setup_fold(
    results_dir: PathType,
    configuration: str,
    fold: Fold,
    config: TrainingConfig | None = None,
    *,
    dataset: PathType | None = None,
    source: CaseSource | None = None,
) -> FoldSetup:
    """Read the plans and the preprocessed store, apply the run's overrides, split the cases, choose the device.

    Parameters
    ----------
    results_dir : path
        The dataset's results folder with ``plans.json`` and ``preprocessed/`` (docs/architecture.md).
    configuration : str
        ``2d``, ``3d_fullres``, ``3d_lowres`` or ``3d_cascade_fullres`` (one present in the plans).
    fold : int or "all"
        Cross-validation fold (``splits.json`` is created on first use) or ``"all"`` to train on every case.
    config : TrainingConfig, optional
        The run's settings (overrides, device, precision).
    dataset : path, optional
        Raw dataset folder (a cascade maps its previous stage's predictions from it; default: the one recorded by
        preprocessing).
    source : CaseSource, optional
        Preprocessed cases in memory instead of ``results_dir/preprocessed`` (tests, notebooks).

    Raises
    ------
    MissingStageError
        When the plans or the preprocessed data are missing (the message names the command to run).
    """
    started = time.monotonic()
    config = config or TrainingConfig()
    results_dir, fold, context = Path(results_dir), parse_fold(fold), context_from_environment()
    refuse_regions_in_folder(results_dir)  # the dataset.json kept with the plans; regions are not trained yet
    plans = components.read_plans(results_dir)
    if source is None:
        source = components.open_store(results_dir, plans.configuration(configuration))
        require_complete(source)  # never split (or train) a partial case list
    conf = components.effective_configuration(plans, configuration, config, len(source.case_ids))
    splits = load_or_create_splits(results_dir, source.case_ids, write=context.is_writer)
    context.barrier()
    train_ids, val_ids = fold_cases(splits, fold, source.case_ids)
    if conf.previous_stage:
        source = _cascade_source(results_dir, plans, configuration, source, splits, fold, dataset, context, config.progress)
    device = init_process_group(context, resolve_device(config.device))
    return FoldSetup(
        results_dir=results_dir, fold_dir=fold_directory(results_dir, configuration, fold), configuration_name=configuration,
        fold=fold, plans=plans, configuration=conf, source=source, train_ids=list(train_ids),
        validation_ids=list(val_ids), dataset=Path(dataset) if dataset is not None else None, device=device,
        dtype=resolve_precision(config.precision, device), context=context, started=started,
    )


def _cascade_source(results_dir, plans, configuration, store, splits, fold, dataset, context, progress) -> CaseSource:
    """The store with the previous stage's cross-validation predictions as a second label channel (made first)."""
    root = dataset if dataset is not None else (getattr(store, "manifest", None) or {}).get("dataset")
    if root is None or not Path(root).is_dir():
        raise MissingStageError(
            f"training {configuration} needs the raw dataset to map the {plans.configuration(configuration).previous_stage} "
            f"predictions onto its grid, and {root} is not a folder; pass the dataset folder (autounet train DATASET ...)"
        )
    if context.is_writer:
        prepare_previous_stage(
            results_dir, plans, configuration, splits, cascade_case_ids(splits, fold, store.case_ids), Path(root),
            workers=None, progress=progress,
        )
    context.barrier()
    return CascadeSource(store, previous_stage_folder(results_dir, plans, configuration))
