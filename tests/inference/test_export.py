"""Export: one preprocessed prediction back to the input file's grid and format (the trainer's final validation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autounet.inference.ensemble import labels_from_probabilities, segmentation_dtype
from autounet.inference.export import entropy_map, export_prediction, read_probabilities, write_probabilities
from autounet.io import Geometry, Image, read_image
from autounet.preprocessing.case import preprocess_case

from .conftest import tiny_configuration, tiny_plans

GEOMETRY = Geometry(spacing=(2.0, 0.9, 0.9), origin=(5.0, -3.0, 1.0), direction=(1, 0, 0, 0, 0, 1, 0, -1, 0))


def test_export_prediction_writes_the_label_map_and_probabilities_on_the_input_grid(tmp_path):
    data = np.zeros((1, 12, 30, 26), np.float32)
    data[0, 2:10, 3:27, 2:24] = 50  # cropped to this box
    data[0, 4:8, 10:20, 8:16] = 150
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres", spacing=(1.5, 1.2, 1.2))})
    preprocessed, _, properties = preprocess_case(Image(data, GEOMETRY), plans, "3d_fullres")
    logits = torch.zeros((3, *preprocessed.shape[1:]))
    logits[1] = torch.from_numpy(preprocessed[0]) * 4  # label 1 where the z-scored intensity is high
    segmentation = export_prediction(logits, properties, plans, "3d_fullres", tmp_path / "case.nii.gz", save_probabilities=True)
    written = read_image(tmp_path / "case.nii.gz")
    assert written.spatial_shape == (12, 30, 26)
    np.testing.assert_allclose(written.geometry.direction, GEOMETRY.direction, atol=1e-6)
    np.testing.assert_array_equal(written.data[0], segmentation)
    assert segmentation[0].sum() == 0 and segmentation[5, 15, 12] == 1  # outside the crop box: background
    probabilities, labels = read_probabilities(tmp_path / "case.npz")
    assert labels == (0, 1, 2) and probabilities.shape == (3, 12, 30, 26)
    np.testing.assert_allclose(probabilities.sum(0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(labels_from_probabilities(probabilities, labels), segmentation)


def test_probabilities_file_round_trip_and_errors(tmp_path):
    values = np.random.default_rng(0).random((2, 3, 4, 5)).astype(np.float32)
    write_probabilities(tmp_path / "p.npz", values, (0, 4))
    loaded, labels = read_probabilities(tmp_path / "p.npz")
    np.testing.assert_array_equal(loaded, values)
    assert labels == (0, 4)
    with pytest.raises(ValueError, match="2 probability channels but 3 label values"):
        write_probabilities(tmp_path / "q.npz", values, (0, 1, 2))
    np.savez(tmp_path / "other.npz", something=values)
    with pytest.raises(ValueError, match="not a probabilities file"):
        read_probabilities(tmp_path / "other.npz")


def test_entropy_is_normalised():
    certain = np.zeros((3, 2)); certain[0] = 1
    uniform = np.full((3, 2), 1 / 3)
    np.testing.assert_allclose(entropy_map(certain), 0, atol=1e-6)
    np.testing.assert_allclose(entropy_map(uniform), 1, atol=1e-6)


@pytest.mark.parametrize("values, dtype", [((0, 1, 2), np.uint8), ((0, 255), np.uint8), ((0, 256), np.uint16), ((-1, 3), np.int16)])
def test_segmentation_dtype(values, dtype):
    assert segmentation_dtype(values) == np.dtype(dtype)
