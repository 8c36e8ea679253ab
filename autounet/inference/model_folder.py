"""Open a trained model folder safely: check the plans, the checkpoints and the architecture before using them.

A model folder is ``RESULTS/<dataset_name>`` (docs/architecture.md): ``plans.json``, ``dataset.json`` and
``<configuration>/fold_<k>/checkpoint_<final|best|latest>.pt``. It may come from someone else, so nothing in it is
unpickled: plans are JSON and checkpoints load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import torch
from torch import nn

from autounet.errors import MissingStageError, PlansError
from autounet.networks import build_network
from autounet.networks.cpu_speed import prepare_for_cpu_speed
from autounet.planners.plans import ConfigurationPlan, Plans, load_plans, network_input_channels
from autounet.preprocessing.resampling import RESAMPLING_BACKENDS
from autounet.trainers.checkpoint import CheckpointError, load_checkpoint
from autounet.typing import PathType

logger = logging.getLogger(__name__)

PLANS_FILE = "plans.json"
CHECKPOINT_NAMES = ("final", "best", "latest")
#: Fold names the trainer writes (``fold_0`` .. ``fold_4`` and ``fold_all``).
FOLD_NAMES: tuple[Union[int, str], ...] = (0, 1, 2, 3, 4, "all")

Fold = Union[int, str]
CheckpointName = Literal["final", "best", "latest"]


@dataclass(frozen=True)
class TrainedFold:
    """One fold's network, loaded and checked, ready for inference (eval mode, no deep supervision)."""

    configuration: str
    fold: Fold
    path: Path
    network: nn.Module
    mirror_axes: tuple[int, ...] | None
    patch_size: tuple[int, ...]
    context_slices: int = 0
    resampling_backend: str = "auto"


def read_model_plans(model_dir: PathType) -> Plans:
    """The plans of a model folder; a missing or unusable file raises an error saying what to pass instead."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: model folder not found; pass RESULTS/<dataset> (the folder with plans.json)")
    plans_path = model_dir / PLANS_FILE
    if not plans_path.is_file():
        hint = ""
        children = [p.name for p in model_dir.iterdir() if (p / PLANS_FILE).is_file()]
        if children:
            hint = f"; did you mean {model_dir / children[0]}?"
        raise MissingStageError(f"{model_dir}: no {PLANS_FILE}, so this is not a model folder{hint}")
    return load_plans(plans_path)


def trained_folds(model_dir: PathType, configuration: str, checkpoint: CheckpointName = "final") -> list[Fold]:
    """Folds of ``configuration`` that have ``checkpoint_<checkpoint>.pt``, in the order 0..4, all."""
    folder = Path(model_dir) / configuration
    return [fold for fold in FOLD_NAMES if (folder / f"fold_{fold}" / f"checkpoint_{checkpoint}.pt").is_file()]


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
    """Load one fold after checking that its checkpoint matches the plans.

    Raises
    ------
    FileNotFoundError
        If the checkpoint is not there (the message lists the trained folds).
    CheckpointError
        If the file holds anything but tensors and plain data (refused without running it), or was written for other
        plans, another configuration, another network, other context slices (2.5D) or other parameter shapes.
    """
    if checkpoint not in CHECKPOINT_NAMES:
        raise ValueError(f"checkpoint must be one of {', '.join(CHECKPOINT_NAMES)}, got {checkpoint!r}")
    plan = plans.configuration(configuration)
    path = Path(model_dir) / configuration / f"fold_{fold}" / f"checkpoint_{checkpoint}.pt"
    if not path.is_file():
        available = trained_folds(model_dir, configuration, checkpoint)
        listed = ", ".join(str(f) for f in available) or "none"
        raise FileNotFoundError(
            f"{path}: no such checkpoint; trained folds of {configuration} with checkpoint_{checkpoint}.pt: {listed}. "
            "Pass the folds that exist (-f) or train the missing ones"
        )
    state = load_checkpoint(path, map_location="cpu",
                            expected_parameters=lambda layout: planned_parameter_count(plans, plan, layout.texts.get("network")))
    recorded = state.get("training_config")
    overrides: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    # The trainer may override the plans' network family or patch size; the checkpoint records what it used.
    network_name = str(overrides.get("network") or plan.network)
    patch_size = tuple(int(p) for p in (overrides.get("patch_size") or plan.patch_size))
    if len(patch_size) != plan.ndim:
        raise CheckpointError(f"{path}: patch size {patch_size} does not fit the {plan.ndim}D configuration {configuration}")
    _check_metadata(state, path, plans, configuration, network_name)
    plan = _trained_context_slices(state, overrides, plan, path)
    try:
        network = build_network(
            {**plan.to_dict(), "network": network_name},
            network_input_channels(plans, plan),
            plans.num_classes,
            deep_supervision=False,
        )
    except PlansError as err:
        raise CheckpointError(f"{path}: the network it was trained with cannot be built here: {err}") from None
    _check_parameters(state["network_weights"], network.state_dict(), path, configuration)
    network.load_state_dict(state["network_weights"])
    network.eval()
    network.to(device)
    if torch.device(device).type == "cpu":
        prepare_for_cpu_speed(network)  # channels-last: oneDNN's fast 3D convolutions, about 2x in bfloat16
    backend = str(state.get("resampling_backend", "auto"))
    if backend not in RESAMPLING_BACKENDS:
        raise CheckpointError(
            f"{path}: unknown resampling backend {backend!r} in the checkpoint (known: {', '.join(RESAMPLING_BACKENDS)}); "
            "the file was written by a newer autounet or edited: train again or update autounet"
        )
    return TrainedFold(configuration, fold, path, network, _mirror_axes(state, plan), patch_size, plan.context_slices,
                       backend)


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
    try:
        with torch.device("meta"):
            module = build_network({**plan.to_dict(), "network": network or plan.network},
                                   network_input_channels(plans, plan), plans.num_classes, deep_supervision=True)
        return sum(tensor.numel() for tensor in module.state_dict().values())
    except Exception:  # an unusual plug-in may not build on the meta device; the bound is a courtesy
        return None


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
        raise PlansError(f"no configuration {configuration!r} in {Path(model_dir) / PLANS_FILE}; planned: {available}")
    if folds is None:
        folds = trained_folds(model_dir, configuration, checkpoint)
        if not folds:
            trained = ", ".join(trained_configurations(model_dir, plans, checkpoint)) or "none"
            raise MissingStageError(
                f"{Path(model_dir) / configuration}: no trained fold with checkpoint_{checkpoint}.pt; "
                f"configurations with trained folds: {trained}. Train it first (autounet train)"
            )
    return [load_trained_fold(model_dir, plans, configuration, _parse_fold(f), checkpoint, device) for f in folds]


def _check_metadata(state: dict[str, Any], path: Path, plans: Plans, configuration: str, network_name: str) -> None:
    expected = {"plans_version": plans.plans_version, "configuration": configuration, "network": network_name}
    for key, value in expected.items():
        if state.get(key) != value:
            raise CheckpointError(
                f"{path}: written for {key} {state.get(key)!r} but the model folder's plans.json says {value!r}; "
                "the plans and the checkpoints of this model folder do not belong together. Use the plans.json the "
                "model was trained with (or retrain)"
            )
    if not isinstance(state.get("network_weights"), dict):
        raise CheckpointError(f"{path}: 'network_weights' is not a dict of tensors; the file is not an autounet checkpoint")


def _trained_context_slices(
    state: dict[str, Any], overrides: dict[str, Any], plan: ConfigurationPlan, path: Path
) -> ConfigurationPlan:
    """The plan with the context slices the fold was trained with; refuse a checkpoint that disagrees with the plans.

    The trainer may override the plans' value (``autounet train --context-slices``) and records it in the training
    config; checkpoints from before 2.5D record nothing and were trained without context.
    """
    override = overrides.get("context_slices")
    expected = plan.context_slices if override is None else int(override)
    recorded = int(state.get("context_slices") or 0)
    if recorded != expected:
        raise CheckpointError(
            f"{path}: trained with context_slices={recorded} (2.5D input of {2 * recorded + 1} slices) but the model "
            f"folder's plans.json says context_slices={plan.context_slices}; the network would see other slices than "
            "it was trained on. Use the plans.json the model was trained with (or retrain)"
        )
    if expected == plan.context_slices:
        return plan
    try:
        return plan.replace(context_slices=expected)
    except PlansError as err:
        raise CheckpointError(f"{path}: {err}") from None


def _check_parameters(weights: dict[str, Any], expected: dict[str, torch.Tensor], path: Path, configuration: str) -> None:
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
            f"{path}: the weights do not fit the network that plans.json describes for {configuration}: {details}. "
            "The plans were changed after training (or come from another model); use the plans.json the model was "
            "trained with"
        )


def _parse_fold(fold: Any) -> Fold:
    if isinstance(fold, str) and fold.isdigit():
        fold = int(fold)
    if fold not in FOLD_NAMES:
        raise ValueError(f"fold must be 0..4 or 'all', got {fold!r}")
    return fold


def _mirror_axes(state: dict[str, Any], plan: ConfigurationPlan) -> tuple[int, ...] | None:
    """Mirror axes recorded by the trainer, if any (else every patch axis, as nnU-Net, also for anisotropic data)."""
    for source in (state, state.get("training_config") or {}, plan.training):
        value = source.get("inference_mirror_axes", source.get("mirror_axes")) if isinstance(source, dict) else None
        if value is not None:
            axes = tuple(int(a) for a in value)
            if any(not 0 <= a < plan.ndim for a in axes):
                raise CheckpointError(f"mirror axes {axes} do not fit the {plan.ndim}D patch of {plan.name}")
            return axes
    return None
