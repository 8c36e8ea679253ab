"""Check one case's files: readable, non-empty, finite, co-registered, and labels as declared."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from autounet.dataset.check_report import Problem
from autounet.errors import ImageReadError
from autounet.io import Geometry, Image, is_2d_extension, read_image, read_image_geometry
from autounet.io.nifti_raw import count_nonfinite_nifti

#: Relative tolerance for spacing differences between an image and its label (0.1 %): float32 headers written by
#: different tools differ in the last digits, a real resampling changes spacing by far more.
SPACING_RTOL = 1e-3
#: Origin tolerance as a fraction of the (smallest real) voxel size: a shift of 1/100 voxel is invisible, a
#: misregistration is at least a sizeable fraction of a voxel.
ORIGIN_TOLERANCE_VOXELS = 1e-2
#: Absolute tolerance on direction cosines (unit vectors), ITK writes them with about 6 significant digits.
DIRECTION_ATOL = 1e-3
#: Spacing above this (mm) on a real axis is suspicious: no clinical scanner has 10 cm voxels; usually the unit
#: is wrong (micrometres read as millimetres) or the header was filled in by hand.
MAX_PLAUSIBLE_SPACING_MM = 100.0
#: Cases with more voxels than this are not decoded by the check (bounded memory): 2**31 voxels of float32 = 8 GB.
MAX_CHECK_VOXELS = 2**31


@dataclass(frozen=True)
class CaseTask:
    """What the check of one case needs, as plain data (it is sent to worker processes)."""

    case_id: str
    image_files: tuple[str, ...]
    label_file: str | None
    num_channels: int | None
    label_values: tuple[int, ...]


@dataclass
class CaseResult:
    """Problems of one case plus what the cross-case checks and the summary need."""

    case_id: str
    problems: list[Problem] = field(default_factory=list)
    shape: tuple[int, ...] | None = None
    spacing: tuple[float, ...] | None = None
    is_2d: bool | None = None
    num_channels: int | None = None
    image_file: str | None = None


def check_case(task: CaseTask) -> CaseResult:
    """Run every per-case check on ``task``; never raises (an unexpected failure becomes a problem)."""
    result = CaseResult(task.case_id)
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # ITK prints header warnings; the check reports its own
    try:
        reference = _check_images(task, result)
        if reference is not None and task.label_file is not None:
            _check_label(task, reference, result)
    except Exception as err:  # one odd file must not stop the check of the other cases
        files = task.image_files + ((task.label_file,) if task.label_file else ())
        result.problems.append(_problem(
            "error", task, files, f"checking this case failed unexpectedly: {type(err).__name__}: {err}",
            "open the files in an image viewer; if they look fine, report this as an autounet bug", "check_failed",
        ))
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)
    return result


def _problem(severity, task: CaseTask, files, message: str, fix: str, kind: str) -> Problem:
    return Problem(severity, task.case_id, tuple(str(f) for f in files), message, fix, kind)


def _read(path: str, task: CaseTask, result: CaseResult) -> Image | None:
    """Header first (cheap, bounds memory), then voxels; a failure becomes a problem and returns None."""
    try:
        if is_2d_extension(path):  # flat formats have no separate header: decoding is the only way
            return read_image(path)
        shape, channels, _ = read_image_geometry(path)
        if any(size == 0 for size in shape):
            raise ImageReadError(f"{path}: zero-size image (shape {shape}); the file holds no voxels")
        if math.prod(shape) * channels > MAX_CHECK_VOXELS:
            result.problems.append(_problem(
                "warning", task, [path], f"{math.prod(shape) * channels} voxels: too large for the check to decode; "
                "only its header was checked", "split the volume or check it with an image viewer", "too_large",
            ))
            return None
        return read_image(path)
    except ImageReadError as err:
        kind = "zero_size" if "zero-size" in str(err) or "empty (0 bytes)" in str(err) else "unreadable"
        result.problems.append(_problem(
            "error", task, [path], str(err).replace(f"{path}: ", "", 1),
            "re-export or re-download the file, or remove the case from the dataset", kind,
        ))
        return None


def _check_images(task: CaseTask, result: CaseResult) -> Image | None:
    """Check every channel file; return the first channel file's image (its geometry is the reference)."""
    reference: Image | None = None
    channels = 0
    readable = True
    for path in task.image_files:
        image = _read(path, task, result)
        if image is None:
            readable = False
            continue
        channels += image.num_channels
        _check_intensities(task, image, result)
        if reference is None:
            reference = image
            _check_spacing_plausible(task, image, result)
        else:
            _compare_grid(task, reference, image, "channel file", result)
        image.data = image.data[:0]  # release voxels early; only the geometry is kept (bounded memory)
    if reference is None:
        return None
    result.shape, result.spacing = reference.spatial_shape, reference.geometry.spacing
    result.is_2d, result.num_channels = reference.geometry.is_2d, channels
    result.image_file = reference.source
    if readable and task.num_channels is not None and channels != task.num_channels:
        result.problems.append(_problem(
            "error", task, task.image_files, f"{channels} channel(s) found but dataset.json declares {task.num_channels}",
            "give every case the declared channels, or fix the channel list (modality/channel_names) in dataset.json",
            "channel_count",
        ))
    return reference


def _check_intensities(task: CaseTask, image: Image, result: CaseResult) -> None:
    data = image.data
    nans = infs = 0
    if data.dtype.kind in "fc":
        nans = int(np.count_nonzero(np.isnan(data)))
        infs = int(data.size - np.count_nonzero(np.isfinite(data))) - nans
    detail = f"{nans + infs} voxel(s) are not finite ({nans} NaN, {infs} Inf)"
    if not nans + infs and data.dtype.kind == "f":
        raw = count_nonfinite_nifti(image.source)  # ITK reads NaN/Inf in NIfTI files as 0: look at the bytes
        if raw:
            nans, detail = raw, f"{raw} voxel(s) are NaN or Inf in the file (ITK reads them as 0)"
    if nans + infs:
        result.problems.append(_problem(
            "error", task, [image.source], detail,
            "replace them (e.g. by the minimum intensity) when exporting, or remove the case", "nonfinite_intensity",
        ))
    if not np.any(data):
        result.problems.append(_problem(
            "error", task, [image.source], f"the image is empty: all {data[0].size} voxels are 0",
            "re-export the image (it probably failed to convert), or remove the case", "empty_image",
        ))


def _check_spacing_plausible(task: CaseTask, image: Image, result: CaseResult) -> None:
    geometry = image.geometry
    real_axes = range(1, 3) if geometry.is_2d else range(3)
    spacing = [geometry.spacing[axis] for axis in real_axes]
    if any(not math.isfinite(s) or s <= 0 for s in spacing):
        result.problems.append(_problem(
            "error", task, [image.source], f"spacing {geometry.spacing} mm has zero, negative or non-finite values",
            "write the true voxel size into the image header", "invalid_spacing",
        ))
    elif max(spacing) > MAX_PLAUSIBLE_SPACING_MM:
        result.problems.append(_problem(
            "warning", task, [image.source],
            f"spacing {geometry.spacing} mm is implausibly large (> {MAX_PLAUSIBLE_SPACING_MM:g} mm on a real axis)",
            "check the header's unit (mm expected) and voxel size", "suspicious_spacing",
        ))


def geometry_mismatches(reference: Geometry, other: Geometry) -> list[str]:
    """Describe how ``other`` differs from ``reference`` beyond the tolerances (empty list: same grid).

    Spacing is compared with relative tolerance :data:`SPACING_RTOL`, origins with
    :data:`ORIGIN_TOLERANCE_VOXELS` times the smallest real voxel size, direction cosines with
    :data:`DIRECTION_ATOL`.

    Examples
    --------
    >>> a = Geometry(spacing=(1.0, 1.0, 1.0))
    >>> geometry_mismatches(a, Geometry(spacing=(1.0, 1.0, 1.0004), origin=(0.0, 0.005, 0.0)))
    []
    >>> geometry_mismatches(a, Geometry(spacing=(1.0, 1.5, 1.0)))
    ['spacing (1.0, 1.5, 1.0) instead of (1.0, 1.0, 1.0)']
    >>> geometry_mismatches(a, Geometry(spacing=(1.0, 1.0, 1.0), origin=(0.0, 2.0, 0.0)))
    ['origin (0.0, 2.0, 0.0) instead of (0.0, 0.0, 0.0)']
    """
    found = []
    if reference.is_2d != other.is_2d:
        found.append(f"{'2D' if other.is_2d else '3D'} file where the image is {'2D' if reference.is_2d else '3D'}")
    ref_spacing, spacing = np.asarray(reference.spacing), np.asarray(other.spacing)
    if not np.allclose(spacing, ref_spacing, rtol=SPACING_RTOL, atol=0):
        found.append(f"spacing {_rounded(other.spacing)} instead of {_rounded(reference.spacing)}")
    real = ref_spacing[1:] if reference.is_2d else ref_spacing
    origin_tolerance = ORIGIN_TOLERANCE_VOXELS * float(np.min(np.abs(real)))
    if np.max(np.abs(np.subtract(other.origin, reference.origin))) > origin_tolerance:
        found.append(f"origin {_rounded(other.origin)} instead of {_rounded(reference.origin)}")
    if np.max(np.abs(np.subtract(other.direction, reference.direction))) > DIRECTION_ATOL:
        found.append(f"direction {_rounded(other.direction)} instead of {_rounded(reference.direction)}")
    return found


def _rounded(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(round(float(v), 4) + 0.0 for v in values)  # + 0.0 turns -0.0 into 0.0


def _compare_grid(task: CaseTask, reference: Image, other: Image, what: str, result: CaseResult) -> bool:
    """Report shape and geometry differences between ``other`` and the case's first image file."""
    files = [reference.source, other.source]
    if other.spatial_shape != reference.spatial_shape:
        result.problems.append(_problem(
            "error", task, files, f"{what} shape {other.spatial_shape} differs from image shape {reference.spatial_shape}",
            f"re-export the {what} on the image's voxel grid (same size; check for swapped or transposed axes)",
            "shape_mismatch",
        ))
        return False
    for mismatch in geometry_mismatches(reference.geometry, other.geometry):
        kind = mismatch.split(" ")[0] if mismatch.split(" ")[0] in ("spacing", "origin", "direction") else "dimensionality"
        result.problems.append(_problem(
            "error", task, files, f"{what} {mismatch} (z, y, x order)",
            f"the {what} must lie on the image's grid: copy the image header into it or resample it onto the image",
            f"{kind}_mismatch",
        ))
    return True


def _check_label(task: CaseTask, reference: Image, result: CaseResult) -> None:
    assert task.label_file is not None
    label = _read(task.label_file, task, result)
    if label is None:
        return
    path = task.label_file
    if label.num_channels != 1:
        result.problems.append(_problem(
            "error", task, [path], f"the label map has {label.num_channels} channels; it must have one",
            "save the label as a single-channel integer image (not RGB or vector pixels)", "label_channels",
        ))
        return
    _compare_grid(task, reference, label, "label", result)
    data = label.data[0]
    if data.dtype.kind in "fc":
        finite = np.isfinite(data)
        not_whole = ~finite | (np.mod(np.where(finite, data, 0), 1) != 0)
        bad = int(np.count_nonzero(not_whole))
        examples = ", ".join(f"{v:g}" for v in np.unique(data[not_whole])[:5])
        if not bad:  # ITK reads NaN/Inf in NIfTI files as 0 (background): look at the bytes
            bad, examples = count_nonfinite_nifti(path) or 0, "NaN/Inf in the file"
        if bad:
            result.problems.append(_problem(
                "error", task, [path], f"{bad} label voxel(s) are not whole numbers (e.g. {examples})",
                "re-export the label with nearest-neighbour interpolation as an integer image", "non_integer_label",
            ))
            return
    values, counts = _value_counts(data)
    undeclared = [(int(v), int(n)) for v, n in zip(values, counts) if int(v) not in task.label_values]
    if undeclared:
        listed = ", ".join(f"{v} ({n} voxels)" for v, n in undeclared[:8])
        result.problems.append(_problem(
            "error", task, [path], f"label values not declared in dataset.json: {listed}; declared: "
            f"{', '.join(str(v) for v in task.label_values)}",
            "relabel these voxels, or add the values to 'labels' in dataset.json", "undeclared_label",
        ))
    if values.size and np.all(values == 0):
        result.problems.append(_problem(
            "warning", task, [path], "the label map is all background (0)",
            "fine if the case truly has no foreground; otherwise the annotation is missing", "empty_label",
        ))


#: Label maps whose values are all below this are counted with ``np.bincount`` (linear time, no sort).
_BINCOUNT_LIMIT = 1 << 16


def _value_counts(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a whole-numbered label map and their voxel counts.

    Examples
    --------
    >>> _value_counts(np.array([[0, 2, 2]], dtype=np.uint8))
    (array([0, 2]), array([1, 2]))
    """
    if data.size and data.dtype.kind in "bui" and 0 <= int(data.min()) and int(data.max()) < _BINCOUNT_LIMIT:
        counts = np.bincount(data.ravel().astype(np.intp, copy=False))
        values = np.flatnonzero(counts)
        return values, counts[values]
    values, counts = np.unique(data, return_counts=True)
    return values.astype(np.int64), counts
