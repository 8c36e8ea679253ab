"""Rules a usable plans file obeys, checked once when it is loaded: a hand-edited value gets one refusal naming the
field, never a raw Python error per case or silently wrong labels later."""

from __future__ import annotations

import math
from typing import Any

from autounet.safe_names import name_problem

#: Largest patch (voxels) a plan may ask for: 512**3. Every float32 copy of such a patch takes 0.5 GB per channel and
#: batch item; nnU-Net's planner stays far below it even for 80 GB GPUs (about 256**3).
MAX_PATCH_VOXELS = 512**3
#: Longest patch axis: 2D configurations of large images (histology tiles) stay well below it.
MAX_PATCH_AXIS = 8192
#: Largest label value: the widest label map type autounet writes is int32.
MAX_LABEL_VALUE = 2**31 - 1
#: Spline orders scipy's resampling supports.
RESAMPLING_ORDERS = range(0, 6)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def configuration_problems(name: str, configuration: Any, num_channels: int, configurations: dict[str, Any]) -> list[str]:
    """Problems of one :class:`~autounet.planners.plans.ConfigurationPlan`, each naming its field.

    Parameters
    ----------
    name : str
        The configuration's name in the plans.
    configuration : ConfigurationPlan
        The configuration.
    num_channels : int
        Image channels of the plans.
    configurations : dict
        Every configuration of the plans (for ``previous_stage``).

    Returns
    -------
    list of str
        ``"configurations.3d_fullres.patch_size [0, 64, 64]: ..."``; empty when the configuration is usable.
    """
    field = f"configurations.{name}"
    problems = []
    ndim = len(configuration.patch_size)
    if ndim not in (2, 3):
        problems.append(f"{field}.patch_size {list(configuration.patch_size)}: needs 2 or 3 axes")
    if len(configuration.spacing) != ndim:
        problems.append(f"{field}.spacing {list(configuration.spacing)}: needs one value per patch axis ({ndim})")
    if any(not math.isfinite(s) or s <= 0 for s in configuration.spacing):
        problems.append(f"{field}.spacing {list(configuration.spacing)}: every spacing must be a positive number (mm)")
    patch = configuration.patch_size
    if any(p < 1 for p in patch):
        problems.append(f"{field}.patch_size {list(patch)}: every axis needs at least 1 voxel")
    elif any(p > MAX_PATCH_AXIS for p in patch) or math.prod(patch) > MAX_PATCH_VOXELS:
        problems.append(f"{field}.patch_size {list(patch)}: {math.prod(patch):.3g} voxels; at most {MAX_PATCH_AXIS} per "
                        f"axis and {MAX_PATCH_VOXELS:.3g} in all (512**3) can be trained or predicted")
    if configuration.batch_size < 1:
        problems.append(f"{field}.batch_size {configuration.batch_size}: needs at least 1")
    stages = len(configuration.features_per_stage)
    if stages < 1 or any(f < 1 for f in configuration.features_per_stage):
        problems.append(f"{field}.features_per_stage {list(configuration.features_per_stage)}: needs positive widths")
    for key in ("kernel_sizes", "strides"):
        values = getattr(configuration, key)
        if len(values) != stages or any(len(v) != ndim or any(k < 1 for k in v) for v in values):
            problems.append(f"{field}.{key} {[list(v) for v in values]}: needs {stages} entries of {ndim} positive "
                            "numbers (one per stage and axis)")
    if len(configuration.normalization) != num_channels:
        problems.append(f"{field}.normalization: {len(configuration.normalization)} entries for {num_channels} "
                        "channel(s); give one per channel")
    resampling = configuration.resampling
    for key in ("data_order", "label_order", "order_z"):
        if getattr(resampling, key) not in RESAMPLING_ORDERS:
            problems.append(f"{field}.resampling.{key} {getattr(resampling, key)}: a spline order 0-5")
    identifier = configuration.data_identifier or name
    problem = name_problem(identifier)
    if problem is not None:
        problems.append(f"{field}.data_identifier {identifier!r}: {problem}; it names a folder, so use letters, "
                        "digits, '_', '-' and '.'")
    if configuration.previous_stage is not None and configuration.previous_stage not in configurations:
        problems.append(f"{field}.previous_stage {configuration.previous_stage!r}: no such configuration")
    return problems


def plans_problems(plans: Any) -> list[str]:
    """Every problem of a :class:`~autounet.planners.plans.Plans` that would break training or prediction.

    Parameters
    ----------
    plans : Plans
        Loaded plans (possibly edited by hand).

    Returns
    -------
    list of str
        One line per problem, each naming its field; empty when the plans are usable.

    Examples
    --------
    >>> from autounet.planners.plans import ChannelNormalization, ConfigurationPlan, Plans
    >>> conf = ConfigurationPlan("3d_fullres", (1.0, 1.0, 0.0), (0, 64, 64), 2, (), (ChannelNormalization("zscore"),),
    ...                          (4, 8), ((3, 3, 3), (3, 3, 3)), ((1, 1, 1), (2, 2, 2)), (1, 1), (1,))
    >>> plans = Plans("D", ("MRI",), {"background": 0, "x": 70000, "y": -1}, (0, 1, 2), (0, 1, 2), (1.0,) * 3,
    ...               (9.0,) * 3, {"3d_fullres": conf})
    >>> for problem in plans_problems(plans):
    ...     print(problem)
    labels {'background': 0, 'x': 70000, 'y': -1}: label values must be whole numbers 0..2147483647 (y=-1)
    configurations.3d_fullres.spacing [1.0, 1.0, 0.0]: every spacing must be a positive number (mm)
    configurations.3d_fullres.patch_size [0, 64, 64]: every axis needs at least 1 voxel
    """
    problems = []
    if not plans.channel_names:
        problems.append("channel_names []: needs at least one channel")
    bad_labels = [f"{k}={v}" for k, v in plans.labels.items() if not _is_int(v) or not 0 <= v <= MAX_LABEL_VALUE]
    if bad_labels:
        problems.append(f"labels {dict(plans.labels)}: label values must be whole numbers 0..{MAX_LABEL_VALUE} "
                        f"({', '.join(bad_labels[:5])})")
    if 0 not in plans.labels.values():
        problems.append(f"labels {dict(plans.labels)}: the background (value 0) is missing")
    axes = len(plans.transpose_forward)
    if sorted(plans.transpose_forward) != list(range(axes)) or axes != 3:
        problems.append(f"transpose_forward {list(plans.transpose_forward)}: must order the axes 0, 1, 2")
    elif [plans.transpose_forward[a] for a in plans.transpose_backward] != list(range(axes)):
        problems.append(f"transpose_backward {list(plans.transpose_backward)}: must undo transpose_forward "
                        f"{list(plans.transpose_forward)}")
    for name, configuration in plans.configurations.items():
        problems += configuration_problems(name, configuration, len(plans.channel_names), plans.configurations)
    return problems
