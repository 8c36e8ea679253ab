"""Segmentation quality metrics on NumPy arrays: overlap counts and surface distances in millimetres.

Everything here is a pure function of arrays and a spacing; there is no file I/O. Arrays are in array
axis order ``(z, y, x)`` (or any number of axes) and the spacing is given per array axis in mm. Axes
of length 1 (the first axis of a 2D image stored as ``(1, y, x)`` with a placeholder spacing) are
dropped for the surface metrics and the volumes, so 2D images are measured in 2D.

Conventions for empty masks (see ``docs/evaluation.md``):

* reference and prediction both empty: every ratio metric (Dice, IoU, precision, recall, NSD) and both
  distances (HD95, ASSD) are NaN ("nothing to find, nothing found" is undefined, as in nnU-Net) and are
  left out of means; specificity is 1 and the counts are exact.
* exactly one of them empty: Dice, IoU and NSD are 0; HD95 and ASSD are the diagonal of the image's
  field of view in mm (the largest distance the image can hold, the BraTS convention), so a missed or
  hallucinated structure is penalised in the mean rather than hidden.
* precision with an empty prediction, recall with an empty reference and specificity without any
  reference background are NaN (division by zero).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage

#: Default tolerance of the normalized surface Dice, in mm.
DEFAULT_NSD_TOLERANCE_MM = 1.0

#: Percentile of the robust Hausdorff distance (MedPy ``hd95``).
HAUSDORFF_PERCENTILE = 95.0

#: Voxels kept around the bounding box of both masks before finding their surfaces. The erosion that
#: finds border voxels looks one voxel away, so a margin of one makes the crop give the same result as
#: the whole image (a crop clipped at the image edge behaves like the image edge itself).
_CROP_MARGIN = 1

#: Metric names in the order they are reported.
METRIC_NAMES = (
    "Dice",
    "IoU",
    "Precision",
    "Recall",
    "Specificity",
    "HD95",
    "ASSD",
    "NSD",
    "TP",
    "FP",
    "FN",
    "TN",
    "n_ref",
    "n_pred",
    "volume_ref",
    "volume_pred",
)

#: Unit of each metric. Volumes are in mm^2 for 2D images (axes of length 1 are dropped).
METRIC_UNITS = {
    "Dice": "1",
    "IoU": "1",
    "Precision": "1",
    "Recall": "1",
    "Specificity": "1",
    "HD95": "mm",
    "ASSD": "mm",
    "NSD": "1",
    "TP": "voxels",
    "FP": "voxels",
    "FN": "voxels",
    "TN": "voxels",
    "n_ref": "voxels",
    "n_pred": "voxels",
    "volume_ref": "mm^3",
    "volume_pred": "mm^3",
}

#: Metrics that need surfaces (skipped when ``surface_metrics=False``; then NaN).
SURFACE_METRICS = ("HD95", "ASSD", "NSD")


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator > 0 else math.nan


def _as_mask(array: np.ndarray) -> np.ndarray:
    return np.asarray(array).astype(bool, copy=False)


def _check_pair(reference: np.ndarray, prediction: np.ndarray, spacing_mm: Sequence[float] | None) -> tuple[float, ...]:
    if reference.shape != prediction.shape:
        raise ValueError(
            f"reference has shape {reference.shape} but prediction has shape {prediction.shape}; "
            "compare a prediction with the reference of the same case, in the same geometry"
        )
    if spacing_mm is None:
        return (1.0,) * reference.ndim
    spacing = tuple(float(s) for s in spacing_mm)
    if len(spacing) != reference.ndim:
        raise ValueError(
            f"spacing_mm has {len(spacing)} values but the arrays have {reference.ndim} axes; "
            "pass one spacing per array axis, in array order"
        )
    if not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing_mm must be positive and finite, got {spacing}")
    return spacing


def _drop_singleton_axes(shape: Sequence[int], spacing: Sequence[float]) -> tuple[tuple[int, ...], tuple[float, ...]]:
    kept = [axis for axis, size in enumerate(shape) if size > 1] or [0]
    return tuple(int(shape[a]) for a in kept), tuple(float(spacing[a]) for a in kept)


def _image_diagonal_mm(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """Diagonal of the field of view, ``sqrt(sum((n_i * s_i)^2))`` over axes longer than 1."""
    kept_shape, kept_spacing = _drop_singleton_axes(shape, spacing)
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(kept_shape, kept_spacing))))


def confusion_counts(reference: np.ndarray, prediction: np.ndarray) -> tuple[int, int, int, int]:
    """Voxel counts ``(TP, FP, FN, TN)`` of a binary prediction against a binary reference.

    Parameters
    ----------
    reference, prediction : ndarray of the same shape
        Masks; any non-zero value is foreground.

    Examples
    --------
    >>> confusion_counts(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]))
    (1, 1, 1, 1)
    """
    ref, pred = _as_mask(reference), _as_mask(prediction)
    if ref.shape != pred.shape:
        raise ValueError(f"reference has shape {ref.shape} but prediction has shape {pred.shape}; pass masks of one shape")
    tp = int(np.count_nonzero(ref & pred))
    n_ref, n_pred = int(np.count_nonzero(ref)), int(np.count_nonzero(pred))
    fp, fn = n_pred - tp, n_ref - tp
    return tp, fp, fn, int(ref.size) - tp - fp - fn


def overlap_metrics(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """Dice, IoU, precision, recall and specificity from voxel counts (NaN where a denominator is 0).

    Examples
    --------
    >>> m = overlap_metrics(tp=2, fp=1, fn=1, tn=4)
    >>> round(m["Dice"], 4), m["IoU"], round(m["Precision"], 4), round(m["Specificity"], 2)
    (0.6667, 0.5, 0.6667, 0.8)
    >>> overlap_metrics(0, 0, 0, 10)["Dice"]
    nan
    """
    return {
        "Dice": _ratio(2 * tp, 2 * tp + fp + fn),
        "IoU": _ratio(tp, tp + fp + fn),
        "Precision": _ratio(tp, tp + fp),
        "Recall": _ratio(tp, tp + fn),
        "Specificity": _ratio(tn, tn + fp),
    }


def dice(reference: np.ndarray, prediction: np.ndarray) -> float:
    """Dice coefficient ``2|R∩P| / (|R| + |P|)`` of two masks; NaN if both are empty.

    Examples
    --------
    >>> dice(np.array([1, 1, 0]), np.array([0, 1, 1]))
    0.5
    """
    tp, fp, fn, _ = confusion_counts(reference, prediction)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def surface_distances(
    reference: np.ndarray, prediction: np.ndarray, spacing_mm: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each border voxel of one mask to the nearest border voxel of the other.

    A border voxel is a foreground voxel with at least one face neighbour in the background (binary
    erosion with a connectivity-1 structure, outside the image counting as background), exactly as in
    MedPy's ``__surface_distances``. Axes of length 1 are dropped first, so a ``(1, y, x)`` image is
    treated as 2D. The work is done on the bounding box of both masks plus a one-voxel margin, which
    gives the same distances as the whole image.

    Parameters
    ----------
    reference, prediction : ndarray of the same shape, array axis order
        Masks; any non-zero value is foreground. Both must be non-empty.
    spacing_mm : sequence of float, optional
        Voxel size per array axis in mm (default 1 mm on every axis).

    Returns
    -------
    prediction_to_reference : ndarray of float64, shape (number of prediction border voxels,)
    reference_to_prediction : ndarray of float64, shape (number of reference border voxels,)

    Raises
    ------
    ValueError
        If the shapes or the spacing do not fit, or a mask is empty (distances to nothing are
        undefined; :func:`binary_metrics` applies the documented convention instead).

    Examples
    --------
    >>> a = np.zeros((1, 5, 5)); a[0, 1:4, 1:4] = 1
    >>> b = np.roll(a, 1, axis=2)
    >>> d_pred, d_ref = surface_distances(a, b, spacing_mm=(999, 1.0, 2.0))
    >>> d_pred.tolist()  # b's border voxels row by row; (2, 2) lies inside a, 1 mm from a's border
    [0.0, 0.0, 2.0, 1.0, 2.0, 0.0, 0.0, 2.0]
    """
    ref, pred = _as_mask(reference), _as_mask(prediction)
    spacing = _check_pair(ref, pred, spacing_mm)
    if not ref.any() or not pred.any():
        raise ValueError(
            "surface distances need a non-empty reference and prediction; "
            "use binary_metrics for the convention on empty masks"
        )
    shape, spacing = _drop_singleton_axes(ref.shape, spacing)
    ref, pred = ref.reshape(shape), pred.reshape(shape)
    either = ref | pred
    box = []
    for axis in range(either.ndim):
        others = tuple(a for a in range(either.ndim) if a != axis)
        hits = np.flatnonzero(np.any(either, axis=others)) if others else np.flatnonzero(either)
        box.append(slice(max(int(hits[0]) - _CROP_MARGIN, 0), int(hits[-1]) + 1 + _CROP_MARGIN))
    ref, pred = ref[tuple(box)], pred[tuple(box)]
    footprint = ndimage.generate_binary_structure(ref.ndim, 1)
    ref_border = ref ^ ndimage.binary_erosion(ref, structure=footprint, iterations=1)
    pred_border = pred ^ ndimage.binary_erosion(pred, structure=footprint, iterations=1)
    # The distance transform measures the distance to the nearest zero, so invert the border.
    to_reference = ndimage.distance_transform_edt(~ref_border, sampling=spacing)
    to_prediction = ndimage.distance_transform_edt(~pred_border, sampling=spacing)
    return np.asarray(to_reference[pred_border], dtype=np.float64), np.asarray(to_prediction[ref_border], dtype=np.float64)


def surface_metrics_from_distances(
    prediction_to_reference: np.ndarray,
    reference_to_prediction: np.ndarray,
    nsd_tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM,
) -> dict[str, float]:
    """HD95, ASSD and NSD from the two directed sets of surface distances (both non-empty).

    * ``HD95``: 95th percentile of both sets taken together (MedPy ``hd95``, linear interpolation).
    * ``ASSD``: mean over both sets taken together, ``(sum d_pred + sum d_ref) / (n_pred + n_ref)``
      (Heimann et al. 2009; MedPy >= 0.5 ``assd``; MedPy 0.4 averaged the two directed means instead).
    * ``NSD``: fraction of border voxels of both masks lying within ``nsd_tolerance_mm`` of the other
      surface (``<=``), counting voxels (MONAI ``compute_surface_dice`` without sub-voxels).

    Examples
    --------
    >>> m = surface_metrics_from_distances(np.array([0.0, 1.0]), np.array([0.0, 0.0, 3.0]), 1.0)
    >>> m["ASSD"], m["NSD"]
    (0.8, 0.8)
    """
    d_pred = np.asarray(prediction_to_reference, dtype=np.float64)
    d_ref = np.asarray(reference_to_prediction, dtype=np.float64)
    if d_pred.size == 0 or d_ref.size == 0:
        raise ValueError("both distance sets must be non-empty (each mask needs at least one border voxel)")
    within = np.count_nonzero(d_pred <= nsd_tolerance_mm) + np.count_nonzero(d_ref <= nsd_tolerance_mm)
    return {
        "HD95": float(np.percentile(np.concatenate([d_pred, d_ref]), HAUSDORFF_PERCENTILE)),
        "ASSD": float((d_pred.sum() + d_ref.sum()) / (d_pred.size + d_ref.size)),
        "NSD": float(within) / float(d_pred.size + d_ref.size),
    }


def empty_pair_metrics(num_voxels: int, voxel_volume_mm3: float = 1.0) -> dict[str, float]:
    """The metrics of an empty reference against an empty prediction in an image of ``num_voxels``.

    Equal to ``binary_metrics(zeros, zeros, spacing)`` without building the arrays: counts are exact,
    specificity is 1, every other ratio and distance is NaN. ``voxel_volume_mm3`` is unused (the volumes
    are 0) and kept for symmetry with :func:`binary_metrics`.
    """
    metrics = dict(overlap_metrics(0, 0, 0, int(num_voxels)))
    metrics.update({name: math.nan for name in SURFACE_METRICS})
    metrics.update({"TP": 0, "FP": 0, "FN": 0, "TN": int(num_voxels), "n_ref": 0, "n_pred": 0})
    metrics.update({"volume_ref": 0.0, "volume_pred": 0.0})
    return {name: metrics[name] for name in METRIC_NAMES}


def binary_metrics(
    reference: np.ndarray,
    prediction: np.ndarray,
    spacing_mm: Sequence[float] | None = None,
    nsd_tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM,
    surface_metrics: bool = True,
) -> dict[str, float]:
    """Every metric of :data:`METRIC_NAMES` for one binary reference/prediction pair.

    Parameters
    ----------
    reference, prediction : ndarray of the same shape, array axis order
        Masks; any non-zero value is foreground. 2D images are ``(1, y, x)``.
    spacing_mm : sequence of float, optional
        Voxel size per array axis in mm (default 1 mm on every axis). The spacing of axes of length 1
        (e.g. the placeholder 999 of 2D images) is ignored.
    nsd_tolerance_mm : float
        Distance within which a surface voxel counts as matched for NSD.
    surface_metrics : bool
        False skips HD95, ASSD and NSD (reported as NaN), which is much faster on large images.

    Returns
    -------
    dict of str to float
        Keys :data:`METRIC_NAMES`; counts are ints, distances in mm, volumes in mm^3 (mm^2 in 2D).
        Empty masks follow the conventions in the module docstring.

    Examples
    --------
    >>> ref = np.zeros((1, 6, 6), np.uint8); ref[0, 1:4, 1:4] = 1
    >>> pred = np.zeros_like(ref); pred[0, 2:5, 1:4] = 1
    >>> m = binary_metrics(ref, pred, spacing_mm=(999, 0.5, 0.5))
    >>> round(m["Dice"], 4), m["HD95"], m["volume_ref"]
    (0.6667, 0.5, 2.25)
    """
    ref, pred = _as_mask(reference), _as_mask(prediction)
    spacing = _check_pair(ref, pred, spacing_mm)
    tp, fp, fn, tn = confusion_counts(ref, pred)
    n_ref, n_pred = tp + fn, tp + fp
    _, kept_spacing = _drop_singleton_axes(ref.shape, spacing)
    voxel_volume = float(np.prod(kept_spacing))
    metrics: dict[str, float] = dict(overlap_metrics(tp, fp, fn, tn))
    if not surface_metrics or (n_ref == 0 and n_pred == 0):
        metrics.update({name: math.nan for name in SURFACE_METRICS})
    elif n_ref == 0 or n_pred == 0:
        diagonal = _image_diagonal_mm(ref.shape, spacing)
        metrics.update({"HD95": diagonal, "ASSD": diagonal, "NSD": 0.0})
    else:
        metrics.update(surface_metrics_from_distances(*surface_distances(ref, pred, spacing), nsd_tolerance_mm))
    metrics.update({"TP": tp, "FP": fp, "FN": fn, "TN": tn, "n_ref": n_ref, "n_pred": n_pred})
    metrics.update({"volume_ref": n_ref * voxel_volume, "volume_pred": n_pred * voxel_volume})
    return {name: metrics[name] for name in METRIC_NAMES}


def check_label_values(array: np.ndarray, what: str = "label map") -> np.ndarray:
    """Return ``array`` as integers, or raise ``ValueError`` if it holds non-integer or non-finite values.

    Examples
    --------
    >>> check_label_values(np.array([0.0, 2.0])).tolist()
    [0, 2]
    """
    array = np.asarray(array)
    if array.dtype == bool or np.issubdtype(array.dtype, np.integer):
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{what} has dtype {array.dtype}; expected integer label values")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or Inf; expected integer label values")
    fractional = array[array != np.round(array)]
    if fractional.size:
        raise ValueError(
            f"{what} holds non-integer values (e.g. {float(fractional.flat[0]):g}); expected integer labels. "
            "Is this a probability map? Write the argmax (one integer per voxel) instead"
        )
    return array.astype(np.int64)


def region_key(region: Sequence[int]) -> str:
    """Name of an unnamed region in results, as nnU-Net writes it: ``"(1, 2)"``."""
    return str(tuple(int(v) for v in region))


def compute_metrics(
    reference_labels: np.ndarray,
    predicted_labels: np.ndarray,
    labels: Sequence[int] | None = None,
    spacing_mm: Sequence[float] | None = None,
    regions: Mapping[str, Sequence[int]] | Sequence[Sequence[int]] | None = None,
    nsd_tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM,
    surface_metrics: bool = True,
) -> dict[str, dict[str, float]]:
    """Metrics per label (and per region) of a multi-label prediction against a multi-label reference.

    Parameters
    ----------
    reference_labels, predicted_labels : ndarray of int, same shape, array axis order
        Label maps, e.g. ``(z, y, x)``; 2D images are ``(1, y, x)``. Float arrays are accepted if every
        value is an integer.
    labels : sequence of int, optional
        Label values to evaluate, each as the mask ``map == value``. Default: the non-zero values of
        the reference.
    spacing_mm : sequence of float, optional
        Voxel size per array axis in mm (default 1 mm).
    regions : mapping of str to sequence of int, or sequence of sequences of int, optional
        Regions to evaluate in addition, each as the mask ``isin(map, values)`` (nnU-Net v2 regions).
        Unnamed regions are keyed ``"(1, 2)"``.
    nsd_tolerance_mm : float
        NSD tolerance in mm.
    surface_metrics : bool
        False skips HD95, ASSD and NSD.

    Returns
    -------
    dict
        ``{key: {metric: value}}`` with key ``str(label)`` per label, then the region names, each value a
        dict as returned by :func:`binary_metrics`.

    Examples
    --------
    >>> ref = np.array([[[0, 1, 1, 2, 2]]]); pred = np.array([[[0, 1, 2, 2, 2]]])
    >>> result = compute_metrics(ref, pred, spacing_mm=(1, 1, 1), regions={"foreground": (1, 2)})
    >>> list(result), round(result["1"]["Dice"], 4), result["2"]["Dice"], result["foreground"]["Dice"]
    (['1', '2', 'foreground'], 0.6667, 0.8, 1.0)
    """
    reference_labels = check_label_values(reference_labels, "reference")
    predicted_labels = check_label_values(predicted_labels, "prediction")
    spacing = _check_pair(reference_labels, predicted_labels, spacing_mm)
    if labels is None:
        labels = [int(v) for v in np.unique(reference_labels) if v != 0]
    masks: dict[str, tuple[int | Sequence[int], bool]] = {str(int(v)): (int(v), False) for v in labels}
    if regions is not None:
        items = regions.items() if isinstance(regions, Mapping) else ((region_key(r), r) for r in regions)
        for name, values in items:
            masks[str(name)] = (tuple(int(v) for v in values), True)
    results: dict[str, dict[str, float]] = {}
    for key, (values, is_region) in masks.items():
        if is_region:
            ref = np.isin(reference_labels, values)
            pred = np.isin(predicted_labels, values)
        else:
            ref, pred = reference_labels == values, predicted_labels == values
        results[key] = binary_metrics(ref, pred, spacing, nsd_tolerance_mm, surface_metrics)
    return results
