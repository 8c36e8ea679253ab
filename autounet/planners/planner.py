"""Sequence the planning rules: fingerprint (+ memory budget, overrides) in, :class:`Plans` out.

Every number comes from a rule function in a sibling module; this module only calls them in order, applies the
user's overrides, and records a plain-word explanation of each value.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autounet.errors import PlansError
from autounet.fingerprint.schema import Fingerprint
from autounet.planners import explain
from autounet.planners.batch_size import batch_size_cap, batch_size_for_memory, plan_batch_size
from autounet.planners.class_prior import plan_class_prior
from autounet.planners.configurations import is_3d_dataset, plan_2d_geometry, plan_lowres
from autounet.planners.context_slices import check_context_slices
from autounet.planners.device import DeviceInfo, detect_device, device_notes
from autounet.planners.memory import DEFAULT_NETWORK, REFERENCE_MEMORY_GB, fits_memory, has_memory_estimator, memory_budget
from autounet.planners.normalization import plan_normalization
from autounet.planners.overrides import PlanOverrides, check_batch_size, check_configurations, check_patch_size, check_spacing
from autounet.planners.patch_size import PATCH_PLANNING_BATCH_SIZE, PatchPlan, estimate_topology_memory, plan_patch_size
from autounet.planners.plans import CONFIGURATION_NAMES, ChannelNormalization, ConfigurationPlan, Plans
from autounet.planners.target_spacing import median_resampled_shape, plan_target_spacing, plan_transpose, transpose_values
from autounet.planners.topology import BASE_FEATURES, plan_convs_per_stage, plan_features_per_stage


@dataclass(frozen=True)
class ConfigurationResult:
    """One planned configuration with the intermediate results that explain it."""

    plan: ConfigurationPlan
    patch_plan: PatchPlan
    explanations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fixed_patch_plan(
    patch_size: Sequence[int],
    spacing: Sequence[float],
    *,
    network: str = DEFAULT_NETWORK,
    num_classes: int = 2,
    base_features: int = BASE_FEATURES,
    network_kwargs: Mapping[str, Any] | None = None,
) -> PatchPlan:
    """A :class:`PatchPlan` for a patch the user fixed: checked, rounded up to the total stride, topology re-derived.

    Examples
    --------
    >>> plan = fixed_patch_plan((30, 64, 64), (1.0, 1.0, 1.0))
    >>> plan.patch_size, plan.topology.n_stages
    ((32, 64, 64), 5)
    """
    topology = check_patch_size(patch_size, spacing)
    features = plan_features_per_stage(topology.n_stages, len(spacing), base_features)
    n_conv, n_conv_decoder = plan_convs_per_stage(topology.n_stages)
    estimate = estimate_topology_memory(topology, network, num_classes, base_features, network_kwargs)
    given = tuple(int(p) for p in patch_size)
    return PatchPlan(topology.patch_size, topology, features, n_conv, n_conv_decoder, estimate, given, given, 0)


def plan_configuration(
    name: str,
    spacing: Sequence[float],
    median_shape: Sequence[float],
    dataset_voxels: float,
    normalization: Sequence[ChannelNormalization],
    *,
    memory_budget_gb: float = REFERENCE_MEMORY_GB,
    num_classes: int = 2,
    network: str = DEFAULT_NETWORK,
    network_kwargs: Mapping[str, Any] | None = None,
    patch_size: Sequence[int] | None = None,
    batch_size: int | None = None,
    base_features: int = BASE_FEATURES,
    batch_dice: bool = False,
) -> ConfigurationResult:
    """Plan one configuration at a given spacing: patch, topology, features and batch size.

    Parameters
    ----------
    name : str
        Configuration name (``2d``, ``3d_fullres``, ``3d_lowres``).
    spacing, median_shape : sequence of float
        Target spacing (mm) and median image shape at it, plans axis order (2 or 3 axes).
    dataset_voxels : float
        Median image voxels at this spacing x number of cases (for the 5% batch cap).
    normalization : sequence of ChannelNormalization
        The dataset's per-channel normalisation, stored with the configuration.
    memory_budget_gb : float
        GPU memory to plan for.
    num_classes : int
        Network outputs (labels including background).
    network, network_kwargs
        Network family name and its arguments.
    patch_size, batch_size : optional
        User overrides; what is not fixed is derived around what is.
    base_features : int
        Features of the first stage (a width knob for compute-aware planning).
    batch_dice : bool
        Stored in the plan (Dice over the whole batch rather than per sample).

    Returns
    -------
    ConfigurationResult

    Examples
    --------
    >>> result = plan_configuration("3d_fullres", (1.0, 1.0, 1.0), (36.0, 50.0, 35.0), 36 * 50 * 35 * 260,
    ...                             (ChannelNormalization("zscore"),), num_classes=3)
    >>> result.plan.patch_size, result.plan.batch_size, result.plan.n_stages
    ((40, 56, 40), 9, 4)
    """
    notes: list[str] = []
    planning_batch = PATCH_PLANNING_BATCH_SIZE if batch_size is None else batch_size
    if patch_size is None:
        patch_plan = plan_patch_size(
            spacing, median_shape, memory_budget_gb, network=network, num_classes=num_classes,
            batch_size=planning_batch, base_features=base_features, network_kwargs=network_kwargs,
        )
        patch_text = explain.explain_patch(patch_plan, median_shape, memory_budget_gb, planning_batch, network)
    else:
        patch_plan = fixed_patch_plan(
            patch_size, spacing, network=network, num_classes=num_classes, base_features=base_features,
            network_kwargs=network_kwargs,
        )
        patch_text = f"patch {explain._shape(patch_plan.patch_size)}: set by the user (--patch-size)"
        if tuple(patch_plan.patch_size) != tuple(int(p) for p in patch_size):
            note = (
                f"{name}: patch {list(patch_size)} rounded up to {list(patch_plan.patch_size)}, a multiple of the "
                f"network's total stride {list(patch_plan.topology.shape_divisor)}"
            )
            notes.append(note)
            patch_text += f", rounded up from {explain._shape(patch_size)} to the total stride"
    ndim = len(spacing)
    by_memory = batch_size_for_memory(patch_plan.memory_estimate, ndim, memory_budget_gb)
    cap = batch_size_cap(patch_plan.patch_size, dataset_voxels)
    if batch_size is None:
        planned_batch = plan_batch_size(patch_plan.memory_estimate, patch_plan.patch_size, dataset_voxels, memory_budget_gb)
    else:
        planned_batch = batch_size
        if not fits_memory(patch_plan.memory_estimate, batch_size, ndim, memory_budget_gb):
            notes.append(
                f"{name}: batch {batch_size} of patch {list(patch_plan.patch_size)} exceeds the {memory_budget_gb:g} GB "
                f"budget (about {by_memory} fit); training may run out of GPU memory"
            )
    topology = patch_plan.topology
    plan = ConfigurationPlan(
        name=name,
        spacing=tuple(float(s) for s in spacing),
        patch_size=tuple(int(p) for p in patch_plan.patch_size),
        batch_size=int(planned_batch),
        median_image_size_in_voxels=tuple(float(m) for m in median_shape),
        normalization=tuple(normalization),
        features_per_stage=patch_plan.features_per_stage,
        kernel_sizes=topology.kernel_sizes,
        strides=topology.strides,
        n_conv_per_stage=patch_plan.n_conv_per_stage,
        n_conv_per_stage_decoder=patch_plan.n_conv_per_stage_decoder,
        network=network,
        network_kwargs=dict(network_kwargs or {}),
        batch_dice=batch_dice,
        data_identifier=name,
    )
    explanations = [
        f"spacing {explain._fmt(spacing)} mm, median image {explain._shape(median_shape)} voxels at that spacing",
        patch_text,
        explain.explain_topology(topology, spacing, patch_plan.features_per_stage),
        explain.explain_batch(planned_batch, by_memory, cap, memory_budget_gb, overridden=batch_size is not None),
    ]
    return ConfigurationResult(plan, patch_plan, explanations, notes)


def _check_network(network: str) -> list[str]:
    """Refuse unknown network families; note families without a memory estimate of their own."""
    if has_memory_estimator(network):
        return []
    try:
        from autounet.networks import list_networks  # imports torch, so only for uncommon families
    except ImportError:  # pragma: no cover
        return [f"network family {network!r} could not be checked (autounet.networks unavailable)"]
    known = list_networks()
    if network not in known:
        close = difflib.get_close_matches(network, known, n=1)
        hint = f' Did you mean "{close[0]}"?' if close else ""
        raise PlansError(f'unknown network family "{network}"; available: {", ".join(known)}.{hint}')
    return [f"network family {network!r} has no memory estimate of its own; the plain U-Net estimate was used"]


def _check_patch_axes(patch_size: Sequence[int], is_3d: bool, requested: Sequence[str]) -> None:
    ndim = len(patch_size)
    targets = [name for name in requested if (name == "2d") == (ndim == 2)]
    if ndim not in (2, 3) or not targets or (ndim == 3 and not is_3d):
        raise PlansError(
            f"patch_size has {ndim} axes but the configurations planned here ({', '.join(requested)}) take "
            f"{' or '.join(sorted({'2' if n == '2d' else '3' for n in requested}))}; pass 3 values for the 3D "
            "configurations or 2 for 2d"
        )


def _apply_context_slices(results: dict[str, ConfigurationResult], context_slices: int, is_3d: bool) -> None:
    """Give the planned ``2d`` configuration ``context_slices`` neighbours per side (the 2.5D override)."""
    context_slices = check_context_slices(context_slices, 2, "2d")
    if context_slices == 0:
        return
    if not is_3d:
        raise PlansError(
            f"context_slices={context_slices} needs 3D data (slices to stack), but this dataset is 2D; leave it out"
        )
    if "2d" not in results:
        raise PlansError(
            f"context_slices={context_slices} applies to the 2d configuration, which is not planned here; "
            "add 2d to --configurations or leave --context-slices out"
        )
    result = results["2d"]
    result.explanations.append(explain.explain_context_slices(context_slices))
    results["2d"] = ConfigurationResult(
        result.plan.replace(context_slices=context_slices), result.patch_plan, result.explanations, result.notes
    )


def plan_experiment(
    fingerprint: Fingerprint,
    memory_budget_gb: float | None = None,
    overrides: PlanOverrides | None = None,
    device: DeviceInfo | None = None,
) -> Plans:
    """Plan every configuration of a dataset from its fingerprint.

    Parameters
    ----------
    fingerprint : Fingerprint
        From :func:`autounet.fingerprint.compute_fingerprint` or :func:`~autounet.fingerprint.load_fingerprint`.
    memory_budget_gb : float, optional
        GPU memory to plan for; default the 8 GB the reference values were calibrated on.
    overrides : PlanOverrides, optional
        Values the user fixes (patch, batch, spacing, configurations, network).
    device : DeviceInfo, optional
        This machine's GPU, for the notes only (detected when None). The planned numbers never depend on it.

    Returns
    -------
    Plans
        With ``explanations`` (why each value) and ``notes`` (overrides, device, adjustments).

    Raises
    ------
    PlansError
        For an empty fingerprint or an override that cannot work.

    Examples
    --------
    >>> from autounet.fingerprint import CaseFingerprint, Fingerprint, IntensityStats
    >>> case = CaseFingerprint("a", (1.0, 1.0, 1.0), (36, 50, 35), (36, 50, 35), 1.0)
    >>> stats = IntensityStats(60.0, 60.0, 20.0, 0.0, 200.0, 10.0, 150.0)
    >>> fp = Fingerprint("demo", ("MRI",), {"background": 0, "a": 1, "b": 2}, (case,) * 260, (stats,))
    >>> plans = plan_experiment(fp, device=DeviceInfo())
    >>> list(plans.configurations), plans.configurations["3d_fullres"].patch_size
    (['2d', '3d_fullres'], (40, 56, 40))
    """
    overrides = overrides or PlanOverrides()
    budget = REFERENCE_MEMORY_GB if memory_budget_gb is None else float(memory_budget_gb)
    memory_budget(3, budget)  # refuses a non-positive budget
    if fingerprint.num_cases == 0:
        raise PlansError("the fingerprint has no training cases; check the dataset and recompute the fingerprint")
    network = overrides.network or DEFAULT_NETWORK
    notes = [f"override: {text}" for text in overrides.describe()] + _check_network(network)
    batch_override = None if overrides.batch_size is None else check_batch_size(overrides.batch_size)
    spacings, shapes = fingerprint.spacings, fingerprint.shapes_after_crop
    median_spacing = tuple(float(s) for s in np.median(spacings, axis=0))
    flat = fingerprint.is_2d or float(np.median(shapes[:, 0])) == 1
    if overrides.spacing is not None:
        target = check_spacing(overrides.spacing, is_2d=flat)
    else:
        target = plan_target_spacing(spacings, shapes)
    median_shape = median_resampled_shape(spacings, shapes, target)
    is_3d = is_3d_dataset(median_shape, fingerprint.is_2d)
    forward, backward = plan_transpose(target, is_2d=not is_3d)
    spacing_t, median_t = transpose_values(target, forward), transpose_values(median_shape, forward)
    dataset_voxels = float(np.prod(median_t, dtype=np.float64)) * fingerprint.num_cases
    normalization = plan_normalization(
        fingerprint.channel_names, fingerprint.intensity, fingerprint.median_relative_size_after_crop,
        overrides.use_mask_for_norm,
    )
    available = CONFIGURATION_NAMES if is_3d else ("2d",)
    requested = available if overrides.configurations is None else check_configurations(overrides.configurations, available)
    if overrides.patch_size is not None:
        _check_patch_axes(overrides.patch_size, is_3d, requested)
    patch_3d = overrides.patch_size if overrides.patch_size is not None and len(overrides.patch_size) == 3 else None
    patch_2d = overrides.patch_size if overrides.patch_size is not None and len(overrides.patch_size) == 2 else None
    common: dict[str, Any] = dict(
        memory_budget_gb=budget, num_classes=max(2, len(fingerprint.labels)), network=network,
        network_kwargs=overrides.network_kwargs, batch_size=batch_override,
    )
    explanations: dict[str, list[str]] = {"dataset": [
        explain.explain_target_spacing(median_spacing, target, fingerprint.num_cases, overrides.spacing is not None),
        explain.explain_transpose(forward, target, is_3d),
        f"median image after resampling {explain._shape(median_t)} voxels (plans axis order), "
        f"{fingerprint.num_cases} cases, about {dataset_voxels:.4g} voxels in all",
        *explain.explain_normalization(
            fingerprint.channel_names, normalization, fingerprint.median_relative_size_after_crop,
            overrides.use_mask_for_norm,
        ),
    ]}
    results: dict[str, ConfigurationResult] = {}
    if not is_3d:
        explanations["dataset"].append("2D data (median shape 1 along the first axis): only the 2d configuration")
    elif any(name.startswith("3d") for name in requested):
        fullres = plan_configuration(
            "3d_fullres", spacing_t, median_t, dataset_voxels, normalization, patch_size=patch_3d, **common
        )

        def plan_patch(spacing: tuple[float, ...], median: tuple[int, ...]) -> PatchPlan:
            if patch_3d is not None:
                return fixed_patch_plan(patch_3d, spacing, network=network, num_classes=common["num_classes"],
                                        network_kwargs=overrides.network_kwargs)
            return plan_patch_size(spacing, median, budget, network=network, num_classes=common["num_classes"],
                                   batch_size=batch_override or PATCH_PLANNING_BATCH_SIZE,
                                   network_kwargs=overrides.network_kwargs)

        search = plan_lowres(spacing_t, median_t, fullres.plan.patch_size, plan_patch)
        planned = "planned" if search.patch_plan else "not planned"
        explanations["dataset"].append(f"3d_lowres and cascade: {planned}, {search.reason}")
        wanted = [name for name in ("3d_lowres", "3d_cascade_fullres") if name in requested]
        if search.patch_plan is None and overrides.configurations is not None and wanted:
            raise PlansError(f"{wanted[0]} was requested but {search.reason}; leave it out of --configurations")
        has_cascade = search.patch_plan is not None
        results["3d_fullres"] = ConfigurationResult(
            fullres.plan.replace(batch_dice=has_cascade), fullres.patch_plan, fullres.explanations, fullres.notes
        )
        if has_cascade:
            lowres = plan_configuration(
                "3d_lowres", search.spacing, search.median_shape, search.median_voxels * fingerprint.num_cases,
                normalization, patch_size=patch_3d, **common,
            )
            results["3d_lowres"] = lowres
            results["3d_lowres"].explanations.insert(0, f"spacing grown from 3d_fullres: {search.reason}")
            results["3d_cascade_fullres"] = ConfigurationResult(
                results["3d_fullres"].plan.replace(
                    name="3d_cascade_fullres", previous_stage="3d_lowres", data_identifier="3d_fullres"
                ),
                fullres.patch_plan,
                ["the 3d_fullres configuration, trained with the upsampled 3d_lowres prediction as extra input; "
                 "shares the 3d_fullres preprocessed data"],
            )
    if "2d" in requested:
        spacing_2d, median_2d = plan_2d_geometry(spacing_t, median_t)
        results["2d"] = plan_configuration("2d", spacing_2d, median_2d, dataset_voxels, normalization,
                                           patch_size=patch_2d, batch_dice=True, **common)
        results["2d"].explanations.insert(
            0, "2D network on slices along the first axis (plans order): in-plane spacing and shape"
        )
    if overrides.context_slices is not None:
        _apply_context_slices(results, overrides.context_slices, is_3d)
    configurations: dict[str, ConfigurationPlan] = {}
    for name in CONFIGURATION_NAMES:
        if name in results and name in requested:
            plan = results[name].plan
            if name == "3d_lowres" and "3d_cascade_fullres" in requested:
                plan = plan.replace(next_stage="3d_cascade_fullres")
            configurations[name] = plan
            explanations[name] = results[name].explanations
            notes.extend(results[name].notes)
    if device is None:
        device = detect_device()
    notes.extend(device_notes(device, budget, budget_given=memory_budget_gb is not None))
    label_values = sorted(set(fingerprint.labels.values()))
    class_prior = plan_class_prior({v: int(st["voxels"]) for v, st in fingerprint.label_stats.items()}, label_values)
    explanations["dataset"].append(explain.explain_class_prior(class_prior, fingerprint.labels))
    crop_median = np.round(np.median(shapes, axis=0))
    return Plans(
        dataset_name=fingerprint.dataset_name,
        channel_names=tuple(fingerprint.channel_names),
        labels=dict(fingerprint.labels),
        transpose_forward=forward,
        transpose_backward=backward,
        original_median_spacing_after_transp=transpose_values(median_spacing, forward),
        original_median_shape_after_transp=tuple(float(s) for s in transpose_values(crop_median, forward)),
        configurations=configurations,
        memory_budget_gb=budget,
        fingerprint_signature=fingerprint.signature,
        notes=tuple(notes),
        explanations=explanations,
        class_prior=class_prior,
    )
