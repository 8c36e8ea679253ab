"""``predict`` on real DICOM series, and the known-truth round trip NIfTI -> DICOM -> predict -> DICOM-SEG."""

from __future__ import annotations

import json

import highdicom as hd
import numpy as np
import pydicom
import pytest

from autounet.cli import main
from autounet.dicom.series import read_dicom_series
from autounet.dicom.synthetic import write_dicom_series
from autounet.io import read_image

from inference.conftest import make_results, tiny_configuration, tiny_plans

REAL_SERIES = {"phantom": "ct_philips_headphantom_5mm/dicom", "sts002": "ibsi_sts002_ct_rtstruct/CT/image",
               "liver_ct": "dcmqi_ct3slice_liver_seg/ct"}


def seg_on_grid(seg_path, geometry, shape) -> np.ndarray:
    """A Segmentation's label map sampled at the voxel centres of a grid, placed only by highdicom's own affine
    (world -> SEG voxel); voxels outside the SEG's frames are background."""
    volume = hd.seg.segread(seg_path).get_volume(combine_segments=True)
    index = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).reshape(-1, 3)
    world_xyz = geometry.index_to_world(index)[:, ::-1]
    seg_index = (np.linalg.inv(volume.affine) @ np.c_[world_xyz, np.ones(len(world_xyz))].T)[:3].T
    rounded = np.round(seg_index).astype(int)
    assert np.max(np.abs(seg_index - rounded)) < 1e-3, "the SEG frames do not lie on the image's voxel centres"
    inside = np.all((rounded >= 0) & (rounded < volume.array.shape), axis=1)
    out = np.zeros(len(index), volume.array.dtype)
    out[inside] = volume.array[tuple(rounded[inside].T)]
    return out.reshape(shape)


@pytest.mark.integration
def test_predict_real_series_writes_segmentations_in_place(tmp_path, dicom_data):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, folder in REAL_SERIES.items():
        (inputs / name).symlink_to(dicom_data / folder, target_is_directory=True)
    # 2 mm slices: the 3-slice liver CT keeps 2 of them, more than a quarter of the patch (the plausibility check of
    # autounet.plausibility refuses an image that resampling shrinks below that)
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres", spacing=(2.0, 2.0, 2.0), patch=(4, 32, 32))},
                       labels={"background": 0, "liver": 1, "tumour": 2})
    results = make_results(tmp_path / "results", plans, {"3d_fullres": (0,)})
    code = main(["predict", "-i", str(inputs), "-o", str(tmp_path / "out"), "-m", str(results), "--device", "cpu",
                 "--no-mirroring", "--no-progress", "--output-format", "both", "--seg-type", "binary"])
    assert code == 0
    report = json.loads((tmp_path / "out" / "prediction_report.json").read_text())
    assert sorted(report["written"]) == sorted(REAL_SERIES)
    for name, folder in REAL_SERIES.items():
        source = read_dicom_series(dicom_data / folder)
        nifti = read_image(tmp_path / "out" / f"{name}.nii.gz")
        np.testing.assert_allclose(nifti.geometry.origin, source.geometry.origin, atol=1e-4)
        seg = pydicom.dcmread(tmp_path / "out" / f"{name}.dcm")
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.series.uid
        assert seg.FrameOfReferenceUID == source.series.frame_of_reference_uid
        if nifti.data.any():
            assert np.array_equal(seg_on_grid(tmp_path / "out" / f"{name}.dcm", source.geometry, source.image.spatial_shape),
                                  nifti.data[0])


@pytest.mark.integration
def test_hippocampus_round_trip_nifti_dicom_seg(tmp_path, hippocampus_dir):
    """Known truth: the same model on the NIfTI and on a DICOM series written from it gives the same label map, and
    the DICOM-SEG read back with highdicom holds it voxel for voxel in the NIfTI's world positions."""
    cases = []
    for source in sorted((hippocampus_dir / "imagesTr").glob("hippocampus_*.nii.gz")):  # whole-numbered: exact in int16
        data = read_image(source).data
        if np.all(np.mod(data, 1) == 0) and data.max() < 2**15:
            cases.append(source.name[: -len(".nii.gz")])
        if len(cases) == 2:
            break
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres", patch=(24, 32, 24))},
                       labels={"background": 0, "Anterior": 1, "Posterior": 2})
    results = make_results(tmp_path / "results", plans, {"3d_fullres": (0,)})
    nifti_in, dicom_in = tmp_path / "nifti_in", tmp_path / "dicom_in"
    nifti_in.mkdir()
    for case in cases:
        source = hippocampus_dir / "imagesTr" / f"{case}.nii.gz"
        (nifti_in / source.name).symlink_to(source)
        image = read_image(source)
        write_dicom_series(dicom_in / case, image.data[0], image.geometry, modality="MR", reverse_instance_numbers=True)
    common = ["-m", str(results), "--device", "cpu", "--no-mirroring", "--no-progress"]
    assert main(["predict", "-i", str(nifti_in), "-o", str(tmp_path / "from_nifti"), *common]) == 0
    assert main(["predict", "-i", str(dicom_in), "-o", str(tmp_path / "from_dicom"), "--output-format", "both", *common]) == 0
    for case in cases:
        truth = read_image(tmp_path / "from_nifti" / f"{case}.nii.gz")
        assert set(np.unique(truth.data)) == {0, 1, 2}  # a real test: both labels present
        via_dicom = read_image(tmp_path / "from_dicom" / f"{case}.nii.gz")
        assert np.array_equal(via_dicom.data, truth.data)
        np.testing.assert_allclose(via_dicom.geometry.origin, truth.geometry.origin, atol=1e-4)
        np.testing.assert_allclose(via_dicom.geometry.direction, truth.geometry.direction, atol=1e-6)
        seg_path = tmp_path / "from_dicom" / f"{case}.dcm"
        assert np.array_equal(seg_on_grid(seg_path, truth.geometry, truth.spatial_shape), truth.data[0])
        labels = {int(s.SegmentNumber): s.SegmentLabel for s in pydicom.dcmread(seg_path).SegmentSequence}
        assert labels == {1: "Anterior", 2: "Posterior"}


def test_series_of_a_study_become_channels_by_the_models_mapping(tmp_path):
    from autounet.jsonio import read_json, write_json

    from .conftest import GEOMETRY_VARIANTS

    geometry = GEOMETRY_VARIANTS["oblique"]
    shape = (8, 20, 20)
    rng = np.random.default_rng(0)
    study = pydicom.uid.generate_uid()
    for name, prefix in (("T2 AX", "T2"), ("ADC map", "ADC")):
        write_dicom_series(tmp_path / "in" / "patient1", rng.integers(0, 500, shape), geometry, modality="MR",
                           series_description=name, study_uid=study, file_prefix=prefix)
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres", channels=2)}, channels=2)
    results = make_results(tmp_path / "results", plans, {"3d_fullres": (0,)})
    common = ["-i", str(tmp_path / "in"), "-m", str(results), "--device", "cpu", "--no-mirroring", "--no-progress"]
    assert main(["predict", "-o", str(tmp_path / "unmapped"), *common]) == 1
    report = read_json(tmp_path / "unmapped" / "prediction_report.json")
    assert "--dicom-channels" in report["failed"]["patient1"]
    assert main(["predict", "-o", str(tmp_path / "bad"), "--dicom-channels", "T2=*T2*,ADC=*a*", *common]) == 1
    assert "matches 2 series" in read_json(tmp_path / "bad" / "prediction_report.json")["failed"]["patient1"]
    description = read_json(results / "dataset.json")
    write_json(results / "dataset.json", {**description, "dicom_channels": {"T2": "*t2*", "ADC": "*adc*"}})
    assert main(["predict", "-o", str(tmp_path / "out"), *common]) == 0
    seg = pydicom.dcmread(tmp_path / "out" / "patient1.dcm")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == pydicom.dcmread(
        tmp_path / "in" / "patient1" / "T2" "00001.dcm").SeriesInstanceUID
