"""Plain-word explanations of planned values: which rule chose each one, with which numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from autounet.planners.batch_size import MAX_DATASET_FRACTION, MIN_BATCH_SIZE
from autounet.planners.class_prior import MIN_CLASS_PRIOR
from autounet.planners.memory import memory_budget, reference_batch_size
from autounet.planners.normalization import MASK_RELATIVE_SIZE_THRESHOLD
from autounet.planners.patch_size import INITIAL_PATCH_VOXELS_2D, INITIAL_PATCH_VOXELS_3D, PatchPlan
from autounet.planners.plans import ChannelNormalization, Plans
from autounet.planners.target_spacing import ANISOTROPY_THRESHOLD
from autounet.planners.topology import NetworkTopology

#: Order in which :func:`format_explanations` prints the sections.
SECTION_ORDER = ("dataset", "2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")


def _fmt(values: Sequence[float], digits: int = 4) -> str:
    """``[1.0, 0.79, 0.79]`` with trailing noise rounded away."""
    return "[" + ", ".join(f"{round(float(v), digits):g}" for v in values) + "]"


def _shape(values: Sequence[float]) -> str:
    return "x".join(f"{float(v):g}" for v in values)


def explain_target_spacing(
    median_spacing: Sequence[float],
    target_spacing: Sequence[float],
    num_cases: int,
    overridden: bool = False,
) -> str:
    """Why the full-resolution spacing is what it is.

    Examples
    --------
    >>> explain_target_spacing((5.0, 0.5, 0.5), (4.2, 0.5, 0.5), 3)
    'target spacing [4.2, 0.5, 0.5] mm (input axis order): median spacing per axis over 3 cases is [5, 0.5, 0.5]; axis 0 is anisotropic (> 3x the others with > 3x fewer voxels), so it takes the 10th percentile of its spacings, 4.2 mm'
    """
    head = f"target spacing {_fmt(target_spacing)} mm (input axis order)"
    if overridden:
        return f"{head}: set by the user (--spacing); the median spacing would be {_fmt(median_spacing)}"
    text = f"{head}: median spacing per axis over {num_cases} case{'s' if num_cases != 1 else ''} is {_fmt(median_spacing)}"
    changed = [axis for axis, (m, t) in enumerate(zip(median_spacing, target_spacing)) if abs(m - t) > 1e-9]
    if changed:
        axis = changed[0]
        return (
            f"{text}; axis {axis} is anisotropic (> {ANISOTROPY_THRESHOLD:g}x the others with > "
            f"{ANISOTROPY_THRESHOLD:g}x fewer voxels), so it takes the 10th percentile of its spacings, "
            f"{round(target_spacing[axis], 4):g} mm"
        )
    return f"{text} (no axis is anisotropic enough for the 10th-percentile rule)"


def explain_transpose(forward: Sequence[int], target_spacing: Sequence[float], is_3d: bool) -> str:
    """Why the axes are (or are not) reordered.

    Examples
    --------
    >>> explain_transpose((2, 0, 1), (0.8, 0.8, 2.5), True)
    'transpose_forward [2, 0, 1]: the coarsest axis (2, 2.5 mm) moves to the front so 2D slices lie in the finest plane'
    """
    if not is_3d:
        return f"transpose_forward {list(forward)}: 2D data is never transposed"
    coarse = int(forward[0])
    if list(forward) == sorted(forward):
        return (
            f"transpose_forward {list(forward)}: the coarsest axis ({coarse}, {round(target_spacing[coarse], 4):g} mm) "
            "is already first"
        )
    return (
        f"transpose_forward {list(forward)}: the coarsest axis ({coarse}, {round(target_spacing[coarse], 4):g} mm) "
        "moves to the front so 2D slices lie in the finest plane"
    )


def explain_normalization(
    channel_names: Sequence[str], normalization: Sequence[ChannelNormalization], median_relative_size: float,
    forced_mask: bool | None = None,
) -> list[str]:
    """One line per channel: scheme (from its name) and whether the non-zero mask is used.

    Examples
    --------
    >>> explain_normalization(["CT"], [ChannelNormalization("ct", False, (-50.0, 300.0), 100.0, 50.0)], 1.0)
    ["channel 0 'CT': ct normalisation (the name CT selects it): clip to the foreground 0.5/99.5 percentiles [-50, 300], then subtract the foreground mean 100 and divide by the std 50; no mask"]
    """
    lines = []
    for index, (name, norm) in enumerate(zip(channel_names, normalization)):
        if norm.scheme == "ct":
            what = (
                "ct normalisation (the name CT selects it): clip to the foreground 0.5/99.5 percentiles "
                f"{_fmt(norm.clip_range or ())}, then subtract the foreground mean {norm.mean:.4g} and divide by "
                f"the std {norm.std:.4g}"
            )
        elif norm.scheme == "zscore":
            what = "per-image z-score (any name other than CT/noNorm/rescale_to_0_1/rgb_to_0_1 selects it)"
        elif norm.scheme == "none":
            what = "no normalisation (the name selects it)"
        else:
            what = f"{norm.scheme} (the name selects it)"
        if forced_mask is not None:
            mask = "mask forced " + ("on" if forced_mask else "off") + " (use_mask_for_norm)"
            mask = mask if norm.scheme == "zscore" else "no mask (only z-score can use it)"
        elif norm.use_mask:
            mask = (
                f"inside the non-zero mask only, because cropping to it shrank the median image to "
                f"{median_relative_size:.0%} (< {MASK_RELATIVE_SIZE_THRESHOLD:.0%})"
            )
        else:
            mask = "no mask"
        lines.append(f"channel {index} {name!r}: {what}; {mask}")
    return lines


def explain_patch(plan: PatchPlan, median_shape: Sequence[float], memory_budget_gb: float, batch_size: int, network: str) -> str:
    """How the patch came out of the aspect-ratio start, the clip and the memory loop.

    Examples
    --------
    >>> from autounet.planners.patch_size import plan_patch_size
    >>> explain_patch(plan_patch_size((1.0, 1.0, 1.0), (36, 50, 35), num_classes=3), (36, 50, 35), 8.0, 2, "unet")[:90]
    'patch 40x56x40: the 1/spacing aspect ratio at 256^3 voxels is 256x256x256, clipped to the '
    """
    ndim = len(plan.patch_size)
    voxels = INITIAL_PATCH_VOXELS_3D if ndim == 3 else INITIAL_PATCH_VOXELS_2D
    start = f"{round(voxels ** (1 / ndim))}^{ndim}"
    text = (
        f"patch {_shape(plan.patch_size)}: the 1/spacing aspect ratio at {start} voxels is "
        f"{_shape(plan.initial_patch_size)}, clipped to the median image {_shape(median_shape)}"
    )
    if plan.enlarged_axes:
        text += f", grown to {_shape(plan.clipped_patch_size)} so at least one pooling is possible (tiny images)"
    else:
        text += f" -> {_shape(plan.clipped_patch_size)}"
    rounded = plan.rounded_patch_size or plan.patch_size
    if tuple(rounded) != tuple(plan.clipped_patch_size):
        text += f", rounded up to its network's total stride -> {_shape(rounded)}"
    allowance = memory_budget(ndim, memory_budget_gb) * reference_batch_size(ndim) / batch_size
    if plan.shrink_steps:
        text += (
            f"; shrunk {plan.shrink_steps} times (each time the axis largest relative to the median image, by its "
            f"total stride) until {batch_size} samples fit the {memory_budget_gb:g} GB budget"
        )
    else:
        text += f"; {batch_size} samples already fit the {memory_budget_gb:g} GB budget"
    text += (
        f" ({network} memory estimate {plan.memory_estimate:.4g} per sample; at batch {batch_size} each sample may "
        f"use {allowance:.4g}, the reference {memory_budget(ndim, memory_budget_gb):.4g} being calibrated at batch "
        f"{reference_batch_size(ndim)})"
    )
    return text


def explain_topology(topology: NetworkTopology, spacing: Sequence[float], features: Sequence[int]) -> str:
    """Stages, pooling per axis and kernels.

    Examples
    --------
    >>> from autounet.planners.topology import plan_topology
    >>> explain_topology(plan_topology((1.0, 1.0, 1.0), (40, 56, 40)), (1.0, 1.0, 1.0), (32, 64, 128, 256))[:75]
    'network: 4 stages; each axis is pooled while it keeps >= 4 voxels (>= 8 to '
    """
    coarse_kernels = sum(1 for k in topology.kernel_sizes if 1 in k)
    text = (
        f"network: {topology.n_stages} stages; each axis is pooled while it keeps >= 4 voxels (>= 8 to pool) and "
        f"its spacing is within 2x of the finest: pooled {list(topology.num_pool_per_axis)} times per axis at "
        f"spacing {_fmt(spacing)}"
    )
    if coarse_kernels:
        text += f"; the first {coarse_kernels} stage(s) use kernel 1 along axes still > 2x coarser than the finest"
    else:
        text += "; all kernels are 3 wide"
    return text + f"; features {list(features)} (32 doubling per stage, capped at {'320' if len(spacing) == 3 else '512'})"


def explain_batch(
    batch_size: int, by_memory: int, cap: int, memory_budget_gb: float, overridden: bool = False
) -> str:
    """Which limit set the batch size.

    Examples
    --------
    >>> explain_batch(9, 58, 9, 8.0)
    'batch size 9: memory allows 58 at 8 GB, but one batch may cover at most 5% of the dataset, which allows 9'
    """
    if overridden:
        derived = max(min(by_memory, cap), MIN_BATCH_SIZE)
        return f"batch size {batch_size}: set by the user (--batch-size); the rules would allow {derived}"
    if batch_size == MIN_BATCH_SIZE and min(by_memory, cap) < MIN_BATCH_SIZE:
        limit = "memory" if by_memory <= cap else f"the {MAX_DATASET_FRACTION:.0%} dataset cap"
        return f"batch size {batch_size}: the minimum (2); {limit} alone would allow only {min(by_memory, cap)}"
    if cap < by_memory:
        return (
            f"batch size {batch_size}: memory allows {by_memory} at {memory_budget_gb:g} GB, but one batch may cover "
            f"at most {MAX_DATASET_FRACTION:.0%} of the dataset, which allows {cap}"
        )
    return (
        f"batch size {batch_size}: as many as fit {memory_budget_gb:g} GB "
        f"(the {MAX_DATASET_FRACTION:.0%} dataset cap allows {cap})"
    )


def explain_context_slices(context_slices: int) -> str:
    """What the 2.5D override does to the 2d configuration's input.

    Examples
    --------
    >>> explain_context_slices(1)
    'input slices z-1..z+1 stacked as channels (2.5D, 3 slices per image channel): set by the user (--context-slices); the first layer takes 3x the image channels, the rest of the network is unchanged'
    """
    width = 2 * context_slices + 1
    return (
        f"input slices z-{context_slices}..z+{context_slices} stacked as channels (2.5D, {width} slices per image "
        f"channel): set by the user (--context-slices); the first layer takes {width}x the image channels, the rest "
        "of the network is unchanged"
    )


def explain_class_prior(class_prior: Sequence[float] | None, labels: Mapping[str, int]) -> str:
    """Where every network's output bias starts.

    Examples
    --------
    >>> explain_class_prior((0.9475, 0.0272, 0.0253), {"background": 0, "Anterior": 1, "Posterior": 2})
    'class prior background 0.9475, Anterior 0.0272, Posterior 0.0253: voxel shares in the training labels (each at least 0.01); the output bias starts at their logarithm, so the untrained network predicts these frequencies'
    >>> explain_class_prior(None, {"background": 0, "lesion": 1})
    'class prior unknown (no label voxel counts in the fingerprint): output bias starts at zero, as in nnU-Net'
    """
    if class_prior is None:
        return "class prior unknown (no label voxel counts in the fingerprint): output bias starts at zero, as in nnU-Net"
    names = [name for name, _ in sorted(labels.items(), key=lambda item: item[1])]
    shares = ", ".join(f"{name} {share:g}" for name, share in zip(names, class_prior))
    return (
        f"class prior {shares}: voxel shares in the training labels (each at least {MIN_CLASS_PRIOR:g}); the output "
        "bias starts at their logarithm, so the untrained network predicts these frequencies"
    )


def format_explanations(plans: Plans) -> str:
    """The explanations of a plans object as indented text, one section per configuration.

    Examples
    --------
    >>> from autounet.planners.plans import Plans
    >>> p = Plans("demo", ("MRI",), {"background": 0}, (0, 1, 2), (0, 1, 2), (1.0,) * 3, (8.0,) * 3, {},
    ...           explanations={"dataset": ["target spacing [1, 1, 1] mm"]})
    >>> print(format_explanations(p))
    dataset
      - target spacing [1, 1, 1] mm
    """
    sections = [name for name in SECTION_ORDER if name in plans.explanations]
    sections += [name for name in plans.explanations if name not in SECTION_ORDER]
    lines = []
    for name in sections:
        lines.append(name)
        lines.extend(f"  - {line}" for line in plans.explanations[name])
    if plans.notes:
        lines.append("notes")
        lines.extend(f"  - {note}" for note in plans.notes)
    return "\n".join(lines)
