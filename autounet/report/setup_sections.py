"""Report sections about what went into training: the dataset (from the fingerprint) and the plans."""

from __future__ import annotations

from typing import Any

import numpy as np

from autounet.report.collect import ReportData
from autounet.report.trained import budget_decision, other_training_entries
from autounet.report.markup import (
    Html,
    bullet_list,
    fmt_number,
    fmt_values,
    join,
    key_value_table,
    not_available,
    paragraph,
    table,
    tag,
)

#: dataset.json fields shown in the dataset summary when present (MSD and nnU-Net v2 spellings).
DESCRIPTION_FIELDS = ("description", "reference", "licence", "license", "release", "tensorImageSize")


def dataset_section(data: ReportData) -> Html:
    """Cases, channels, labels with voxel counts and case fractions, spacing and shape statistics."""
    parts: list[Any] = []
    described = data.dataset_json or {}
    facts = [(name, described[name]) for name in DESCRIPTION_FIELDS if described.get(name)]
    if data.dataset_root is not None:
        facts.append(("raw dataset folder", str(data.dataset_root)))
    fingerprint = data.fingerprint
    if fingerprint is None:
        if facts:
            parts.append(key_value_table([("name", data.dataset_name), *facts]))
        parts.append(not_available("fingerprint not available yet (run \"autounet fingerprint\" or \"autounet train\")"))
        return join(parts)
    facts = [
        ("name", fingerprint.dataset_name),
        ("training cases", fingerprint.num_cases),
        ("dimensionality", "2D" if fingerprint.is_2d else "3D"),
        ("median relative size after cropping to the non-zero region",
         fmt_number(fingerprint.median_relative_size_after_crop, 3)),
        *facts,
    ]
    parts.append(key_value_table(facts))
    parts.append(tag("h3", "Channels"))
    parts.append(_channel_table(fingerprint))
    parts.append(tag("h3", "Labels"))
    parts.append(_label_table(fingerprint))
    parts.append(tag("h3", "Spacing and shape (array axis order z, y, x)"))
    parts.append(_geometry_table(fingerprint))
    return join(parts)


def _channel_table(fingerprint: Any) -> Html:
    rows = []
    for index, name in enumerate(fingerprint.channel_names):
        stats = fingerprint.intensity[index] if index < len(fingerprint.intensity) else None
        values = [stats.mean, stats.std, stats.percentile_00_5, stats.median, stats.percentile_99_5] if stats else [None] * 5
        rows.append([index, name, *[f"{float(v):.4g}" if v is not None else "n/a" for v in values]])
    header = ["channel", "modality / name", "foreground mean", "std", "0.5th percentile", "median", "99.5th percentile"]
    return table(header, rows, numeric_from=2)


def _label_table(fingerprint: Any) -> Html:
    names = {value: name for name, value in fingerprint.labels.items()}
    stats = fingerprint.label_stats
    total = sum(s["voxels"] for s in stats.values()) or 1
    rows = [
        [value, names.get(value, "(undeclared)"), f"{int(s['voxels']):,}", f"{100.0 * s['voxels'] / total:.3f} %",
         f"{100.0 * s['case_fraction']:.1f} %"]
        for value, s in sorted(stats.items())
    ]
    if not rows:
        return not_available("no label statistics in the fingerprint")
    return table(["value", "name", "voxels (all cases)", "share of voxels", "cases containing it"], rows, numeric_from=2)


def _geometry_table(fingerprint: Any) -> Html:
    if not fingerprint.cases:
        return not_available("no per-case geometry in the fingerprint")
    spacings = fingerprint.spacings
    shapes = np.array([c.shape for c in fingerprint.cases], dtype=float)
    cropped = fingerprint.shapes_after_crop
    rows = []
    for axis in range(spacings.shape[1]):
        rows.append([
            f"axis {axis}",
            _median_range(spacings[:, axis]),
            _median_range(shapes[:, axis]),
            _median_range(cropped[:, axis]),
        ])
    return table(["axis", "spacing in mm: median [min - max]", "shape: median [min - max]", "shape after cropping"], rows)


def _median_range(values: np.ndarray) -> str:
    return f"{np.median(values):.4g} [{values.min():.4g} - {values.max():.4g}]"


def plans_section(data: ReportData) -> Html:
    """Per configuration: patch, batch, spacing, network, stages, normalisation, with the planner's reasons."""
    plans = data.plans
    if plans is None:
        return not_available("plans not available yet (run \"autounet plan\" or \"autounet train\")")
    explanations = plans.explanations or {}
    parts: list[Any] = [key_value_table([
        ("plans version", plans.plans_version),
        ("memory budget planned for", f"{plans.memory_budget_gb:g} GB"),
        ("transpose (forward)", str(list(plans.transpose_forward))),
        ("median spacing (after transposition)", fmt_values(plans.original_median_spacing_after_transp)),
        ("median shape (after transposition)", fmt_values(plans.original_median_shape_after_transp)),
        ("configurations", ", ".join(plans.configurations)),
        ("class prior (start of the output bias)",
         _class_prior_text(plans) if plans.class_prior else "none: zero output bias"),
    ])]
    if explanations.get("dataset"):
        parts += [tag("h3", "Why: dataset-wide decisions"), bullet_list(explanations["dataset"])]
    if plans.notes:
        parts += [tag("h3", "Notes"), bullet_list(plans.notes)]
    for name, configuration in plans.configurations.items():
        parts.append(tag("h3", f"Configuration {name}", id=f"plans-{name}"))
        parts.append(_configuration_table(configuration))
        reasons = explanations.get(name)
        parts.append(tag("h4", "Why these values") if reasons else "")
        parts.append(
            bullet_list(reasons) if reasons else paragraph("(the plans record no explanation for this configuration)")
        )
    return join(parts)


def _class_prior_text(plans: Any) -> str:
    """``background 0.9475, Anterior 0.0272, ...`` in class order."""
    names = [name for name, _ in sorted(plans.labels.items(), key=lambda item: item[1])]
    return ", ".join(f"{name} {share:g}" for name, share in zip(names, plans.class_prior))


def _configuration_table(conf: Any) -> Html:
    convolutions = list(conf.n_conv_per_stage)
    stages = [
        [index, features, fmt_values(kernel), fmt_values(stride), convolutions[index] if index < len(convolutions) else "n/a"]
        for index, (features, kernel, stride) in enumerate(zip(conf.features_per_stage, conf.kernel_sizes, conf.strides))
    ]
    normalization = "; ".join(
        f"channel {i}: {n.scheme}" + (" inside the non-zero mask" if n.use_mask else "")
        + (f", clipped to [{n.clip_range[0]:g}, {n.clip_range[1]:g}]" if n.clip_range else "")
        + (f", mean {n.mean:.4g}, std {n.std:.4g}" if n.mean is not None and n.std is not None else "")
        for i, n in enumerate(conf.normalization)
    )
    network = conf.network + (f" {conf.network_kwargs}" if conf.network_kwargs else "")
    facts = [
        ("features per stage (planned)", "-".join(str(f) for f in conf.features_per_stage)),
        ("patch size (voxels)", fmt_values(conf.patch_size)),
        ("batch size", conf.batch_size),
        ("spacing (mm)", fmt_values(conf.spacing)),
        ("median image size at that spacing (voxels)", fmt_values(conf.median_image_size_in_voxels) or "n/a"),
        ("network", network),
        ("stages", conf.n_stages),
        ("normalisation", normalization or "n/a"),
        ("loss", conf.loss + (" (batch Dice)" if conf.batch_dice else "")),
        ("resampling", f"data order {conf.resampling.data_order}, labels order {conf.resampling.label_order}, "
                       f"coarse axis order {conf.resampling.order_z}"),
    ]
    if conf.previous_stage:
        facts.append(("previous stage", conf.previous_stage))
    if conf.next_stage:
        facts.append(("next stage", conf.next_stage))
    facts += other_training_entries(conf.training.to_dict())
    stage_table = table(["stage", "features", "kernel", "stride", "convolutions"], stages, numeric_from=1)
    return join([key_value_table(facts), budget_decision(conf.training.to_dict()),
                 tag("details", join([tag("summary", "stages of the network"), stage_table]))])


def header_block(data: ReportData, generated: str, version: str) -> Html:
    """The line under the title: folder, time, version, and which stages have results."""
    status = [
        ("fingerprint", data.fingerprint is not None),
        ("plans", data.plans is not None),
        ("training logs", any(run.epochs for run in data.folds)),
        ("validation", any(run.validation is not None for run in data.folds) or bool(data.crossval)),
        ("find-best", data.inference is not None),
    ]
    done = ", ".join(f"{name} {'yes' if present else 'not yet'}" for name, present in status)
    return tag("p", join([
        "Results folder ", tag("code", str(data.results_dir.resolve())), Html("<br>"),
        f"Generated {generated} by autounet {version}. Available: {done}.",
    ]), class_="meta")


def problems_section(data: ReportData) -> Html:
    """Files that exist but could not be read."""
    return join(
        tag("p", join([tag("code", path), f": {reason}"]), class_="problem")
        for path, reason in sorted(data.problems.items())
    )

