"""``train_fold``: train one configuration on one cross-validation fold and validate it, from the results folder."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from autounet.dataset.regions import refuse_regions_in_folder
from autounet.errors import MissingStageError, OutOfMemoryError
from autounet.planners.context_slices import expand_channel_indices
from autounet.planners.plans import PLANS_VERSION, network_input_channels
from autounet.trainers import components
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
from autounet.trainers.checkpoint import (
    CHECKPOINT_FINAL,
    CHECKPOINT_LATEST,
    check_compatible,
    load_checkpoint,
)
from autounet.trainers.cascade import CascadeSource, cascade_case_ids, prepare_previous_stage, previous_stage_folder
from autounet.trainers.config import TrainingConfig
from autounet.trainers.data.augmentation import plan_augmentation
from autounet.trainers.data.loader import CaseSource, PatchLoader
from autounet.trainers.data.pipeline import BatchStream, default_num_workers
from autounet.trainers.devices import resolve_device, resolve_precision
from autounet.trainers.final_validation import FinalValidation
from autounet.trainers.distributed import (
    DistributedContext,
    context_from_environment,
    init_process_group,
    split_batch_size,
    wrap_network,
)
from autounet.trainers.splits import Fold, fold_cases, load_or_create_splits, parse_fold
from autounet.trainers.trainer import Trainer
from autounet.typing import PathType

logger = logging.getLogger(__name__)

#: Validation batches use a different stream of random numbers than training batches of the same iteration.
VALIDATION_SEED_OFFSET = 1_000_003


@dataclass(frozen=True)
class FoldResult:
    """What a trained fold produced.

    Attributes
    ----------
    fold_dir : Path
        ``RESULTS/<configuration>/fold_<k>/`` with checkpoints, logs, ``progress.png`` and ``validation/``.
    configuration : str
    fold : int or "all"
    epochs, iterations, total_iterations : int
        Completed epochs and iterations, and the schedule's length.
    best_ema_dice : float or None
        Best smoothed pseudo validation Dice (None for fold ``all``).
    stop_reason : str or None
        Why training ended before the schedule (early stopping), else None.
    elapsed_seconds : float
        Wall time of the fold, all sessions, final validation included.
    validation : dict or None
        Final validation summary: ``{"mean_dice": {label: Dice}, "foreground_mean_dice": float, ...}``.
    """

    fold_dir: Path
    configuration: str
    fold: Fold
    epochs: int
    iterations: int
    total_iterations: int
    best_ema_dice: float | None
    stop_reason: str | None
    elapsed_seconds: float
    validation: dict[str, Any] | None


def fold_directory(results_dir: PathType, configuration: str, fold: Fold) -> Path:
    """``results_dir/<configuration>/fold_<k>`` (``fold_all`` for fold "all")."""
    return Path(results_dir) / configuration / f"fold_{parse_fold(fold)}"


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

    Parameters
    ----------
    results_dir : path
        The dataset's results folder with ``plans.json`` and ``preprocessed/`` (docs/architecture.md).
    configuration : str
        ``2d``, ``3d_fullres``, ``3d_lowres`` or ``3d_cascade_fullres`` (one present in the plans).
    fold : int or "all"
        Cross-validation fold (``splits.json`` is created on first use) or ``"all"`` to train on every case.
    config : TrainingConfig, optional
        Schedule, optimiser, device, precision, budget, overrides; defaults are nnU-Net's.
    resume : bool
        Continue from ``checkpoint_latest.pt`` (same schedule, optimiser state and batches) if there is one.
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
    DatasetError
        When the results folder's ``dataset.json`` declares region labels (not trained yet).
    """
    started = time.monotonic()
    config = config or TrainingConfig()
    results_dir, fold, context = Path(results_dir), parse_fold(fold), context_from_environment()
    refuse_regions_in_folder(results_dir)  # the dataset.json kept with the plans; regions are not trained yet
    plans = components.read_plans(results_dir)
    if source is None:
        source = components.open_store(results_dir, plans.configuration(configuration))
    conf = components.effective_configuration(plans, configuration, config, len(source.case_ids))
    splits = load_or_create_splits(results_dir, source.case_ids, write=context.is_writer)
    context.barrier()
    train_ids, val_ids = fold_cases(splits, fold, source.case_ids)
    if conf.previous_stage:
        source = _cascade_source(results_dir, plans, configuration, source, splits, fold, dataset, context, config.progress)
    fold_dir = fold_directory(results_dir, configuration, fold)

    device = init_process_group(context, resolve_device(config.device))
    dtype = resolve_precision(config.precision, device)
    if config.num_threads is not None and device.type == "cpu":
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    memory_format = components.cpu_memory_format(conf, device)
    network = components.make_network(conf, plans, config.deep_supervision, config.output_bias)
    network = network.to(device=device, memory_format=memory_format)  # type: ignore[call-overload]
    loss_name = config.loss or conf.loss
    loss = components.make_loss(loss_name, config.loss_kwargs, conf, config.deep_supervision, context.enabled)
    metadata = _checkpoint_metadata(plans, conf, configuration, fold, config, loss_name)
    # New images must be preprocessed as the training data was (the resampling backend is not part of the plans).
    metadata["resampling_backend"] = str((getattr(source, "manifest", None) or {}).get("resampling_backend", "auto"))
    checkpoint = _checkpoint_to_resume(fold_dir, resume, metadata, network)
    finished = checkpoint is not None and bool(checkpoint.get("finished"))
    network = wrap_network(network, context, device)

    workers = config.num_workers if config.num_workers is not None else default_num_workers(device.type, _cpu_cores())
    train_loader, val_loader = _loaders(source, plans, conf, config, train_ids, val_ids, context, checkpoint)
    final_validation = FinalValidation(plans, conf, source, val_ids, fold_dir, dataset, device, context, config.save_probabilities)
    header = _log_header(conf, config, loss_name, train_ids, val_ids, device, dtype, workers, context)
    header["output_bias"] = _output_bias_description(config.output_bias, plans.class_prior)
    builtin = _builtin_callbacks(fold_dir, metadata, header, config, context, device, final_validation)
    pin = device.type == "cuda"
    with BatchStream(train_loader, workers, pin) as train_batches, (
        BatchStream(val_loader, min(workers, 1), pin) if val_loader is not None else _nullstream()
    ) as val_batches:
        trainer = Trainer(
            network, loss, train_batches, val_batches, config, device, dtype, _foreground_label_names(plans),
            components.supervision_scales(conf, config.deep_supervision), [*builtin, *callbacks],
            memory_format=memory_format,
        )
        if checkpoint is not None:
            trainer.load_state_dict(checkpoint)
        final_validation.bind(trainer.plain_network, dtype)
        trainer.state.elapsed_seconds += time.monotonic() - started
        if not finished:
            try:
                trainer.fit()
            except (MemoryError, torch.OutOfMemoryError) as err:
                raise OutOfMemoryError(_out_of_memory_message(err, plans, conf, configuration, fold, device, fold_dir)) from None
    session_start = time.monotonic()
    validation = None
    if config.final_validation and val_ids:
        validation = final_validation.existing() if finished else None
        if validation is None:
            validation = final_validation.run(trainer.plain_network, dtype, progress=config.progress)
    context.barrier()
    state = trainer.state
    return FoldResult(
        fold_dir=fold_dir, configuration=configuration, fold=fold, epochs=state.epoch, iterations=state.iteration,
        total_iterations=state.total_iterations, best_ema_dice=state.best_ema_dice, stop_reason=state.stop_reason,
        elapsed_seconds=state.elapsed_seconds + time.monotonic() - session_start, validation=validation,
    )


def _loaders(source, plans, conf, config, train_ids, val_ids, context, checkpoint) -> tuple[PatchLoader, PatchLoader | None]:
    """Training and validation batch loaders, starting where a resumed run stopped."""
    mask = _mask_channels(conf)
    batch_size = split_batch_size(conf.batch_size, context)
    start_iteration = int(checkpoint["iteration"]) if checkpoint else 0
    start_epoch = int(checkpoint["epoch"]) if checkpoint else 0
    previous_classes = plans.num_classes if conf.previous_stage else 0
    augmentation = plan_augmentation(conf.patch_size, config.augment, mask, augmentation_scale(config, conf), previous_classes)
    train = PatchLoader(
        source, train_ids, batch_size, augmentation,
        config.foreground_fraction, config.seed, context.rank, start_iteration, label_values=plans.label_values,
        context_slices=conf.context_slices,
    )
    if not val_ids or config.validation_iterations == 0:
        return train, None
    validation = PatchLoader(
        source, val_ids, batch_size,
        plan_augmentation(conf.patch_size, augment=False, mask_channels=mask, previous_stage_classes=previous_classes),
        config.foreground_fraction, config.seed + VALIDATION_SEED_OFFSET, context.rank,
        start_epoch * config.validation_iterations, label_values=plans.label_values,
        context_slices=conf.context_slices,
    )
    return train, validation


def _out_of_memory_message(err: BaseException, plans, conf, configuration, fold, device, fold_dir: Path) -> str:
    """What ran out, how much it asked for (the allocator's own words), the planner's estimate, and what to do."""
    detail = str(err).split("\n")[0] or type(err).__name__
    where = f"{device.type.upper()} memory" if device.type != "cpu" else "main memory"
    smaller = max(1, conf.batch_size // 2)
    return (
        f"out of {where} while training {configuration} fold {fold} (network {conf.network}, features "
        f"{list(conf.features_per_stage)}, batch {conf.batch_size}, patch {list(conf.patch_size)}): {detail}. "
        f"The planner estimates {components.estimated_training_memory_gb(plans, conf):.1f} GB for this network and batch "
        f"(plans made for {plans.memory_budget_gb:g} GB). Checkpoints in {fold_dir} are intact: continue with "
        f"--resume and a smaller --batch-size (e.g. {smaller}) or --patch-size, or plan for this device with "
        f'"autounet plan --gpu-memory GB" and train again'
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


def augmentation_scale(config: TrainingConfig, configuration: Any) -> float:
    """The run's augmentation scale: the config's, else the plans' (compute-aware plans), else 1."""
    if config.augmentation_scale is not None:
        return float(config.augmentation_scale)
    return float(configuration.training.get("augmentation_scale", 1.0))


def _builtin_callbacks(fold_dir, metadata, header, config, context, device, final_validation) -> list[Callback]:
    """Checkpoints, logs, plot, progress bar, and (when asked for) early stopping, budget and thread tuning."""
    callbacks: list[Callback] = [
        Checkpointing(fold_dir, metadata, config.checkpoint_every_seconds, write=context.is_writer),
        TrainingLog(fold_dir, header, context.is_writer),
        ProgressPlot(fold_dir, write=context.is_writer),
        ProgressBar(config.progress and context.is_writer),
    ]
    if config.early_stopping_patience is not None:
        callbacks.append(EarlyStopping(config.early_stopping_patience))
    if config.budget_seconds is not None:
        callbacks.append(FitToBudget(config.budget_seconds, final_validation.estimate_seconds))
    if device.type == "cpu" and config.num_threads is None and torch.get_num_threads() > 1:
        callbacks.append(ThreadTuner((torch.get_num_threads(), 1)))
    return callbacks


class _nullstream:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _cpu_cores() -> int:
    from autounet.parallel import default_workers

    return default_workers()


def _mask_channels(configuration: Any) -> tuple[int, ...]:
    """Network input channels normalised inside the mask (every stacked slice of such a channel, in 2.5D)."""
    masked = [i for i, n in enumerate(configuration.normalization) if n.use_mask]
    return expand_channel_indices(masked, configuration.context_slices)


def _foreground_label_names(plans: Any) -> dict[int, str]:
    """Class index -> label name for every foreground class (class i is the i-th smallest label value)."""
    by_value = {value: name for name, value in plans.labels.items()}
    return {index: by_value.get(value, str(value)) for index, value in enumerate(plans.label_values) if index > 0}


def _checkpoint_metadata(plans, conf, configuration, fold, config, loss_name) -> dict[str, Any]:
    return {
        "configuration": configuration,
        "fold": str(fold),
        "plans_version": plans.plans_version,
        "autounet_plans_version": PLANS_VERSION,
        "network": conf.network,
        "network_description": components.network_description(conf),
        "configuration_plan": conf.to_dict(),
        "in_channels": network_input_channels(plans, conf),
        "context_slices": conf.context_slices,
        "num_classes": plans.num_classes,
        "label_values": list(plans.label_values),
        "loss": loss_name,
        "training_config": config.to_dict(),
    }


def _checkpoint_to_resume(fold_dir: Path, resume: bool, metadata: dict[str, Any], network) -> dict[str, Any] | None:
    """The checkpoint to continue from (checked against this run), or None to start from scratch."""
    latest, final = fold_dir / CHECKPOINT_LATEST, fold_dir / CHECKPOINT_FINAL
    if not resume:
        if latest.exists() or final.exists():
            logger.warning("%s holds checkpoints; training from scratch overwrites them (use resume to continue)", fold_dir)
        return None
    path = final if final.exists() else latest
    if not path.exists():
        logger.info("nothing to resume in %s; training from scratch", fold_dir)
        return None
    checkpoint = load_checkpoint(path, map_location="cpu")
    check_compatible(
        checkpoint,
        path,
        plans_version=metadata["plans_version"],
        configuration=metadata["configuration"],
        network=metadata["network"],
        model_state=network.state_dict(),
    )
    if path == final:
        checkpoint["finished"] = True
    logger.info("resuming %s from iteration %d (epoch %d)", fold_dir, checkpoint["iteration"], checkpoint["epoch"])
    return checkpoint


def _output_bias_description(output_bias: str, class_prior: Sequence[float] | None) -> str:
    """How the network's output bias started, for the training log."""
    if output_bias == "prior" and class_prior is not None:
        return "log class prior [" + ", ".join(f"{p:g}" for p in class_prior) + "]"
    if output_bias == "zero":
        return "zero"
    return 'zero (plans.json has no class_prior: re-plan with "autounet plan" to start at the class prior)'


def _log_header(conf, config, loss_name, train_ids, val_ids, device, dtype, workers, context: DistributedContext) -> dict[str, Any]:
    return {
        "configuration": conf.name,
        "network": conf.network,
        "features_per_stage": list(conf.features_per_stage),
        "patch_size": list(conf.patch_size),
        "batch_size": conf.batch_size,
        "loss": loss_name,
        "device": str(device),
        "precision": str(dtype).replace("torch.", ""),
        "data_workers": workers,
        "world_size": context.world_size,
        "train_cases": len(train_ids),
        "val_cases": len(val_ids),
        "seed": config.seed,
        "budget_seconds": config.budget_seconds,
        "augmentation_scale": augmentation_scale(config, conf) if config.augment else 0.0,
    }
