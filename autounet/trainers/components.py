"""Turn plans + a :class:`TrainingConfig` into what a fold trains: the effective configuration, network and loss."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autounet.errors import MissingStageError, PlansError
from autounet.losses import LOSSES, DeepSupervisionLoss, create_loss, deep_supervision_scales, deep_supervision_weights
from autounet.networks import NETWORKS, build_network
from autounet.planners.plans import ConfigurationPlan, Plans, load_plans, network_input_channels
from autounet.safe_names import child_path
from autounet.trainers.config import OUTPUT_BIAS_CHOICES, TrainingConfig

logger = logging.getLogger(__name__)

PLANS_FILE = "plans.json"
PREPROCESSED_FOLDER = "preprocessed"


def read_plans(results_dir: Path) -> Plans:
    """``results_dir/plans.json``, or a message naming the command that makes it."""
    path = Path(results_dir) / PLANS_FILE
    if not path.is_file():
        raise MissingStageError(
            f'no plans in {results_dir}; run "autounet plan DATASET -o {path}" first '
            '(or give "autounet train" the dataset folder to run the missing stages)'
        )
    return load_plans(path)


def open_store(results_dir: Path, configuration: ConfigurationPlan) -> Any:
    """The preprocessed store of ``configuration``, or a message naming the command that makes it."""
    from autounet.preprocessing import open_preprocessed

    folder = child_path(Path(results_dir) / PREPROCESSED_FOLDER, configuration.data_identifier or configuration.name,
                        "data_identifier", Path(results_dir) / PLANS_FILE)
    if not folder.is_dir():
        raise MissingStageError(
            f"no preprocessed data for {configuration.name} in {folder}; run "
            f'"autounet preprocess DATASET -o {results_dir} -c {configuration.name}" first'
        )
    return open_preprocessed(folder)


def effective_configuration(plans: Plans, name: str, config: TrainingConfig, num_cases: int) -> ConfigurationPlan:
    """The plans' configuration with the run's overrides (network family, batch, patch, context slices) applied.

    A new patch or batch is passed to the planner's :func:`~autounet.planners.plan_configuration` so that the
    network topology follows the new patch exactly as ``autounet plan --patch-size`` would derive it. Another
    network family gets the patch and batch the planner gives that family under the plans' memory budget (unless
    the run fixes them too), so a heavier family still fits.

    Raises
    ------
    PlansError
        For an unknown configuration, network family or a patch the network cannot use.
    """
    configuration = plans.configuration(name)
    network = config.network or configuration.network
    if network not in NETWORKS:
        try:
            NETWORKS.get(network)
        except KeyError as err:
            raise PlansError(f"{err.args[0]} (--network)") from None
    family_changed = network != configuration.network
    if family_changed:
        # Family-specific arguments of another family do not carry over.
        configuration = configuration.replace(network=network, network_kwargs={})
    if config.context_slices is not None and config.context_slices != configuration.context_slices:
        try:
            configuration = configuration.replace(context_slices=config.context_slices)
        except PlansError as err:
            raise PlansError(f"{err} (--context-slices)") from None
    if config.patch_size is None and config.batch_size is None and not family_changed:
        return configuration
    if config.patch_size is not None and len(config.patch_size) != configuration.ndim:
        raise PlansError(
            f"--patch-size has {len(config.patch_size)} values but {name} patches have {configuration.ndim} axes; "
            f"pass {configuration.ndim} values"
        )
    from autounet.planners import plan_configuration

    median = configuration.median_image_size_in_voxels or tuple(float(p) for p in configuration.patch_size)
    result = plan_configuration(
        name,
        configuration.spacing,
        median,
        float(np.prod(median)) * max(num_cases, 1),
        configuration.normalization,
        memory_budget_gb=plans.memory_budget_gb,
        num_classes=plans.num_classes,
        network=network,
        network_kwargs=configuration.network_kwargs,
        # Another family has other memory needs: what the run does not fix is planned again for it, under the
        # plans' memory budget, as "autounet plan --network" would.
        patch_size=config.patch_size or (None if family_changed else configuration.patch_size),
        batch_size=config.batch_size or (None if family_changed else configuration.batch_size),
        base_features=configuration.features_per_stage[0],
        batch_dice=configuration.batch_dice,
    )
    for note in result.notes:
        logger.warning("%s", note)
    replanned = result.plan
    return configuration.replace(
        patch_size=replanned.patch_size,
        batch_size=replanned.batch_size,
        features_per_stage=replanned.features_per_stage,
        kernel_sizes=replanned.kernel_sizes,
        strides=replanned.strides,
        n_conv_per_stage=replanned.n_conv_per_stage,
        n_conv_per_stage_decoder=replanned.n_conv_per_stage_decoder,
    )


def estimate_configuration_memory(plans: Plans, configuration: ConfigurationPlan) -> float:
    """The planner's activation-memory estimate of one sample of ``configuration``, in its proxy units."""
    from autounet.planners.memory import estimate_memory

    return estimate_memory(
        configuration.network, configuration.patch_size, configuration.features_per_stage, configuration.strides,
        configuration.n_conv_per_stage, configuration.n_conv_per_stage_decoder, plans.num_classes,
        configuration.network_kwargs,
    )


def estimated_training_memory_gb(plans: Plans, configuration: ConfigurationPlan) -> float:
    """GPU memory of one training step of ``configuration`` by the planner's model, in GB (proxy units scaled by
    the 8 GB calibration, ``autounet.planners.memory``)."""
    from autounet.planners.memory import memory_budget, reference_batch_size

    ndim = configuration.ndim
    per_sample = estimate_configuration_memory(plans, configuration)
    return per_sample * configuration.batch_size / reference_batch_size(ndim) / memory_budget(ndim, 1.0)


def network_description(configuration: ConfigurationPlan) -> dict[str, Any]:
    """What :func:`autounet.networks.build_network` needs, as plain data (also stored in checkpoints)."""
    data = configuration.to_dict()
    return {
        key: data[key]
        for key in (
            "network",
            "network_kwargs",
            "features_per_stage",
            "kernel_sizes",
            "strides",
            "n_conv_per_stage",
            "n_conv_per_stage_decoder",
            "patch_size",
        )
    }


def make_network(
    configuration: ConfigurationPlan, plans: Plans, deep_supervision: bool, output_bias: str = "prior"
) -> nn.Module:
    """Build the configuration's network (float32, CPU, He-initialised; seed torch first for reproducibility).

    ``output_bias="prior"`` starts the output bias at the logarithm of the plans' ``class_prior`` (zero when the
    plans have none); ``"zero"`` keeps nnU-Net's zero bias.
    """
    if output_bias not in OUTPUT_BIAS_CHOICES:
        raise ValueError(f"output_bias must be one of {', '.join(OUTPUT_BIAS_CHOICES)}, got {output_bias!r}")
    return build_network(
        network_description(configuration),
        network_input_channels(plans, configuration),
        plans.num_classes,
        deep_supervision=deep_supervision,
        class_prior=plans.class_prior if output_bias == "prior" else None,
    )


#: Weight of the lowest-resolution output in multi-process runs instead of 0: DistributedDataParallel refuses
#: parameters that get no gradient (nnU-Net does the same).
DDP_LOWEST_LEVEL_WEIGHT = 1e-6


def make_loss(
    name: str, kwargs: dict[str, Any], configuration: ConfigurationPlan, deep_supervision: bool, distributed: bool = False
) -> nn.Module:
    """The registry loss ``name`` (with the plans' ``batch_dice`` when it takes one), wrapped for deep supervision.

    Deep-supervision weights halve per level and the lowest level gets 0 (:func:`deep_supervision_weights`);
    with ``distributed`` it gets :data:`DDP_LOWEST_LEVEL_WEIGHT` so every parameter receives a gradient.

    Raises
    ------
    KeyError
        For an unknown loss name, listing the available ones.
    """
    factory = LOSSES.get(name)
    arguments = dict(kwargs)
    try:
        accepts_batch_dice = "batch_dice" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        accepts_batch_dice = False
    if accepts_batch_dice:
        arguments.setdefault("batch_dice", configuration.batch_dice)
    loss = create_loss(name, **arguments)
    if not deep_supervision:
        return loss
    weights = deep_supervision_weights(configuration.n_stages - 1)
    if distributed and len(weights) > 1:
        weights[-1] = DDP_LOWEST_LEVEL_WEIGHT
    return DeepSupervisionLoss(loss, weights)


def supervision_scales(configuration: ConfigurationPlan, deep_supervision: bool) -> list[tuple[float, ...]] | None:
    """Per-output target scales for deep supervision (full resolution first), or None without it."""
    if not deep_supervision:
        return None
    return deep_supervision_scales([list(s) for s in configuration.strides])


def cpu_memory_format(configuration: ConfigurationPlan, device: torch.device) -> torch.memory_format:
    """Channels-last on the CPU (oneDNN's preferred layout: faster convolutions), the default elsewhere."""
    if device.type != "cpu":
        return torch.contiguous_format
    return torch.channels_last_3d if configuration.ndim == 3 else torch.channels_last
