"""The fold record ``<configuration>/fold_<k>/fold.json``: what a fold was trained as, in plain JSON.

Training may override the plans (``autounet train --network / --patch-size / --batch-size / --context-slices``):
the network family, patch, batch, topology and 2.5D context are then planned again for the run. The record holds the
resulting *effective* configuration (the same schema as a configuration of ``plans.json``) and the inference
settings of the fold, and inference builds the network and chooses patch, context, mirroring and resampling backend
from it alone; ``plans.json`` is only the default the run started from. The record is written when training starts
(before any checkpoint), so every checkpoint of the fold has one.

The record also keeps the plans' values of what the run changed (``plans_values``), so a model folder whose
``plans.json`` was edited after training is recognised (:func:`check_against_plans`). Folds trained before records
existed are read from their checkpoint (:func:`record_from_checkpoint`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from autounet.errors import PlansError
from autounet.jsonio import read_json, write_json
from autounet.planners.plans import ConfigurationPlan, Plans, network_input_channels
from autounet.trained_fold.checkpoint import CheckpointError
from autounet.typing import PathType

#: Bump when an entry changes meaning.
FOLD_RECORD_VERSION = 1
#: Entries of a configuration that decide the network or what it sees: a fold and the model folder's plans.json must
#: agree on every one of them the training run did not override.
INFERENCE_FIELDS = (
    "spacing", "patch_size", "normalization", "resampling", "network", "network_kwargs", "features_per_stage",
    "kernel_sizes", "strides", "n_conv_per_stage", "n_conv_per_stage_decoder", "context_slices", "previous_stage",
)
#: Training options that override the plans' configuration (``TrainingConfig`` names).
OVERRIDE_OPTIONS = ("network", "patch_size", "batch_size", "context_slices")
#: Configuration entries a run plans again when it overrides the network family, the patch or the batch
#: (:func:`autounet.trainers.components.effective_configuration`).
TOPOLOGY_FIELDS = (
    "network", "network_kwargs", "patch_size", "batch_size", "features_per_stage", "kernel_sizes", "strides",
    "n_conv_per_stage", "n_conv_per_stage_decoder", "n_stages",
)


@dataclass(frozen=True)
class FoldRecord:
    """What one fold was trained as.

    Attributes
    ----------
    configuration : ConfigurationPlan
        The effective configuration: the plans' configuration with the run's overrides applied. The network is built
        from it; its patch and context slices drive the sliding window.
    fold : str
        ``"0"``..``"4"`` or ``"all"``.
    plans_version : int
        ``plans_version`` of the plans the fold was trained from.
    in_channels, num_classes : int
        Network input channels and output classes.
    label_values : tuple of int
        Label value of each output class.
    plans_values : dict
        The plans' values of the configuration entries the run changed (entry -> JSON value); empty without overrides.
    overrides : dict
        The run's override options as given (``network``, ``patch_size``, ``batch_size``, ``context_slices``).
    resampling_backend : str
        Backend the training data was resampled with; new images are preprocessed with the same one.
    inference_mirror_axes : tuple of int or None
        Patch axes test-time mirroring may flip; None leaves it to the model folder's plans (every axis by default).
    training : dict
        Options of the run that describe the weights: ``loss``, ``precision``, ``deep_supervision``.
    """

    configuration: ConfigurationPlan
    fold: str
    plans_version: int
    in_channels: int
    num_classes: int
    label_values: tuple[int, ...]
    plans_values: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    resampling_backend: str = "auto"
    inference_mirror_axes: tuple[int, ...] | None = None
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The configuration name (``2d``, ``3d_fullres``, ...)."""
        return self.configuration.name

    def planned_configuration(self) -> ConfigurationPlan:
        """The plans' configuration the run started from (the effective one with ``plans_values`` put back)."""
        data = {**self.configuration.to_dict(), **self.plans_values}
        return ConfigurationPlan.from_dict(self.name, data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``fold.json``."""
        return {
            "fold_record_version": FOLD_RECORD_VERSION,
            "configuration_name": self.name,
            "fold": self.fold,
            "plans_version": self.plans_version,
            "configuration": self.configuration.to_dict(),
            "overrides": dict(self.overrides),
            "plans_values": dict(self.plans_values),
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "label_values": list(self.label_values),
            "resampling_backend": self.resampling_backend,
            "inference_mirror_axes": None if self.inference_mirror_axes is None else list(self.inference_mirror_axes),
            "training": dict(self.training),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FoldRecord":
        """Inverse of :meth:`to_dict`.

        Parameters
        ----------
        data : mapping
            The JSON object of a ``fold.json``.

        Raises
        ------
        KeyError, PlansError, ValueError
            For a missing entry, a record newer than this autounet or a value of the wrong type
            (:func:`read_fold_record` turns them into one message).
        """
        version = int(data.get("fold_record_version", 0))
        if version > FOLD_RECORD_VERSION:
            raise PlansError(f"fold record version {version} is newer than this autounet understands "
                             f"({FOLD_RECORD_VERSION}); upgrade autounet")
        axes = data.get("inference_mirror_axes")
        return cls(
            configuration=ConfigurationPlan.from_dict(str(data["configuration_name"]), dict(data["configuration"])),
            fold=str(data["fold"]),
            plans_version=int(data["plans_version"]),
            in_channels=int(data["in_channels"]),
            num_classes=int(data["num_classes"]),
            label_values=tuple(int(v) for v in data["label_values"]),
            plans_values=dict(data.get("plans_values") or {}),
            overrides=dict(data.get("overrides") or {}),
            resampling_backend=str(data.get("resampling_backend", "auto")),
            inference_mirror_axes=None if axes is None else tuple(int(a) for a in axes),
            training=dict(data.get("training") or {}),
        )


def make_fold_record(
    plans: Plans,
    effective: ConfigurationPlan,
    fold: object,
    overrides: Mapping[str, Any],
    resampling_backend: str = "auto",
    training: Mapping[str, Any] | None = None,
) -> FoldRecord:
    """The record of a fold that trains ``effective``, derived from ``plans`` with ``overrides``.

    Parameters
    ----------
    plans : Plans
        The plans the run started from.
    effective : ConfigurationPlan
        The configuration the run trains (the plans' one with the overrides applied).
    fold : int or str
        The fold.
    overrides : mapping
        The run's override options (``None`` values are left out).
    resampling_backend : str
        Backend the preprocessed training data was made with.
    training : mapping, optional
        Options that describe the weights (loss, precision, deep supervision).
    """
    planned = plans.configuration(effective.name).to_dict()
    trained = effective.to_dict()
    may_change = fields_overridden(overrides)
    changed = {key: planned[key] for key in trained if key in may_change and trained[key] != planned.get(key)}
    axes = effective.training.inference_mirror_axes
    return FoldRecord(
        configuration=effective,
        fold=str(fold),
        plans_version=plans.plans_version,
        in_channels=network_input_channels(plans, effective),
        num_classes=plans.num_classes,
        label_values=plans.label_values,
        plans_values=changed,
        overrides={key: _plain(value) for key, value in overrides.items() if value is not None},
        resampling_backend=resampling_backend,
        inference_mirror_axes=axes,
        training=dict(training or {}),
    )


def fields_overridden(overrides: Mapping[str, Any]) -> set[str]:
    """Configuration entries a run with these override options may change (the rest come from the plans as they are).

    Parameters
    ----------
    overrides : mapping
        Override options (``network``, ``patch_size``, ``batch_size``, ``context_slices``); None means not given.

    Examples
    --------
    >>> sorted(fields_overridden({"context_slices": 2, "network": None}))
    ['context_slices']
    """
    changed: set[str] = set()
    if any(overrides.get(key) is not None for key in ("network", "patch_size", "batch_size")):
        changed.update(TOPOLOGY_FIELDS)
    if overrides.get("context_slices") is not None:
        changed.add("context_slices")
    return changed


def write_fold_record(path: PathType, record: FoldRecord) -> Path:
    """Write ``record`` to ``path`` (``fold.json``) atomically.

    Parameters
    ----------
    path : str or Path
        From :meth:`autounet.layout.ResultsLayout.fold_record`.
    record : FoldRecord
    """
    write_json(path, record.to_dict())
    return Path(path)


def read_fold_record(path: PathType) -> FoldRecord:
    """The fold record at ``path``.

    Parameters
    ----------
    path : str or Path
        A ``fold.json``.

    Raises
    ------
    FileNotFoundError
        When there is no record (a fold trained before records existed: use :func:`record_from_checkpoint`).
    CheckpointError
        When the file is not a fold record (damaged or edited), naming what is wrong.
    """
    path = Path(path)
    try:
        data = read_json(path)
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, found {type(data).__name__}")
        return FoldRecord.from_dict(data)
    except FileNotFoundError:
        raise
    except (PlansError, KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        detail = f"missing entry {err.args[0]!r}" if isinstance(err, KeyError) else str(err)
        raise CheckpointError(
            f"{path}: not a usable fold record ({detail}); it was damaged or edited: retrain the fold, or delete the "
            "file to fall back to what the checkpoint records"
        ) from None


def record_from_checkpoint(state: Mapping[str, Any], plans: Plans, configuration: str, fold: object) -> FoldRecord:
    """The record of a fold trained before ``fold.json`` existed, from what its checkpoint holds.

    The effective configuration is the checkpoint's ``configuration_plan`` when it has one; older checkpoints record
    only the override options (``training_config``), which are applied to the plans' configuration as the trainer of
    that time did (network family, patch size and context slices; no topology).

    Parameters
    ----------
    state : mapping
        From :func:`autounet.trained_fold.checkpoint.load_checkpoint`.
    plans : Plans
        The model folder's plans.
    configuration : str
        The configuration the checkpoint belongs to.
    fold : int or str
    """
    plan = plans.configuration(configuration)
    recorded = state.get("training_config")
    options: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    overrides = {key: options.get(key) for key in OVERRIDE_OPTIONS}
    stored = state.get("configuration_plan")
    if isinstance(stored, dict):
        try:
            effective = ConfigurationPlan.from_dict(configuration, stored)
        except (PlansError, KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"its configuration_plan cannot be read ({err}); retrain the fold") from None
    else:  # before configuration_plan was stored: the trainer overrode family and patch only, no topology
        patch_size = tuple(int(p) for p in (options.get("patch_size") or plan.patch_size))
        if len(patch_size) != plan.ndim:
            raise CheckpointError(f"patch size {patch_size} does not fit the {plan.ndim}D configuration {configuration}")
        effective = plan.replace(network=str(options.get("network") or plan.network), patch_size=patch_size)
        effective = _with_context(effective, int(state.get("context_slices") or 0))
    record = make_fold_record(plans, effective, fold, overrides, str(state.get("resampling_backend", "auto")))
    return replace(record, inference_mirror_axes=_recorded_mirror_axes(state, options))


def check_against_plans(record: FoldRecord, plans: Plans, source: str) -> None:
    """Refuse a model folder whose ``plans.json`` no longer describes what the fold took from it.

    Every entry of :data:`INFERENCE_FIELDS` the run did not override must be what ``plans.json`` says now, and the
    labels and input channels must match: otherwise the plans were edited (or replaced) after training.

    Parameters
    ----------
    record : FoldRecord
    plans : Plans
        The model folder's plans.
    source : str
        What the record was read from (named in messages).

    Raises
    ------
    CheckpointError
        Naming the first entry that differs, its trained and its current value, and what to do.
    """
    fix = "the plans were changed after training; use the plans.json the model was trained with (or retrain)"
    if record.plans_version != plans.plans_version:
        raise CheckpointError(f"{source}: written for plans_version {record.plans_version!r} but the model folder's "
                              f"plans.json says {plans.plans_version!r}; {fix}")
    if tuple(record.label_values) != tuple(plans.label_values):
        raise CheckpointError(f"{source}: trained for label values {list(record.label_values)} but the model folder's "
                              f"plans.json has {list(plans.label_values)}; {fix}")
    planned = record.planned_configuration().to_dict()
    now = plans.configuration(record.name).to_dict()
    for key in INFERENCE_FIELDS:
        if key not in record.plans_values and planned.get(key) != now.get(key):
            raise CheckpointError(
                f"{source}: trained with {key}={_shown(planned.get(key))} but the model folder's plans.json says "
                f"{key}={_shown(now.get(key))}; {fix}"
            )
    channels = network_input_channels(plans, record.configuration)
    if channels != record.in_channels:
        raise CheckpointError(f"{source}: trained on {record.in_channels} input channels but the model folder's "
                              f"plans.json gives {channels}; {fix}")


def _with_context(plan: ConfigurationPlan, context_slices: int) -> ConfigurationPlan:
    try:
        return plan.replace(context_slices=context_slices)
    except PlansError as err:
        raise CheckpointError(str(err)) from None


def _recorded_mirror_axes(state: Mapping[str, Any], options: Mapping[str, Any]) -> tuple[int, ...] | None:
    for source in (state, options):
        value = source.get("inference_mirror_axes", source.get("mirror_axes"))
        if value is not None:
            return tuple(int(a) for a in value)
    return None


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
