"""Reading DICOM series: slices sorted along the normal, geometry checked against independent arithmetic."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from autounet.dicom.series import read_dicom_series, read_dicom_series_geometry
from autounet.dicom.synthetic import write_dicom_series
from autounet.errors import ImageReadError
from autounet.io import read_image, read_image_geometry

from .conftest import GEOMETRY_VARIANTS, geometry_from_axes, resample_by_world, world_voxels

SHAPE = (7, 12, 10)


def _volume(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1000, 2000, SHAPE).astype(np.int16)


@pytest.mark.parametrize("variant", sorted(GEOMETRY_VARIANTS))
def test_every_voxel_lands_where_the_headers_put_it(tmp_path, variant):
    geometry = GEOMETRY_VARIANTS[variant]
    data = _volume()
    files = write_dicom_series(tmp_path, data, geometry, reverse_instance_numbers=True, slice_thickness=5.0)
    volume = read_dicom_series(tmp_path)
    # independent check 1: the reader's world position of every voxel holds the value written there
    assert resample_by_world(data, geometry, volume.geometry, volume.image.spatial_shape).tolist() == volume.image.data[0].tolist()
    # independent check 2: slice k of the result is the file whose ImagePositionPatient is the k-th along the normal
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    cosines = np.asarray(headers[0].ImageOrientationPatient, float)
    normal = np.cross(cosines[:3], cosines[3:])
    by_depth = sorted(headers, key=lambda h: float(np.dot(np.asarray(h.ImagePositionPatient, float), normal)))
    np.testing.assert_allclose(volume.geometry.origin[::-1], np.asarray(by_depth[0].ImagePositionPatient, float), atol=1e-6)
    assert [r.sop_instance_uid for r in volume.slices] == [h.SOPInstanceUID for h in by_depth]
    # the slice spacing comes from the positions, never from SliceThickness (5 mm here)
    assert volume.geometry.spacing == pytest.approx(geometry.spacing)
    assert volume.image.source == str(tmp_path)


def test_read_image_reads_a_series_folder_and_its_header(tmp_path):
    geometry = GEOMETRY_VARIANTS["oblique"]
    write_dicom_series(tmp_path, _volume(), geometry)
    image = read_image(tmp_path)
    shape, channels, header_geometry = read_image_geometry(tmp_path)
    assert image.data.shape == (1, *SHAPE) and shape == SHAPE and channels == 1
    np.testing.assert_allclose(header_geometry.direction, image.geometry.direction)
    assert read_dicom_series_geometry(tmp_path)[0] == SHAPE


def test_rescale_slope_and_intercept_are_applied(tmp_path):
    data = np.round(np.random.default_rng(1).uniform(0, 100, SHAPE) * 4) / 4  # multiples of 0.25
    write_dicom_series(tmp_path, data, GEOMETRY_VARIANTS["axial"], modality="MR", rescale=(0.25, -10.0))
    image = read_dicom_series(tmp_path).image
    assert image.data.dtype == np.float32
    np.testing.assert_allclose(image.data[0], data, atol=1e-6)
    whole = tmp_path / "ct"
    write_dicom_series(whole, np.full(SHAPE, -1024), GEOMETRY_VARIANTS["axial"], rescale=(1.0, -1024.0))
    ct = read_dicom_series(whole).image
    assert ct.data.dtype in (np.int16, np.int32) and int(ct.data.min()) == -1024


def test_real_series_match_simpleitk(dicom_data):
    """SimpleITK's GDCM series reader is an independent implementation: same voxels, same geometry."""
    import SimpleITK as sitk

    for folder in ("ct_philips_headphantom_5mm/dicom", "ibsi_sts002_ct_rtstruct/CT/image", "dcmqi_ct3slice_liver_seg/ct"):
        path = dicom_data / folder
        volume = read_dicom_series(path)
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path)))
        reference = reader.Execute()
        assert np.array_equal(sitk.GetArrayFromImage(reference), volume.image.data[0]), folder
        np.testing.assert_allclose(volume.geometry.origin[::-1], reference.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(volume.geometry.spacing[::-1], reference.GetSpacing(), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(volume.geometry.direction).reshape(3, 3)[::-1, ::-1].ravel(),
                                   reference.GetDirection(), atol=1e-6)
    phantom = read_dicom_series(dicom_data / "ct_philips_headphantom_5mm/dicom")
    assert phantom.image.spatial_shape == (28, 512, 512) and phantom.geometry.spacing[0] == pytest.approx(5.0)
    assert int(phantom.image.data.min()) == -1024  # RescaleIntercept -1024 applied


def test_ibsi_series_matches_its_nifti(dicom_data):
    nifti = read_image(dicom_data / "ibsi_sts002_ct_rtstruct/nifti_reference/CT_image.nii.gz")
    volume = read_dicom_series(dicom_data / "ibsi_sts002_ct_rtstruct/CT/image")
    assert np.array_equal(nifti.data[0], volume.image.data[0])
    np.testing.assert_allclose(nifti.geometry.origin, volume.geometry.origin, atol=1e-3)


def test_localizers_other_sizes_and_duplicates_are_dropped_with_a_note(tmp_path):
    geometry = GEOMETRY_VARIANTS["axial"]
    files = write_dicom_series(tmp_path / "s", _volume(), geometry)
    series_uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    duplicate = pydicom.dcmread(files[3])
    duplicate.SOPInstanceUID = duplicate.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    duplicate.InstanceNumber = 99
    duplicate.save_as(tmp_path / "s" / "dup.dcm")
    localizer = pydicom.dcmread(files[0])
    localizer.SOPInstanceUID = localizer.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    localizer.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    localizer.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    localizer.save_as(tmp_path / "s" / "loc.dcm")
    (tmp_path / "s" / "notes.txt").write_text("not dicom")
    volume = read_dicom_series(tmp_path / "s")
    assert volume.series.uid == series_uid and volume.image.spatial_shape == SHAPE
    text = " ".join(volume.notes)
    assert "localizer" in text and "duplicate position" in text and "not DICOM" in text and "notes.txt" in text


def test_enhanced_multiframe_ct_is_read(tmp_path):
    """A legacy-converted enhanced CT (one multi-frame file, per-frame plane positions) reads like its source."""
    import highdicom as hd

    geometry = GEOMETRY_VARIANTS["oblique"]
    data = _volume(3)
    files = write_dicom_series(tmp_path / "single", data, geometry, reverse_instance_numbers=True)
    datasets = [pydicom.dcmread(f) for f in files]
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        datasets, series_instance_uid=hd.UID(), series_number=2, sop_instance_uid=hd.UID(), instance_number=1)
    (tmp_path / "multi").mkdir()
    enhanced.save_as(tmp_path / "multi" / "enhanced.dcm")
    single, multi = read_dicom_series(tmp_path / "single"), read_dicom_series(tmp_path / "multi")
    assert len(multi.source_headers) == 1 and [r.frame for r in multi.slices] != [None] * SHAPE[0]
    assert np.array_equal(single.image.data, multi.image.data)
    np.testing.assert_allclose(single.geometry.origin, multi.geometry.origin, atol=1e-6)
    np.testing.assert_allclose(single.geometry.direction, multi.geometry.direction, atol=1e-6)


def _positions(geometry, count, depths, shift_per_slice=(0.0, 0.0, 0.0)):
    normal_xyz = geometry.direction_matrix[::-1, ::-1][:, 2]
    origin = np.asarray(geometry.origin[::-1])
    return [origin + d * normal_xyz + k * np.asarray(shift_per_slice) for k, d in enumerate(depths)]


def test_irregular_gaps_are_refused_unless_resampling_is_asked(tmp_path):
    geometry = GEOMETRY_VARIANTS["axial"]
    depths = [0, 2, 4, 8, 10, 12, 14]  # one slice missing between 4 and 8
    data = np.broadcast_to(np.array(depths, np.int16)[:, None, None] * 10, SHAPE).copy()  # value = 10 x depth (mm)
    write_dicom_series(tmp_path, data, geometry, positions=_positions(geometry, 7, depths))
    with pytest.raises(ImageReadError, match=r"irregular .*resampl"):
        read_dicom_series(tmp_path)
    volume = read_dicom_series(tmp_path, resample=True)
    assert volume.resampled and volume.image.spatial_shape[0] == 8
    np.testing.assert_allclose(volume.image.data[0][:, 5, 5], np.arange(8) * 20.0)  # linear in depth: 6 mm -> 60
    assert any("resampled" in note for note in volume.notes)


def test_gantry_tilt_is_refused_unless_resampling_is_asked(tmp_path):
    geometry = GEOMETRY_VARIANTS["axial"]
    depths = np.arange(SHAPE[0]) * 2.0
    data = np.zeros(SHAPE, np.int16)
    data[:, 4, :] = 100  # a bright row that moves 0.8 mm (one pixel) per slice with the tilt
    write_dicom_series(tmp_path, data, geometry, positions=_positions(geometry, SHAPE[0], depths, (0.0, 0.8, 0.0)))
    with pytest.raises(ImageReadError, match=r"gantry tilt of about 21.8 degrees"):
        read_dicom_series(tmp_path)
    volume = read_dicom_series(tmp_path, resample=True)
    rows = volume.image.data[0][:, :, 5].argmax(axis=1)
    assert rows.tolist() == [4 + k for k in range(SHAPE[0])]  # world y of the row grows by 0.8 mm per slice


def test_world_helper_is_consistent():
    geometry = geometry_from_axes(np.eye(3), (2.0, 1.0, 0.5), (1.0, 2.0, 3.0))
    world = world_voxels(geometry, (2, 2, 2))
    np.testing.assert_allclose(world[1, 1, 1], [5.0, 3.0, 1.5])  # (z, y, x)
