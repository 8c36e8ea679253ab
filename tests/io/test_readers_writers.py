"""Round trips through every supported format keep values and geometry in array axis order."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import SimpleITK as sitk

from autounet.errors import ImageReadError
from autounet.io import Geometry, read_image, read_image_geometry, write_image
from autounet.io.formats import file_extension, strip_extension

OBLIQUE = Geometry(
    spacing=(3.0, 0.7, 0.5),
    origin=(10.0, -20.0, 5.0),
    direction=tuple(np.array([[0, 0, 1], [0, -1, 0], [1, 0, 0]], float).ravel()),
)


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_volume_round_trip_keeps_values_and_geometry(tmp_path, ext):
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    write_image(tmp_path / f"a{ext}", data, OBLIQUE)
    image = read_image(tmp_path / f"a{ext}")
    assert image.data.shape == (1, 4, 5, 6)
    np.testing.assert_array_equal(image.data[0], data)
    np.testing.assert_allclose(image.geometry.spacing, OBLIQUE.spacing, rtol=1e-6)
    np.testing.assert_allclose(image.geometry.origin, OBLIQUE.origin, atol=1e-5)
    np.testing.assert_allclose(image.geometry.direction, OBLIQUE.direction, atol=1e-6)


def test_array_order_matches_simpleitk_physical_points(tmp_path):
    """A voxel's world position computed from our array-order geometry equals SimpleITK's (x, y, z) answer."""
    write_image(tmp_path / "a.nii.gz", np.zeros((4, 5, 6), np.uint8), OBLIQUE)
    itk = sitk.ReadImage(str(tmp_path / "a.nii.gz"))
    geometry = read_image(tmp_path / "a.nii.gz").geometry
    z, y, x = 3, 1, 4
    expected_xyz = itk.TransformIndexToPhysicalPoint((x, y, z))
    np.testing.assert_allclose(geometry.index_to_world(np.array([z, y, x]))[::-1], expected_xyz, atol=1e-5)


def test_4d_nifti_is_split_into_channels(tmp_path):
    volume = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)  # (t, z, y, x)
    itk = sitk.GetImageFromArray(volume, isVector=False)
    itk.SetSpacing((0.5, 0.6, 2.0, 1.0))
    sitk.WriteImage(itk, str(tmp_path / "multi.nii.gz"))
    image = read_image(tmp_path / "multi.nii.gz")
    assert image.data.shape == (2, 3, 4, 5)
    np.testing.assert_allclose(image.data, volume)
    assert image.geometry.spacing == pytest.approx((2.0, 0.6, 0.5))
    shape, channels, geometry = read_image_geometry(tmp_path / "multi.nii.gz")
    assert (shape, channels) == ((3, 4, 5), 2)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".gif"])
def test_flat_grey_images_are_single_slice_volumes(tmp_path, ext):
    data = (np.arange(6 * 7).reshape(1, 6, 7) % 200).astype(np.uint8)
    write_image(tmp_path / f"a{ext}", data, Geometry(spacing=(999.0, 1.0, 1.0), is_2d=True))
    image = read_image(tmp_path / f"a{ext}")
    assert image.data.shape == (1, 1, 6, 7)
    assert image.geometry.is_2d
    np.testing.assert_array_equal(image.data[0], data)


def test_rgb_image_gives_three_channels(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, size=(3, 1, 8, 9), dtype=np.uint8)
    write_image(tmp_path / "c.png", rgb, Geometry(spacing=(999.0, 1.0, 1.0), is_2d=True))
    image = read_image(tmp_path / "c.png")
    assert image.data.shape == (3, 1, 8, 9)
    np.testing.assert_array_equal(image.data, rgb)


def test_2d_nifti_keeps_in_plane_spacing(tmp_path):
    itk = sitk.GetImageFromArray(np.ones((6, 7), np.float32))
    itk.SetSpacing((0.3, 0.4))
    sitk.WriteImage(itk, str(tmp_path / "flat.nii.gz"))
    image = read_image(tmp_path / "flat.nii.gz")
    assert image.data.shape == (1, 1, 6, 7)
    assert image.geometry.is_2d and image.geometry.spacing[1:] == pytest.approx((0.4, 0.3))
    write_image(tmp_path / "back.nii.gz", image.data, image.geometry)
    assert sitk.ReadImage(str(tmp_path / "back.nii.gz")).GetSpacing() == pytest.approx((0.3, 0.4))


def test_missing_truncated_and_unknown_files_raise_clear_errors(tmp_path):
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(tmp_path / "nope.nii.gz")
    (tmp_path / "a.xyz").write_text("hello")
    with pytest.raises(ImageReadError, match="unsupported file type"):
        read_image(tmp_path / "a.xyz")
    write_image(tmp_path / "full.nii.gz", np.ones((20, 20, 20), np.float32), OBLIQUE)
    raw = (tmp_path / "full.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ImageReadError, match="cut.nii.gz"):
        read_image(tmp_path / "cut.nii.gz")


def test_write_is_atomic_on_failure(tmp_path):
    target = tmp_path / "keep.png"
    write_image(target, np.zeros((1, 4, 4), np.uint8), Geometry(spacing=(999.0, 1, 1), is_2d=True))
    before = target.read_bytes()
    with pytest.raises(ValueError, match="flat images hold 1 or 3 channels"):
        write_image(target, np.zeros((2, 1, 4, 4), np.uint8), Geometry(spacing=(999.0, 1, 1), is_2d=True))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_extension_helpers():
    assert file_extension("x/CASE_0000.NII.GZ") == ".nii.gz"
    assert strip_extension("CASE_0000.nii.gz") == "CASE_0000"


@pytest.mark.integration
def test_reads_real_files(hippocampus_dir, drive_dir, isbi_dir):
    hippo = read_image(hippocampus_dir / "imagesTr" / "hippocampus_001.nii.gz")
    assert hippo.data.shape[0] == 1 and hippo.data.ndim == 4
    fundus = read_image(drive_dir / "training" / "images" / "21_training.tif")
    assert fundus.data.shape == (3, 1, 584, 565)
    vessels = read_image(drive_dir / "training" / "1st_manual" / "21_manual1.gif")
    assert set(np.unique(vessels.data)) == {0, 255}
    em = read_image(isbi_dir / "train" / "label" / "0.png")
    assert em.data.shape == (1, 1, 512, 512)
