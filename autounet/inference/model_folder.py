"""Open a trained model folder safely: check the plans, the checkpoints and the architecture before using them.

A model folder is ``RESULTS/<dataset_name>`` (docs/architecture.md): ``plans.json``, ``dataset.json`` and
``<configuration>/fold_<k>/`` with ``fold.json`` (the fold record: what the fold was trained as) and
``checkpoint_<final|best|latest>.pt``. A fold is built from its record, not from ``plans.json``, which is only the
default training started from. The folder may come from someone else, so nothing in it is unpickled: plans and
records are JSON and checkpoints load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from autounet.errors import MissingStageError, PlansError
from autounet.checkpoint_scan import CheckpointLayout
from autounet.layout import CHECKPOINT_NAMES, PLANS_FILE, CheckpointName, ResultsLayout, checkpoint_file
from autounet.networks import build_network
from autounet.networks.cpu_speed import prepare_for_cpu_speed
from autounet.planners.plans import ConfigurationPlan, Plans, load_plans, network_input_channels  # noqa: F401  network_input_channels re-exported
from autounet.preprocessing.resampling import RESAMPLING_BACKENDS
from autounet.trained_fold.checkpoint import CheckpointError, load_checkpoint
from autounet.trained_fold.record import (
    INFERENCE_FIELDS,
    FoldRecord,
    check_against_plans,
    read_fold_record,
    record_from_checkpoint,
)
from autounet.typing import PathType

logger = logging.getLogger(__name__)

#: Fold names the trainer writes (``fold_0`` .. ``fold_4`` and ``fold_all``).
FOLD_NAMES: tuple[Union[int, str], ...] = (0, 1, 2, 3, 4, "all")

Fold = Union[int, str]


@dataclass(frozen=True)
class TrainedFold:
    """One fold's network, loaded and checked, ready for inference (eval mode, no deep supervision).

    ``patch_size``, ``context_slices``, ``mirror_axes`` and ``resampling_backend`` are the fold's own (its record),
    which may differ from ``plans.json`` when the fold was trained with overrides.
    """

    configuration: str
    fold: Fold
    path: Path
    network: nn.Module
    mirror_axes: tuple[int, ...] | None
    patch_size: tuple[int, ...]
    context_slices: int = 0
    resampling_backend: str = "auto"
    record: FoldRecord | None = None


def read_model_plans(model_dir: PathType) -> Plans:
    """The plans of a model folder; a missing or unusable file raises an error saying what to pass instead."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: model folder not found; pass RESULTS/<dataset> (the folder with plans.json)")
    plans_path = ResultsLayout(model_dir).plans
    if not plans_path.is_file():
        hint = ""
        children = [p.name for p in model_dir.iterdir() if (p / PLANS_FILE).is_file()]
        if children:
            hint = f"; did you mean {model_dir / children[0]}?"
        raise MissingStageError(f"{model_dir}: no {PLANS_FILE}, so this is not a model folder{hint}")
    return load_plans(plans_path)


def trained_folds(model_dir: PathType, configuration: str, checkpoint: CheckpointName = "final") -> list[Fold]:
    """Folds of ``configuration`` that have ``checkpoint_<checkpoint>.pt``, in the order 0..4, all."""
    layout = ResultsLayout(model_dir)
    return [fold for fold in FOLD_NAMES if layout.checkpoint(configuration, fold, checkpoint).is_file()]


def trained_configurations(model_dir: PathType, plans: Plans, checkpoint: CheckpointName = "final") -> list[str]:
    """Configurations of the plans with at least one trained fold."""
    return [name for name in plans.configurations if trained_folds(model_dir, name, checkpoint)]


def load_trained_fold(
    model_dir: PathType,
    plans: Plans,
    configuration: str,
    fold: Fold,
    checkpoint: CheckpointName = "final",
    device: torch.device | str = "cpu",
) -> TrainedFold:
    """Load one fold as it was trained, after checking its checkpoint, its fold record and the plans agree.

    The network, patch, context slices, mirror axes and resampling backend come from the fold record
    (``fold.json``, :mod:`autounet.trained_fold.record`); folds trained before records existed are read from the
    checkpoint's own ``configuration_plan`` and, older still, from ``plans.json`` with the recorded overrides.

    Parameters
    ----------
    model_dir : str or Path
        ``RESULTS/<dataset>``.
    plans : Plans
        The model folder's plans (:func:`read_model_plans`).
    configuration : str
        A configuration of the plans.
    fold : int or str
        ``0``..``4`` or ``"all"``.
    checkpoint : {"final", "best", "latest"}
    device : torch.device or str

    Raises
    ------
    FileNotFoundError
        If the checkpoint is not there (the message lists the trained folds).
    CheckpointError
        If the file holds anything but tensors and plain data (refused without running it), or was written for other
        plans, another configuration, another network, other context slices (2.5D) or other parameter shapes, or if
        ``plans.json`` was edited after training in an entry the fold took from it.
    """
    if checkpoint not in CHECKPOINT_NAMES:
        raise ValueError(f"checkpoint must be one of {', '.join(CHECKPOINT_NAMES)}, got {checkpoint!r}")
    plans.configuration(configuration)
    layout = ResultsLayout(model_dir)
    path = layout.checkpoint(configuration, fold, checkpoint)
    if not path.is_file():
        available = trained_folds(model_dir, configuration, checkpoint)
        listed = ", ".join(str(f) for f in available) or "none"
        raise FileNotFoundError(
            f"{path}: no such checkpoint; trained folds of {configuration} with {checkpoint_file(checkpoint)}: {listed}. "
            "Pass the folds that exist (-f) or train the missing ones"
        )
    state = load_checkpoint(path, map_location="cpu", expected_parameters=_expected_parameters(layout, plans, configuration, fold))
    record, described_by = _fold_record(layout, plans, configuration, fold, state, path)
    _check_metadata(state, path, record, described_by)
    check_against_plans(record, plans, str(layout.fold_record(configuration, fold) if described_by == "fold.json" else path))
    try:
        network = build_network(
            record.configuration.to_dict(), record.in_channels, record.num_classes, deep_supervision=False
        )
    except PlansError as err:
        raise CheckpointError(f"{path}: the network it was trained with cannot be built here: {err}") from None
    _check_parameters(state["network_weights"], network.state_dict(), path, configuration, described_by)
    network.load_state_dict(state["network_weights"])
    network.eval()
    network.to(device)
    if torch.device(device).type == "cpu":
        prepare_for_cpu_speed(network)  # channels-last: oneDNN's fast 3D convolutions, about 2x in bfloat16
    if record.resampling_backend not in RESAMPLING_BACKENDS:
        raise CheckpointError(
            f"{path}: unknown resampling backend {record.resampling_backend!r} in the fold's record (known: "
            f"{', '.join(RESAMPLING_BACKENDS)}); the file was written by a newer autounet or edited: train again or "
            "update autounet"
        )
    trained = record.configuration
    return TrainedFold(configuration, fold, path, network, _mirror_axes(record, plans), trained.patch_size,
                       trained.context_slices, record.resampling_backend, record)


def _fold_record(
    layout: ResultsLayout, plans: Plans, configuration: str, fold: Fold, state: dict[str, Any], path: Path
) -> tuple[FoldRecord, str]:
    """The fold's record and what it was read from: ``fold.json``, else what the checkpoint holds."""
    record_path = layout.fold_record(configuration, fold)
    if not record_path.is_file():  # trained before fold records existed
        described_by = "the checkpoint's configuration_plan" if isinstance(state.get("configuration_plan"), dict) else "plans.json"
        try:
            return record_from_checkpoint(state, plans, configuration, fold), described_by
        except CheckpointError as err:
            raise CheckpointError(f"{path}: {err}") from None
    record = read_fold_record(record_path)
    if record.name != configuration:
        raise CheckpointError(f"{record_path}: the record of configuration {record.name!r} lies in the folder of "
                              f"{configuration}; the model folder was rearranged: retrain, or restore it")
    stored = state.get("configuration_plan")
    if isinstance(stored, dict):
        trained = record.configuration.to_dict()
        differing = [key for key in INFERENCE_FIELDS if key in stored and stored[key] != trained.get(key)]
        if differing:
            raise CheckpointError(
                f"{record_path} and {path.name} do not belong together ({differing[0]}: record "
                f"{trained.get(differing[0])!r}, checkpoint {stored[differing[0]]!r}); the fold is being trained "
                "again, or files were copied between folds: wait for the training to finish, or retrain"
            )
    return record, "fold.json"


def _expected_parameters(
    layout: ResultsLayout, plans: Plans, configuration: str, fold: Fold
) -> Callable[[CheckpointLayout], int | None]:
    """How many parameters the fold's checkpoint may hold: its fold record's network, else the plans' (with the
    family the checkpoint names)."""

    def count(checkpoint_layout: CheckpointLayout) -> int | None:
        record_path = layout.fold_record(configuration, fold)
        if record_path.is_file():
            try:
                record = read_fold_record(record_path)
            except Exception:  # noqa: BLE001
                return None  # the record's own problem is reported when it is read below
            return _parameter_count(record.configuration.to_dict(), record.in_channels, record.num_classes)
        plan = plans.configuration(configuration)
        return planned_parameter_count(plans, plan, checkpoint_layout.texts.get("network"))

    return count


def _parameter_count(configuration: dict[str, Any], in_channels: int, num_classes: int) -> int | None:
    try:
        with torch.device("meta"):
            module = build_network(configuration, in_channels, num_classes, deep_supervision=True)
        return sum(tensor.numel() for tensor in module.state_dict().values())
    except Exception:  # an unusual plug-in may not build on the meta device; the bound is a courtesy
        return None


def planned_parameter_count(plans: Plans, plan: ConfigurationPlan, network: str | None = None) -> int | None:
    """Parameters and buffers of the network ``plan`` describes, counted without allocating it (meta device).

    Parameters
    ----------
    plans : Plans
        The model's plans (channels, classes).
    plan : ConfigurationPlan
        The configuration.
    network : str, optional
        The network family a checkpoint names (a trainer override), instead of the plan's.

    Returns
    -------
    int or None
        None when the network cannot be built from the plans (the checkpoint's own record decides then).
    """
    return _parameter_count({**plan.to_dict(), "network": network or plan.network}, network_input_channels(plans, plan),
                            plans.num_classes)


def load_trained_folds(
    model_dir: PathType,
    plans: Plans,
    configuration: str,
    folds: Sequence[Fold] | None,
    checkpoint: CheckpointName = "final",
    device: torch.device | str = "cpu",
) -> list[TrainedFold]:
    """:func:`load_trained_fold` for several folds; ``folds=None`` takes every trained fold."""
    if configuration not in plans.configurations:
        available = ", ".join(plans.configurations) or "(none)"
        raise PlansError(f"no configuration {configuration!r} in {ResultsLayout(model_dir).plans}; planned: {available}")
    if folds is None:
        folds = trained_folds(model_dir, configuration, checkpoint)
        if not folds:
            trained = ", ".join(trained_configurations(model_dir, plans, checkpoint)) or "none"
            raise MissingStageError(
                f"{ResultsLayout(model_dir).configuration(configuration)}: no trained fold with {checkpoint_file(checkpoint)}; "
                f"configurations with trained folds: {trained}. Train it first (autounet train)"
            )
    return [load_trained_fold(model_dir, plans, configuration, _parse_fold(f), checkpoint, device) for f in folds]


def _check_metadata(state: dict[str, Any], path: Path, record: FoldRecord, described_by: str) -> None:
    expected = {"plans_version": record.plans_version, "configuration": record.name,
                "network": record.configuration.network}
    where = "the model folder's plans.json" if described_by == "plans.json" else f"its {described_by}"
    for key, value in expected.items():
        if state.get(key) != value:
            raise CheckpointError(
                f"{path}: written for {key} {state.get(key)!r} but {where} says {value!r}; "
                "the plans and the checkpoints of this model folder do not belong together. Use the plans.json the "
                "model was trained with (or retrain)"
            )
    if not isinstance(state.get("network_weights"), dict):
        raise CheckpointError(f"{path}: 'network_weights' is not a dict of tensors; the file is not an autounet checkpoint")


def _check_parameters(
    weights: dict[str, Any], expected: dict[str, torch.Tensor], path: Path, configuration: str, described_by: str
) -> None:
    missing = [name for name in expected if name not in weights]
    unexpected = [name for name in weights if name not in expected]
    not_tensors = [name for name in expected if name in weights and not isinstance(weights[name], torch.Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"{path}: 'network_weights' holds {type(weights[not_tensors[0]]).__name__} instead of a tensor for "
            f"{', '.join(not_tensors[:3])}; the file is not an autounet checkpoint (or was edited): retrain or ask "
            "its author for the original"
        )
    wrong = [
        f"{name}: checkpoint {tuple(weights[name].shape)}, plans {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in weights and weights[name].shape != tensor.shape
    ]
    if missing or unexpected or wrong:
        details = "; ".join(
            part
            for part in (
                f"shapes differ ({', '.join(wrong[:3])}{', ...' if len(wrong) > 3 else ''})" if wrong else "",
                f"missing parameters ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})" if missing else "",
                f"unexpected parameters ({', '.join(unexpected[:3])}{', ...' if len(unexpected) > 3 else ''})"
                if unexpected
                else "",
            )
            if part
        )
        raise CheckpointError(
            f"{path}: the weights do not fit the network that {described_by} describes for {configuration}: {details}. "
            "The plans were changed after training (or come from another model); use the plans.json the model was "
            "trained with"
        )


def _parse_fold(fold: Any) -> Fold:
    if isinstance(fold, str) and fold.isdigit():
        fold = int(fold)
    if fold not in FOLD_NAMES:
        raise ValueError(f"fold must be 0..4 or 'all', got {fold!r}")
    return fold


def _mirror_axes(record: FoldRecord, plans: Plans) -> tuple[int, ...] | None:
    """Patch axes test-time mirroring flips: the fold record's, else the plans' ``training.inference_mirror_axes``
    (set by hand), else None (every patch axis, as nnU-Net, also for anisotropic data)."""
    planned = plans.configuration(record.name).training
    axes = record.inference_mirror_axes
    if axes is None:
        axes = planned.inference_mirror_axes
    if axes is None and planned.extra.get("mirror_axes") is not None:
        axes = tuple(int(a) for a in planned.extra["mirror_axes"])
    if axes is not None and any(not 0 <= a < record.configuration.ndim for a in axes):
        raise CheckpointError(f"mirror axes {axes} do not fit the {record.configuration.ndim}D patch of {record.name}")
    return axes
