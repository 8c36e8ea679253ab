"""``fit_fold``: train one configuration on one cross-validation fold prepared by
:func:`~autounet.trainers.fold_setup.setup_fold` (the final validation that follows is the pipeline's,
:func:`autounet.pipeline.train_fold`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autounet.errors import OutOfMemoryError
from autounet.layout import CHECKPOINT_FINAL, CHECKPOINT_LATEST, ResultsLayout
from autounet.parallel import default_workers
from autounet.planners.context_slices import expand_channel_indices
from autounet.planners.plans import PLANS_VERSION, network_input_channels
from autounet.trained_fold.checkpoint import check_compatible, load_checkpoint
from autounet.trained_fold.record import OVERRIDE_OPTIONS, FoldRecord, make_fold_record, write_fold_record
from autounet.trainers import components
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
from autounet.trainers.data.augmentation import plan_augmentation
from autounet.trainers.data.loader import PatchLoader
from autounet.trainers.data.pipeline import BatchStream, default_num_workers
from autounet.trainers.distributed import DistributedContext, split_batch_size, wrap_network
from autounet.trainers.fold_setup import FoldSetup
from autounet.trainers.splits import Fold
from autounet.trainers.trainer import Trainer

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
    already_trained : bool
        The fold had finished before (resumed from its final checkpoint): nothing was trained in this call.
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
    already_trained: bool = False


def fit_fold(
    setup: FoldSetup,
    config: TrainingConfig | None = None,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    reserve_seconds: Callable[[nn.Module, torch.dtype], float] | None = None,
) -> FoldResult:
    """Train the fold of ``setup``: write its record, build network and loss, run the trainer with its callbacks.

    The work after training (the final validation, :func:`autounet.pipeline.train_fold`) is not done here; a budget
    keeps time for it through ``reserve_seconds``.

    Parameters
    ----------
    setup : FoldSetup
        From :func:`setup_fold` with the same ``config``.
    config : TrainingConfig, optional
        Schedule, optimiser, device, precision, budget, overrides; defaults are nnU-Net's.
    resume : bool
        Continue from ``checkpoint_latest.pt`` (same schedule, optimiser state and batches) if there is one.
    callbacks : sequence of Callback
        Extra callbacks, run after the built-in ones.
    reserve_seconds : callable, optional
        ``reserve_seconds(network, dtype) -> seconds`` the work after training will take, timed with the network
        being trained; with ``config.budget_seconds`` that time is kept free.

    Returns
    -------
    FoldResult
        With ``validation`` None; ``already_trained`` when the fold had finished before (nothing was trained).

    Raises
    ------
    CheckpointError
        When ``resume`` finds a checkpoint of another model, or an unsafe or damaged file.
    OutOfMemoryError
        When the device runs out of memory (the message says what to lower; checkpoints are kept).
    """
    config = config or TrainingConfig()
    plans, conf, source, context, device, dtype = (setup.plans, setup.configuration, setup.source, setup.context,
                                                   setup.device, setup.dtype)
    configuration, fold, fold_dir = setup.configuration_name, setup.fold, setup.fold_dir
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
    if context.is_writer and not finished:  # what inference will build the network from (docs/architecture.md)
        write_fold_record(ResultsLayout(setup.results_dir).fold_record(configuration, fold),
                          _fold_record(plans, conf, fold, config, metadata, loss_name, dtype))
    network = wrap_network(network, context, device)

    workers = config.num_workers if config.num_workers is not None else default_num_workers(device.type, default_workers())
    train_ids, val_ids = setup.train_ids, setup.validation_ids
    train_loader, val_loader = _loaders(source, plans, conf, config, train_ids, val_ids, context, checkpoint)
    header = _log_header(conf, config, loss_name, train_ids, val_ids, device, dtype, workers, context)
    header["output_bias"] = _output_bias_description(config.output_bias, plans.class_prior)
    trained: list[Trainer] = []  # the reserve is timed with the network being trained, once the trainer exists

    def reserve() -> float:
        if reserve_seconds is None or not trained or not context.is_writer:
            return 0.0
        return reserve_seconds(trained[0].plain_network, dtype)

    builtin = _builtin_callbacks(fold_dir, metadata, header, config, context, device, reserve)
    pin = device.type == "cuda"
    with BatchStream(train_loader, workers, pin) as train_batches, (
        BatchStream(val_loader, min(workers, 1), pin) if val_loader is not None else _nullstream()
    ) as val_batches:
        trainer = Trainer(
            network, loss, train_batches, val_batches, config, device, dtype, _foreground_label_names(plans),
            components.supervision_scales(conf, config.deep_supervision), [*builtin, *callbacks],
            memory_format=memory_format,
        )
        trained.append(trainer)
        if checkpoint is not None:
            trainer.load_state_dict(checkpoint)
        trainer.state.elapsed_seconds += time.monotonic() - setup.started
        if not finished:
            try:
                trainer.fit()
            except (MemoryError, torch.OutOfMemoryError) as err:
                raise OutOfMemoryError(_out_of_memory_message(err, plans, conf, configuration, fold, device, fold_dir)) from None
    state = trainer.state
    return FoldResult(
        fold_dir=fold_dir, configuration=configuration, fold=fold, epochs=state.epoch, iterations=state.iteration,
        total_iterations=state.total_iterations, best_ema_dice=state.best_ema_dice, stop_reason=state.stop_reason,
        elapsed_seconds=state.elapsed_seconds, validation=None, already_trained=finished,
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


def augmentation_scale(config: TrainingConfig, configuration: Any) -> float:
    """The run's augmentation scale: the config's, else the plans' (compute-aware plans), else 1."""
    if config.augmentation_scale is not None:
        return float(config.augmentation_scale)
    planned = configuration.training.augmentation_scale
    return float(planned) if planned is not None else 1.0


def _builtin_callbacks(fold_dir, metadata, header, config, context, device, reserve) -> list[Callback]:
    """Checkpoints, logs, plot, progress bar, and (when asked for) early stopping, budget and thread tuning."""
    callbacks: list[Callback] = [
        Checkpointing(fold_dir, metadata, config.checkpoint_every_seconds, write=context.is_writer),
        TrainingLog(fold_dir, header, context.is_writer),
        ProgressPlot(fold_dir, write=context.is_writer),
        ProgressBar(config.progress and context.is_writer, label=f"{metadata['configuration']} fold {metadata['fold']}"),
    ]
    if config.early_stopping_patience is not None:
        callbacks.append(EarlyStopping(config.early_stopping_patience))
    if config.budget_seconds is not None:
        callbacks.append(FitToBudget(config.budget_seconds, reserve))
    if device.type == "cpu" and config.num_threads is None and torch.get_num_threads() > 1:
        callbacks.append(ThreadTuner((torch.get_num_threads(), 1)))
    return callbacks


class _nullstream:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


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


def _fold_record(plans, conf, fold, config: TrainingConfig, metadata, loss_name: str, dtype: torch.dtype) -> FoldRecord:
    """The fold record: the effective configuration, the overrides that made it and the inference settings."""
    return make_fold_record(
        plans, conf, fold, {key: getattr(config, key) for key in OVERRIDE_OPTIONS},
        resampling_backend=metadata["resampling_backend"],
        training={"loss": loss_name, "precision": str(dtype).replace("torch.", ""),
                  "deep_supervision": config.deep_supervision},
    )


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
    expected = sum(tensor.numel() for tensor in network.state_dict().values())
    checkpoint = load_checkpoint(path, map_location="cpu", expected_parameters=expected)
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
