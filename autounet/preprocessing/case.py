"""Preprocess one case as the plans say: transpose, crop, normalise, resample. Training and inference share it."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from autounet.cropping import bounding_box, crop_slices, nonzero_mask
from autounet.errors import DatasetError, PlansError
from autounet.io import Image
from autounet.io.formats import strip_extension
from autounet.plausibility import resampling_shrink_problem
from autounet.planners.plans import ConfigurationPlan, Plans
from autounet.preprocessing.normalization import normalize_channel
from autounet.preprocessing.properties import CaseProperties
from autounet.preprocessing.resampling import (
    ResamplingBackend,
    compute_new_shape,
    resample_data,
    resample_labels,
    resolve_backend,
    separate_z_axis,
)

#: Label value written outside the non-zero mask when the plans normalise inside it (nnU-Net's ``-1``), so
#: training can ignore that region.
OUTSIDE_MASK_LABEL = -1

#: Refuse to create more voxels than this per channel (8 GiB of float32): a spacing that far off is a
#: broken header, not a plan (e.g. 1000 mm slices resampled to 1 mm).
MAX_OUTPUT_VOXELS = 2**31

#: Refuse to stretch any axis more than this: no plan asks for it, a broken spacing in a header does
#: (e.g. 1000 mm written for 1 mm).
MAX_AXIS_ZOOM = 32.0

#: Tolerances when comparing the grid of an image and its label file: relative for spacing, in voxels
#: (of the finest spacing) for the origin, absolute for the direction cosines. Exporters round headers
#: to a few decimals; a real mismatch is far larger.
SPACING_RTOL = 1e-3
ORIGIN_TOLERANCE = 0.05
DIRECTION_TOLERANCE = 1e-3


def target_spacing(configuration: ConfigurationPlan, spacing: Sequence[float]) -> tuple[float, ...]:
    """Spacing a case is resampled to; a ``2d`` configuration keeps the case's own slice spacing.

    Parameters
    ----------
    configuration : ConfigurationPlan
    spacing : sequence of float
        The case's spacing in transposed (z, y, x) order.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> target_spacing(SimpleNamespace(name="2d", spacing=(0.5, 0.5)), (3.0, 0.7, 0.7))
    (3.0, 0.5, 0.5)
    """
    planned = tuple(float(s) for s in configuration.spacing)
    if len(planned) == len(spacing):
        return planned
    if len(planned) == len(spacing) - 1:
        return (float(spacing[0]), *planned)
    raise PlansError(
        f"configuration {configuration.name!r} has {len(planned)} spacing values but images have {len(spacing)} "
        "axes; give 3 values (or 2 for a 2d configuration)"
    )


def preprocessing_key(plans: Plans, configuration_name: str, spacing: Sequence[float]) -> tuple[Any, ...]:
    """Everything preprocessing of a case depends on: equal keys give identical arrays (computed once)."""
    configuration = plans.configuration(configuration_name)
    transposed = tuple(spacing[axis] for axis in plans.transpose_forward)
    return (
        plans.transpose_forward,
        target_spacing(configuration, transposed),
        configuration.normalization,
        configuration.resampling,
    )


def seg_dtype(low: int, high: int) -> np.dtype:
    """Smallest signed integer type holding ``low..high`` (int8 for the usual labels and -1).

    Examples
    --------
    >>> seg_dtype(-1, 3), seg_dtype(0, 255), seg_dtype(0, 40000)
    (dtype('int8'), dtype('int16'), dtype('int32'))
    """
    for dtype in (np.int8, np.int16, np.int32):
        if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"label values {low}..{high} do not fit in int32")


def preprocess_case(
    image: Image,
    plans: Plans,
    configuration_name: str,
    label: Image | None = None,
    *,
    resampling_backend: ResamplingBackend = "auto",
    case_id: str | None = None,
) -> tuple[np.ndarray, np.ndarray | None, CaseProperties]:
    """Transpose, crop to the non-zero region, normalise and resample one case.

    Used for training data (by :func:`~autounet.preprocessing.preprocess_dataset`) and for new images at
    inference, so both see exactly the same arrays.

    Parameters
    ----------
    image : Image
        ``data`` of shape (C, z, y, x) in the file's array order, with its geometry.
    plans : Plans
    configuration_name : str
        E.g. ``"3d_fullres"`` or ``"2d"``.
    label : Image, optional
        Label map of shape (1, z, y, x) on the same grid; None at inference.
    resampling_backend : {"auto", "reference", "separable"}
        See :mod:`autounet.preprocessing.resampling`.
    case_id : str, optional
        Name recorded in the properties; defaults to the first source file name without extension.

    Returns
    -------
    data : ndarray of float32, shape (C, *spatial)
    seg : ndarray of int8 (int16/int32 if needed), shape (1, *spatial), or None
        ``-1`` marks voxels outside the non-zero mask when the plans normalise inside it.
    properties : CaseProperties

    Raises
    ------
    DatasetError
        If the image or label is unusable (channel count, NaN/Inf, shape or spacing mismatch, undeclared
        label values, 2D image in a 3D configuration); the message names the file.
    """
    configuration = plans.configuration(configuration_name)
    source = image.source or "image"
    data = _checked_data(image, configuration, source)
    forward = tuple(int(a) for a in plans.transpose_forward)
    if sorted(forward) != list(range(data.ndim - 1)):
        raise PlansError(f"transpose_forward {forward} is not a permutation of the {data.ndim - 1} spatial axes")
    backward = tuple(int(a) for a in np.argsort(forward))
    spacing = tuple(image.geometry.spacing[axis] for axis in forward)
    data = data.transpose(0, *(axis + 1 for axis in forward))
    seg = _checked_label(label, image, plans, source).transpose(forward) if label is not None else None

    box = bounding_box(np.any(data != 0, axis=0))  # holes do not change the box
    slices = crop_slices(box)
    data = np.array(data[(slice(None), *slices)], dtype=np.float32, order="C")
    use_mask = [setting.use_mask for setting in configuration.normalization]
    mask = nonzero_mask(data) if any(use_mask) else None
    if seg is not None:
        low = OUTSIDE_MASK_LABEL if mask is not None else int(seg.min(initial=0))
        seg = np.array(seg[slices], dtype=seg_dtype(low, int(seg.max(initial=0))), order="C")
        if mask is not None:
            seg[(seg == 0) & ~mask] = OUTSIDE_MASK_LABEL

    statistics = []
    for channel, setting in enumerate(configuration.normalization):
        try:
            used = normalize_channel(data[channel], mask if setting.use_mask else None, setting)
        except ValueError as err:
            raise DatasetError(f"{source}: channel {channel}: {err}") from None
        statistics.append({"scheme": setting.scheme, "use_mask": setting.use_mask, **used})

    shape_before = data.shape[1:]
    target = target_spacing(configuration, spacing)
    new_shape = _checked_new_shape(shape_before, spacing, target, image, forward.index(0), configuration_name, source)
    shrink = resampling_shrink_problem(shape_before, spacing, target, configuration.patch_size)
    if shrink is not None:
        raise DatasetError(f"{source}: {shrink} of {configuration_name}; check the spacing in the file header (a unit "
                           "mix-up?), or leave the image out")
    plan = configuration.resampling
    if new_shape != shape_before:
        data = resample_data(data, new_shape, spacing, target, plan, resampling_backend)
        if seg is not None:
            seg = resample_labels(seg, new_shape, spacing, target, plan, resampling_backend)
        backend_used = resolve_backend(resampling_backend, int(np.prod(new_shape)))
    else:
        backend_used = "none"

    geometry = image.geometry
    properties = CaseProperties(
        case_id=case_id or strip_extension(source.split(",")[0].strip()),
        original_shape=image.spatial_shape,
        spacing=geometry.spacing,
        origin=geometry.origin,
        direction=geometry.direction,
        is_2d=geometry.is_2d,
        transpose_forward=forward,
        transpose_backward=backward,
        shape_before_cropping=tuple(int(s) for s in np.asarray(image.spatial_shape)[list(forward)]),
        crop_box=box,
        shape_before_resampling=tuple(int(s) for s in shape_before),
        spacing_before_resampling=spacing,
        shape_after_resampling=tuple(int(s) for s in data.shape[1:]),
        spacing_after_resampling=target,
        separate_z_axis=separate_z_axis(spacing, target, plan.anisotropy_threshold) if backend_used != "none" else None,
        resampling_backend=backend_used,
        normalization=tuple(statistics),
        data_identifier=configuration.data_identifier or configuration.name,
        source=source,
    )
    return data, (seg[None] if seg is not None else None), properties


def _checked_data(image: Image, configuration: ConfigurationPlan, source: str) -> np.ndarray:
    data = image.data
    if data.ndim != 4:
        raise DatasetError(f"{source}: expected image data of shape (C, z, y, x), got shape {data.shape}")
    if 0 in data.shape:
        raise DatasetError(f"{source}: the image is empty (shape {data.shape[1:]}, {data.shape[0]} channel(s)); re-export it")
    if data.shape[0] != len(configuration.normalization):
        raise DatasetError(
            f"{source}: the image has {data.shape[0]} channel(s) but the plans normalise "
            f"{len(configuration.normalization)}; give every case the channels listed in dataset.json"
        )
    if data.dtype.kind not in "biuf":
        raise DatasetError(f"{source}: voxel type {data.dtype} is not a number type; save the image as integers or floats")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise DatasetError(f"{source}: the image holds NaN or infinite values; replace them (e.g. with 0) and re-run")
    return data


def _checked_label(label: Image, image: Image, plans: Plans, image_source: str) -> np.ndarray:
    source = label.source or "label"
    if label.data.ndim != 4 or label.data.shape[0] != 1:
        raise DatasetError(f"{source}: a label map must have one channel, got shape {label.data.shape}")
    seg = label.data[0]
    if seg.shape != image.data.shape[1:]:
        raise DatasetError(
            f"{source}: label shape {seg.shape} differs from the image shape {image.data.shape[1:]} "
            f"({image_source}); resample or re-export the label on the image grid"
        )
    if not np.allclose(label.geometry.spacing, image.geometry.spacing, rtol=SPACING_RTOL):
        raise DatasetError(
            f"{source}: label spacing {label.geometry.spacing} differs from the image spacing "
            f"{image.geometry.spacing} ({image_source}); they must share one grid"
        )
    origin_tolerance = ORIGIN_TOLERANCE * min(image.geometry.spacing)
    if not np.allclose(label.geometry.origin, image.geometry.origin, rtol=0, atol=origin_tolerance):
        raise DatasetError(
            f"{source}: label origin {label.geometry.origin} differs from the image origin "
            f"{image.geometry.origin} ({image_source}); the label is shifted: re-export it on the image grid"
        )
    if not np.allclose(label.geometry.direction, image.geometry.direction, rtol=0, atol=DIRECTION_TOLERANCE):
        raise DatasetError(
            f"{source}: label direction {label.geometry.direction} differs from the image direction "
            f"{image.geometry.direction} ({image_source}); the label is flipped or rotated: re-export it"
        )
    if seg.dtype.kind == "f":
        if not np.isfinite(seg).all() or not np.array_equal(seg, np.round(seg)):
            raise DatasetError(f"{source}: the label map holds non-integer values; labels must be whole numbers")
    elif seg.dtype.kind not in "biu":
        raise DatasetError(f"{source}: label voxel type {seg.dtype} is not an integer type")
    declared = plans.label_values
    low, high = int(seg.min()), int(seg.max())
    if declared == tuple(range(declared[0], declared[-1] + 1)) and declared[0] <= low and high <= declared[-1]:
        return seg  # inside a gap-free declared range: nothing else to check
    unknown = sorted(set(_present_values(seg, low, high)) - set(declared))
    if unknown:
        raise DatasetError(
            f"{source}: label values {unknown} are not declared in the plans' labels {sorted(plans.label_values)}; "
            "fix the label file, or declare the labels in dataset.json and re-plan"
        )
    return seg


def _present_values(seg: np.ndarray, low: int, high: int) -> list[int]:
    """Distinct values of an integer-valued array with values in ``low..high``, chunk by chunk (small memory)."""
    if high - low > 1_000_000:
        return [int(v) for v in np.unique(seg)]
    counts = np.zeros(high - low + 1, dtype=np.int64)
    flat = seg.reshape(-1)
    for start in range(0, flat.size, _COUNT_CHUNK):
        counts += np.bincount(flat[start : start + _COUNT_CHUNK].astype(np.intp) - low, minlength=counts.size)
    return [int(v) + low for v in np.flatnonzero(counts)]


#: Voxels counted per step in :func:`_present_values` (bounds the int64 temporary to 32 MB).
_COUNT_CHUNK = 2**22


def _checked_new_shape(
    shape: Sequence[int],
    spacing: Sequence[float],
    target: Sequence[float],
    image: Image,
    slice_axis: int,
    configuration_name: str,
    source: str,
) -> tuple[int, ...]:
    new_shape = compute_new_shape(shape, spacing, target)
    if image.geometry.is_2d and new_shape[slice_axis] != shape[slice_axis]:
        raise DatasetError(
            f"{source} is a 2D image but configuration {configuration_name!r} resamples its slice axis "
            f"to {target[slice_axis]} mm; a dataset must be all 2D or all 3D (remove the image or convert it)"
        )
    zoom = max(n / s for n, s in zip(new_shape, shape))
    if zoom > MAX_AXIS_ZOOM or int(np.prod(new_shape, dtype=np.float64)) > MAX_OUTPUT_VOXELS:
        raise DatasetError(
            f"{source}: resampling {tuple(shape)} voxels from spacing {tuple(spacing)} to {tuple(target)} mm "
            f"would create {tuple(new_shape)} voxels; check the spacing in the file header"
        )
    return new_shape
