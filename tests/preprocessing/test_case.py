"""preprocess_case: transpose, crop, normalise, resample, record; and the errors for unusable input."""

from __future__ import annotations

import numpy as np
import pytest

from autounet.errors import DatasetError
from autounet.io import Geometry, Image
from autounet.planners.plans import ChannelNormalization
from autounet.preprocessing import preprocess_case

from .conftest import make_case, make_plans


def test_isotropic_case_is_cropped_and_normalised(plans_3d):
    image, label = make_case(shape=(20, 40, 36), body_margin=3)
    data, seg, props = preprocess_case(image, plans_3d, "3d_fullres", label)
    assert props.crop_box == ((3, 17), (3, 37), (3, 33))
    assert data.shape == (1, 14, 34, 30) and data.dtype == np.float32
    assert seg.shape == (1, 14, 34, 30) and seg.dtype == np.int8
    assert data.mean() == pytest.approx(0, abs=1e-5) and data.std() == pytest.approx(1, abs=1e-4)
    assert set(np.unique(seg)) == {0, 1, 2}
    assert props.resampling_backend == "none" and props.shape_before_resampling == props.shape_after_resampling
    assert props.original_shape == (20, 40, 36) and props.normalization[0]["scheme"] == "zscore"


def test_anisotropic_case_is_resampled_in_plane_and_nearest_along_z():
    plans = make_plans(spacing_3d=(4.0, 1.0, 1.0))
    image, label = make_case(shape=(12, 48, 40), spacing=(4.0, 0.8, 0.8), body_margin=2)
    data, seg, props = preprocess_case(image, plans, "3d_fullres", label)
    assert props.shape_before_resampling == (8, 44, 36)
    assert data.shape[1:] == seg.shape[1:] == (8, 35, 29)
    assert props.separate_z_axis == 0 and props.spacing_after_resampling == (4.0, 1.0, 1.0)
    assert set(np.unique(seg)) <= {0, 1, 2}


def test_2d_configuration_keeps_the_slice_spacing_of_a_volume():
    plans = make_plans(spacing_3d=None, spacing_2d=(0.5, 0.5))
    image, label = make_case(shape=(10, 20, 20), spacing=(3.0, 1.0, 1.0), body_margin=0)
    data, seg, props = preprocess_case(image, plans, "2d", label)
    assert data.shape == (1, 10, 40, 40) and props.spacing_after_resampling == (3.0, 0.5, 0.5)


def test_flat_2d_image():
    plans = make_plans(spacing_3d=None, spacing_2d=(2.0, 2.0))
    image, label = make_case(shape=(1, 40, 36), spacing=(999.0, 1.0, 1.0), is_2d=True, body_margin=0)
    data, seg, props = preprocess_case(image, plans, "2d", label)
    assert data.shape == (1, 1, 20, 18) and seg.shape == (1, 1, 20, 18) and props.is_2d


def test_multi_channel_case_gets_one_scheme_per_channel():
    normalization = (
        ChannelNormalization("zscore"),
        ChannelNormalization("ct", clip_range=(100.0, 150.0), mean=125.0, std=25.0),
        ChannelNormalization("none"),
    )
    plans = make_plans(normalization=normalization)
    image, label = make_case(channels=3, body_margin=0)
    data, _, props = preprocess_case(image, plans, "3d_fullres", label)
    assert data.shape[0] == 3
    assert data[0].mean() == pytest.approx(0, abs=1e-5)
    assert data[1].min() >= -1.0 and data[1].max() <= 1.0  # clipped to 100..150, then (x - 125) / 25
    np.testing.assert_array_equal(data[2], image.data[2])
    assert [n["scheme"] for n in props.normalization] == ["zscore", "ct", "none"]


def test_zscore_in_mask_marks_outside_with_minus_one():
    plans = make_plans(normalization=(ChannelNormalization("zscore", use_mask=True),))
    image, label = make_case(shape=(16, 24, 24), body_margin=2)
    image.data[0, 8, 2:6, 2:6] = 0  # a dark notch at the border of the body: outside the mask
    data, seg, _ = preprocess_case(image, plans, "3d_fullres", label)
    outside = seg[0] == -1
    assert outside.sum() > 0
    assert np.all(data[0][outside] == 0)
    inside = ~outside
    assert data[0][inside].mean() == pytest.approx(0, abs=1e-4) and data[0][inside].std() == pytest.approx(1, abs=1e-3)


def test_enclosed_dark_voxels_stay_inside_the_mask():
    plans = make_plans(normalization=(ChannelNormalization("zscore", use_mask=True),))
    image, label = make_case(shape=(16, 24, 24), body_margin=2)
    image.data[0, 8, 10:13, 10:13] = 0  # a hole inside the body is filled
    _, seg, _ = preprocess_case(image, plans, "3d_fullres", label)
    assert not np.any(seg == -1)


def test_transpose_is_applied_before_everything():
    plans = make_plans(transpose_forward=(2, 0, 1))
    image, label = make_case(shape=(20, 30, 12), spacing=(1.0, 1.0, 1.0), body_margin=0)
    data, seg, props = preprocess_case(image, plans, "3d_fullres", label)
    assert data.shape == (1, 12, 20, 30) and props.transpose_backward == (1, 2, 0)
    np.testing.assert_array_equal(seg[0], label.data[0].transpose(2, 0, 1))


def test_inference_gives_the_same_arrays_as_training():
    plans = make_plans(spacing_3d=(2.0, 0.7, 0.7))
    image, label = make_case(shape=(10, 30, 30), spacing=(3.0, 1.0, 1.0))
    train_data, _, train_props = preprocess_case(image, plans, "3d_fullres", label)
    infer_data, infer_seg, infer_props = preprocess_case(image, plans, "3d_fullres")
    np.testing.assert_array_equal(train_data, infer_data)
    assert infer_seg is None and train_props == infer_props


def _image(data, spacing=(1.0, 1.0, 1.0), source="bad_image.nii.gz", is_2d=False):
    return Image(np.asarray(data), Geometry(spacing=spacing, is_2d=is_2d), source=source)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda im, lb: (_image(np.where(np.arange(im.data.size).reshape(im.data.shape) == 5, np.nan, im.data)), lb), "NaN or infinite"),
        (lambda im, lb: (_image(np.concatenate([im.data, im.data])), lb), r"2 channel\(s\) but the plans normalise 1"),
        (lambda im, lb: (im, Image(lb.data[:, :, :, :-1], lb.geometry, source="bad_label.nii.gz")), "label shape .* differs"),
        (lambda im, lb: (im, Image(np.where(lb.data == 2, 7, lb.data), lb.geometry, source="bad_label.nii.gz")), r"label values \[7\] are not declared"),
        (lambda im, lb: (im, Image(lb.data * 0.5, lb.geometry, source="bad_label.nii.gz")), "non-integer values"),
        (lambda im, lb: (im, Image(lb.data, Geometry(spacing=(2.0, 1.0, 1.0)), source="bad_label.nii.gz")), "label spacing"),
        (lambda im, lb: (im, Image(lb.data, Geometry(spacing=(1.0, 1.0, 1.0), origin=(3.0, 0, 0)), source="bad_label.nii.gz")), "label origin"),
        (lambda im, lb: (im, Image(lb.data, Geometry(spacing=(1.0, 1.0, 1.0), direction=(1, 0, 0, 0, -1, 0, 0, 0, 1)), source="bad_label.nii.gz")), "flipped or rotated"),
        (lambda im, lb: (_image(im.data[:, :0]), lb), "the image is empty"),
        (lambda im, lb: (_image(im.data, spacing=(5000.0, 1.0, 1.0)), Image(lb.data, Geometry(spacing=(5000.0, 1.0, 1.0)), source="l")), "check the spacing"),
        (lambda im, lb: (_image(im.data[:, :1], spacing=(999.0, 1.0, 1.0), is_2d=True), Image(lb.data[:, :1], Geometry(spacing=(999.0, 1.0, 1.0), is_2d=True), source="l")), "is a 2D image"),
    ],
    ids=["nan", "channels", "label-shape", "label-values", "fractional-label", "label-spacing", "label-origin",
         "label-direction", "zero-size", "huge-spacing", "2d-in-3d"],
)
def test_bad_input_names_the_file(plans_3d, change, message):
    image, label = change(*make_case(shape=(8, 12, 12), body_margin=1))
    with pytest.raises(DatasetError, match=message) as info:
        preprocess_case(image, plans_3d, "3d_fullres", label)
    assert "bad_image.nii.gz" in str(info.value) or "bad_label.nii.gz" in str(info.value)


def test_unknown_configuration_lists_the_available(plans_3d):
    image, _ = make_case()
    with pytest.raises(ValueError, match="available: 3d_fullres"):
        preprocess_case(image, plans_3d, "3d_lowres")
