"""restore_to_original: a prediction on preprocessed data lands at the right place in the original image."""

from __future__ import annotations

import numpy as np
import pytest

from autounet.io import Geometry, Image, read_image, write_image
from autounet.preprocessing import preprocess_case, restore_to_original

from .conftest import make_case, make_plans


def _rotation(angles_deg):
    a, b, c = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


def _world_centroid(mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    return geometry.index_to_world(np.argwhere(mask)).mean(axis=0)


@pytest.fixture
def oblique_cube(tmp_path):
    """A cube at known world coordinates in an oblique, anisotropic image whose coarse axis is last."""
    shape, spacing = (40, 30, 24), (0.8, 0.9, 3.0)
    geometry = Geometry(spacing=spacing, origin=(12.5, -40.0, 7.0), direction=tuple(_rotation((20, -15, 35)).ravel()))
    data = np.zeros((1, *shape), np.float32)
    data[0, 4:36, 3:27, 2:22] = 100 + np.random.default_rng(0).normal(0, 3, (32, 24, 20))  # the "body"
    label = np.zeros(shape, np.uint8)
    label[10:22, 8:20, 6:14] = 1
    data[0][label == 1] += 80
    path = tmp_path / "cube.nii.gz"
    write_image(path, data, geometry)
    write_image(tmp_path / "cube_label.nii.gz", label[None], geometry)
    return read_image(path), read_image(tmp_path / "cube_label.nii.gz")


def test_cube_comes_back_at_the_same_world_position(oblique_cube, tmp_path):
    image, label = oblique_cube
    plans = make_plans(spacing_3d=(1.5, 1.0, 1.0), transpose_forward=(2, 0, 1), labels={"background": 0, "cube": 1})
    data, seg, props = preprocess_case(image, plans, "3d_fullres", label)
    assert props.separate_z_axis == 0 and data.shape[1:] == (40, 26, 22)  # crop (20, 32, 24) at (3.0, 0.8, 0.9) mm
    one_hot = np.stack([seg[0] == 0, seg[0] == 1]).astype(np.float32)  # a perfect "prediction"
    restored = restore_to_original(one_hot, props)
    assert restored.shape == image.spatial_shape == props.original_shape
    out_path = tmp_path / "prediction.nii.gz"
    write_image(out_path, restored[None], props.geometry)
    written = read_image(out_path)
    truth = label.data[0] == 1
    found = written.data[0] == 1
    dice = 2 * (truth & found).sum() / (truth.sum() + found.sum())
    assert dice > 0.9
    np.testing.assert_allclose(written.geometry.origin, image.geometry.origin, atol=1e-4)
    np.testing.assert_allclose(written.geometry.direction, image.geometry.direction, atol=1e-6)
    centre_error_mm = np.linalg.norm(_world_centroid(found, written.geometry) - _world_centroid(truth, image.geometry))
    assert centre_error_mm < 0.5


def test_segmentation_input_is_resampled_per_label(oblique_cube):
    image, label = oblique_cube
    plans = make_plans(spacing_3d=(1.5, 1.0, 1.0), transpose_forward=(2, 0, 1), labels={"background": 0, "cube": 1})
    _, seg, props = preprocess_case(image, plans, "3d_fullres", label)
    restored = restore_to_original(seg, props)
    truth, found = label.data[0] == 1, restored == 1
    assert 2 * (truth & found).sum() / (truth.sum() + found.sum()) > 0.9
    assert set(np.unique(restored)) == {0, 1} and restored.dtype == np.uint8


def test_unresampled_case_is_restored_exactly():
    plans = make_plans(spacing_3d=(1.0, 1.0, 1.0))
    image, label = make_case(shape=(14, 22, 18), body_margin=3)
    _, seg, props = preprocess_case(image, plans, "3d_fullres", label)
    one_hot = np.stack([seg[0] == v for v in (0, 1, 2)]).astype(np.float32)
    np.testing.assert_array_equal(restore_to_original(one_hot, props), label.data[0])


def test_probabilities_and_label_values():
    plans = make_plans(spacing_3d=(1.0, 1.0, 1.0))
    image, label = make_case(shape=(14, 22, 18), body_margin=3)
    _, seg, props = preprocess_case(image, plans, "3d_fullres", label)
    one_hot = np.stack([seg[0] == v for v in (0, 1, 2)]).astype(np.float32)
    restored, probabilities = restore_to_original(
        one_hot, props.to_dict(), label_values=[0, 10, 20], return_probabilities=True
    )
    np.testing.assert_array_equal(restored, label.data[0] * 10)
    assert probabilities.shape == (3, 14, 22, 18)
    assert probabilities[0, 0, 0, 0] == 1.0 and probabilities[1:, 0, 0, 0].sum() == 0  # outside the crop box


def test_2d_image_round_trip():
    plans = make_plans(spacing_3d=None, spacing_2d=(2.0, 2.0))
    image, label = make_case(shape=(1, 40, 36), spacing=(999.0, 1.0, 1.0), is_2d=True, body_margin=4)
    _, seg, props = preprocess_case(image, plans, "2d", label)
    one_hot = np.stack([seg[0] == v for v in (0, 1, 2)]).astype(np.float32)
    restored = restore_to_original(one_hot, props)
    assert restored.shape == (1, 40, 36)
    assert np.mean(restored == label.data[0]) > 0.95


def test_wrong_shape_is_refused_with_both_shapes():
    plans = make_plans()
    image, label = make_case(shape=(14, 22, 18), body_margin=3)
    _, _, props = preprocess_case(image, plans, "3d_fullres", label)
    with pytest.raises(ValueError, match=r"spatial shape \(3, 3, 3\) does not match .* \(8, 16, 12\)"):
        restore_to_original(np.zeros((2, 3, 3, 3), np.float32), props)
