"""Metrics against hand-computed values, a brute-force surface distance, and MedPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from autounet.evaluation.metrics import (
    METRIC_NAMES,
    binary_metrics,
    check_label_values,
    compute_metrics,
    confusion_counts,
    dice,
    empty_pair_metrics,
    surface_distances,
)

ANISOTROPIC_SPACING = (3.0, 0.8, 1.3)


# ----------------------------------------------------------------------------------------------------------------
# Reference implementation: border voxels found by looking at face neighbours, all-pairs distances in mm.


def _brute_border(mask: np.ndarray) -> np.ndarray:
    """Foreground voxels with a face neighbour in the background; outside the array is background."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = tuple(slice(1, -1) for _ in range(mask.ndim))
    all_neighbours_inside = np.ones(mask.shape, bool)
    for axis in range(mask.ndim):
        for step in (-1, 1):
            all_neighbours_inside &= np.roll(padded, step, axis=axis)[inner]
    return mask & ~all_neighbours_inside


def _brute_surface_metrics(reference: np.ndarray, prediction: np.ndarray, spacing, tolerance: float) -> dict:
    keep = [axis for axis, size in enumerate(reference.shape) if size > 1]
    reference = reference.reshape([reference.shape[a] for a in keep]).astype(bool)
    prediction = prediction.reshape([prediction.shape[a] for a in keep]).astype(bool)
    scale = np.array([spacing[a] for a in keep])
    ref_points = np.argwhere(_brute_border(reference)) * scale
    pred_points = np.argwhere(_brute_border(prediction)) * scale
    pairwise = cdist(pred_points, ref_points)
    d_pred, d_ref = pairwise.min(axis=1), pairwise.min(axis=0)
    both = np.concatenate([d_pred, d_ref])
    return {
        "HD95": np.percentile(both, 95),
        "ASSD": both.mean(),
        "NSD": np.count_nonzero(both <= tolerance) / both.size,
        "d_pred": np.sort(d_pred),
        "d_ref": np.sort(d_ref),
    }


def _random_blob(rng: np.random.Generator, shape) -> np.ndarray:
    """A few smooth random blobs, some touching the array edge."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=1.5)
    mask = noise > np.quantile(noise, rng.uniform(0.6, 0.85))
    return mask


# ----------------------------------------------------------------------------------------------------------------
# Overlap metrics by hand.


def test_overlap_metrics_by_hand():
    reference = np.array([[[1, 1, 1, 1, 0, 0, 0, 0, 0, 0]]])
    prediction = np.array([[[0, 0, 1, 1, 1, 0, 0, 0, 0, 0]]])
    assert confusion_counts(reference, prediction) == (2, 1, 2, 5)
    m = binary_metrics(reference, prediction, spacing_mm=(1.0, 2.0, 0.5))
    assert m["Dice"] == pytest.approx(4 / 7)
    assert m["IoU"] == pytest.approx(2 / 5)
    assert m["Precision"] == pytest.approx(2 / 3)
    assert m["Recall"] == pytest.approx(1 / 2)
    assert m["Specificity"] == pytest.approx(5 / 6)
    assert (m["TP"], m["FP"], m["FN"], m["TN"], m["n_ref"], m["n_pred"]) == (2, 1, 2, 5, 4, 3)
    # Axes of length 1 are dropped: the voxel "volume" is the 0.5 mm length along the only real axis.
    assert m["volume_ref"] == pytest.approx(2.0) and m["volume_pred"] == pytest.approx(1.5)
    assert dice(reference, prediction) == pytest.approx(4 / 7)
    assert list(m) == list(METRIC_NAMES)


def test_volumes_use_spacing():
    reference = np.zeros((4, 4, 4), np.uint8)
    reference[1:3, 1:3, 1:3] = 1
    m = binary_metrics(reference, reference, spacing_mm=(2.0, 0.5, 1.5))
    assert m["volume_ref"] == pytest.approx(8 * 2.0 * 0.5 * 1.5)


# ----------------------------------------------------------------------------------------------------------------
# Surface metrics by hand: two offset squares (2D) and two offset cubes (3D).


def test_offset_squares_by_hand():
    # 4x4 squares shifted by 2 voxels along x (0.5 mm each, so 1 mm). Each border (12 voxels) has four
    # voxels at 0, four at 0.5 and four at 1 mm from the other border.
    a = np.zeros((1, 8, 10), np.uint8)
    a[0, 2:6, 2:6] = 1
    b = np.zeros_like(a)
    b[0, 2:6, 4:8] = 1
    spacing = (999.0, 1.0, 0.5)
    d_pred, d_ref = surface_distances(a, b, spacing)
    expected = [0.0] * 4 + [0.5] * 4 + [1.0] * 4
    assert np.sort(d_pred).tolist() == expected and np.sort(d_ref).tolist() == expected
    m = binary_metrics(a, b, spacing, nsd_tolerance_mm=1.0)
    assert m["HD95"] == pytest.approx(1.0)
    assert m["ASSD"] == pytest.approx(0.5)
    assert m["NSD"] == pytest.approx(1.0)
    assert binary_metrics(a, b, spacing, nsd_tolerance_mm=0.5)["NSD"] == pytest.approx(2 / 3)
    assert binary_metrics(a, b, spacing, nsd_tolerance_mm=0.25)["NSD"] == pytest.approx(1 / 3)
    assert m["Dice"] == pytest.approx(0.5) and m["volume_ref"] == pytest.approx(8.0)  # 16 pixels of 0.5 mm^2


def test_offset_cubes_by_hand():
    # 4x4x4 cubes shifted by one slice of 2 mm. Per border (56 voxels): the far face (16) is 2 mm away,
    # the 4 inner voxels of the near face 1 mm (in-plane to the ring), everything else 0.
    a = np.zeros((9, 8, 8), np.uint8)
    a[2:6, 2:6, 2:6] = 1
    b = np.zeros_like(a)
    b[3:7, 2:6, 2:6] = 1
    m = binary_metrics(a, b, spacing_mm=(2.0, 1.0, 1.0), nsd_tolerance_mm=1.0)
    assert m["HD95"] == pytest.approx(2.0)
    assert m["ASSD"] == pytest.approx((2 * (16 * 2 + 4 * 1)) / 112)
    assert m["NSD"] == pytest.approx(80 / 112)
    assert m["Dice"] == pytest.approx(0.75)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_one_voxel_shift_gives_hd95_of_that_spacing(axis):
    reference = np.zeros((20, 20, 20), np.uint8)
    reference[5:14, 4:15, 6:13] = 1
    prediction = np.roll(reference, 1, axis=axis)
    m = binary_metrics(reference, prediction, spacing_mm=ANISOTROPIC_SPACING)
    assert m["HD95"] == pytest.approx(ANISOTROPIC_SPACING[axis])


def test_identical_masks():
    reference = np.zeros((6, 7, 8), bool)
    reference[1:5, 2:6, 3:7] = True
    m = binary_metrics(reference, reference, ANISOTROPIC_SPACING)
    assert (m["Dice"], m["IoU"], m["HD95"], m["ASSD"], m["NSD"]) == (1.0, 1.0, 0.0, 0.0, 1.0)


# ----------------------------------------------------------------------------------------------------------------
# Agreement with the brute-force reference (exact: the distance transform is exact).


@pytest.mark.parametrize("seed", range(8))
def test_surface_metrics_match_brute_force_3d(seed):
    rng = np.random.default_rng(seed)
    shape = (8, 13, 11)
    reference, prediction = _random_blob(rng, shape), _random_blob(rng, shape)
    tolerance = rng.uniform(0.5, 3.0)
    expected = _brute_surface_metrics(reference, prediction, ANISOTROPIC_SPACING, tolerance)
    d_pred, d_ref = surface_distances(reference, prediction, ANISOTROPIC_SPACING)
    np.testing.assert_allclose(np.sort(d_pred), expected["d_pred"], atol=1e-9)
    np.testing.assert_allclose(np.sort(d_ref), expected["d_ref"], atol=1e-9)
    m = binary_metrics(reference, prediction, ANISOTROPIC_SPACING, nsd_tolerance_mm=tolerance)
    for name in ("HD95", "ASSD", "NSD"):
        assert m[name] == pytest.approx(expected[name], abs=1e-9), name


@pytest.mark.parametrize("seed", range(4))
def test_surface_metrics_match_brute_force_2d(seed):
    rng = np.random.default_rng(100 + seed)
    reference, prediction = _random_blob(rng, (1, 17, 23)), _random_blob(rng, (1, 17, 23))
    spacing = (999.0, 0.7, 1.9)
    expected = _brute_surface_metrics(reference, prediction, spacing, 1.0)
    m = binary_metrics(reference, prediction, spacing)
    for name in ("HD95", "ASSD", "NSD"):
        assert m[name] == pytest.approx(expected[name], abs=1e-9), name


def test_small_objects_in_large_image_match_brute_force():
    # Exercises the bounding-box crop: far from the edges, and one object touching the array edge.
    reference = np.zeros((30, 40, 50), bool)
    prediction = np.zeros_like(reference)
    reference[10:14, 12:17, 20:23] = True
    reference[0:2, 0:3, 45:50] = True
    prediction[11:15, 13:16, 21:25] = True
    expected = _brute_surface_metrics(reference, prediction, ANISOTROPIC_SPACING, 1.0)
    m = binary_metrics(reference, prediction, ANISOTROPIC_SPACING)
    for name in ("HD95", "ASSD", "NSD"):
        assert m[name] == pytest.approx(expected[name], abs=1e-9), name


def test_2d_image_is_measured_in_2d():
    square = np.zeros((12, 12), np.uint8)
    square[3:9, 3:9] = 1
    shifted = np.roll(square, 2, axis=1)
    flat = binary_metrics(square, shifted, (0.5, 0.5))
    as_volume = binary_metrics(square[None], shifted[None], (999.0, 0.5, 0.5))
    for name in METRIC_NAMES:
        assert as_volume[name] == pytest.approx(flat[name]), name
    assert as_volume["HD95"] == pytest.approx(1.0)
    assert as_volume["volume_ref"] == pytest.approx(36 * 0.25)  # mm^2: the 999 mm placeholder is ignored
    # A real 3D slab of two slices is different: its top and bottom faces are surface too.
    slab = binary_metrics(np.stack([square] * 2), np.stack([shifted] * 2), (1.0, 0.5, 0.5))
    assert slab["ASSD"] < as_volume["ASSD"]


# ----------------------------------------------------------------------------------------------------------------
# Empty masks: the documented conventions.


def test_both_empty():
    empty = np.zeros((3, 4, 5), np.uint8)
    m = binary_metrics(empty, empty, (1.0, 1.0, 1.0))
    for name in ("Dice", "IoU", "Precision", "Recall", "HD95", "ASSD", "NSD"):
        assert math.isnan(m[name]), name
    assert m["Specificity"] == 1.0
    assert (m["TP"], m["FP"], m["FN"], m["TN"], m["volume_ref"]) == (0, 0, 0, 60, 0.0)
    fast = empty_pair_metrics(60)
    assert list(fast) == list(m)
    assert all((math.isnan(fast[k]) and math.isnan(m[k])) or fast[k] == m[k] for k in m)


def test_empty_prediction():
    reference = np.zeros((10, 20, 30), np.uint8)
    reference[2:5, 3:9, 4:8] = 1
    spacing = (2.0, 1.0, 0.5)
    m = binary_metrics(reference, np.zeros_like(reference), spacing)
    diagonal = math.sqrt(20.0**2 + 20.0**2 + 15.0**2)
    assert (m["Dice"], m["IoU"], m["Recall"], m["NSD"]) == (0.0, 0.0, 0.0, 0.0)
    assert math.isnan(m["Precision"])
    assert m["HD95"] == pytest.approx(diagonal) and m["ASSD"] == pytest.approx(diagonal)


def test_empty_reference():
    prediction = np.zeros((1, 20, 30), np.uint8)
    prediction[0, 3:9, 4:8] = 1
    m = binary_metrics(np.zeros_like(prediction), prediction, (999.0, 1.0, 0.5))
    assert (m["Dice"], m["Precision"], m["NSD"]) == (0.0, 0.0, 0.0)
    assert math.isnan(m["Recall"])
    assert m["HD95"] == pytest.approx(math.hypot(20.0, 15.0))  # 2D: the placeholder axis is not in the diagonal


def test_surface_distances_refuses_empty_masks():
    empty = np.zeros((3, 3, 3))
    with pytest.raises(ValueError, match="non-empty reference and prediction"):
        surface_distances(empty, empty)


def test_surface_metrics_can_be_skipped():
    a = np.ones((2, 3, 3))
    m = binary_metrics(a, a, surface_metrics=False)
    assert m["Dice"] == 1.0 and math.isnan(m["HD95"])


# ----------------------------------------------------------------------------------------------------------------
# Multi-label maps.


def test_compute_metrics_labels_and_regions():
    reference = np.zeros((1, 6, 6), np.uint8)
    reference[0, 1:3, 1:5] = 1
    reference[0, 3:5, 1:5] = 2
    prediction = reference.copy()
    prediction[0, 3, 1:5] = 1  # a row of label 2 predicted as label 1
    result = compute_metrics(reference, prediction, spacing_mm=(999.0, 1.0, 1.0), regions={"whole": (1, 2)})
    assert list(result) == ["1", "2", "whole"]
    assert result["1"]["Dice"] == pytest.approx(2 * 8 / (8 + 12))
    assert result["2"]["Dice"] == pytest.approx(2 * 4 / (8 + 4))
    assert result["whole"]["Dice"] == 1.0
    unnamed = compute_metrics(reference, prediction, labels=[2, 3], regions=[(1, 2)])
    assert list(unnamed) == ["2", "3", "(1, 2)"]
    assert math.isnan(unnamed["3"]["Dice"])  # label 3 absent in both


def test_compute_metrics_matches_binary_metrics_per_label():
    rng = np.random.default_rng(7)
    reference = rng.integers(0, 3, size=(6, 9, 8))
    prediction = rng.integers(0, 3, size=(6, 9, 8))
    result = compute_metrics(reference, prediction, [1, 2], ANISOTROPIC_SPACING, nsd_tolerance_mm=2.0)
    for label in (1, 2):
        expected = binary_metrics(reference == label, prediction == label, ANISOTROPIC_SPACING, 2.0)
        assert result[str(label)] == pytest.approx(expected, nan_ok=True)


def test_float_label_maps_with_integer_values_are_accepted():
    reference = np.array([[[0.0, 1.0, 2.0]]])
    result = compute_metrics(reference, reference.astype(np.int16))
    assert result["1"]["Dice"] == 1.0 and result["2"]["Dice"] == 1.0


@pytest.mark.parametrize(
    "reference, prediction, spacing, match",
    [
        (np.zeros((2, 3, 4)), np.zeros((2, 3, 5)), None, "reference has shape .* but prediction has shape"),
        (np.zeros((2, 3, 4)), np.zeros((2, 3, 4)), (1.0, 1.0), "spacing_mm has 2 values but the arrays have 3 axes"),
        (np.zeros((2, 3, 4)), np.zeros((2, 3, 4)), (1.0, 0.0, 1.0), "positive and finite"),
        (np.zeros((2, 3, 4)), np.full((2, 3, 4), 0.4), None, "non-integer values .*argmax"),
        (np.zeros((2, 3, 4)), np.full((2, 3, 4), np.nan), None, "NaN or Inf"),
    ],
)
def test_compute_metrics_rejects_bad_input(reference, prediction, spacing, match):
    with pytest.raises(ValueError, match=match):
        compute_metrics(reference, prediction, labels=[1], spacing_mm=spacing)


def test_check_label_values_rejects_strings():
    with pytest.raises(ValueError, match="expected integer label values"):
        check_label_values(np.array(["a"]))


# ----------------------------------------------------------------------------------------------------------------
# Agreement with MedPy (in the "test" extra: a missing MedPy fails these tests instead of skipping them).


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("flat", [False, True])
def test_agreement_with_medpy(seed, flat):
    import medpy.metric.binary as medpy_binary
    rng = np.random.default_rng(1000 + seed)
    shape, spacing = ((1, 30, 26), (999.0, 0.6, 1.1)) if flat else ((10, 16, 14), ANISOTROPIC_SPACING)
    reference, prediction = _random_blob(rng, shape), _random_blob(rng, shape)
    m = binary_metrics(reference, prediction, spacing)
    # MedPy takes (result, reference); for 2D it gets the 2D arrays (it would treat (1, y, x) as 3D).
    result_arr, reference_arr, medpy_spacing = (prediction[0], reference[0], spacing[1:]) if flat else (prediction, reference, spacing)
    expected = {
        "Dice": medpy_binary.dc(result_arr, reference_arr),
        "IoU": medpy_binary.jc(result_arr, reference_arr),
        "Precision": medpy_binary.precision(result_arr, reference_arr),
        "Recall": medpy_binary.recall(result_arr, reference_arr),
        "Specificity": medpy_binary.specificity(result_arr, reference_arr),
        "HD95": medpy_binary.hd95(result_arr, reference_arr, voxelspacing=medpy_spacing),
        "ASSD": medpy_binary.assd(result_arr, reference_arr, voxelspacing=medpy_spacing),
    }
    for name, value in expected.items():
        assert m[name] == pytest.approx(value, abs=1e-9), name
