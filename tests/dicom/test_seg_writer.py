"""DICOM-SEG output: highdicom reads back every segment where the label map has it; the proof refuses a misplaced file."""

from __future__ import annotations

import dataclasses
import json

import highdicom as hd
import numpy as np
import pydicom
import pytest

from autounet.dicom.codes import default_segment_code, read_segment_codes, segment_codes_for
from autounet.dicom.geometry_proof import GeometryProofError
from autounet.dicom.seg_writer import SegOptions, write_dicom_seg
from autounet.dicom.series import read_dicom_series
from autounet.dicom.synthetic import write_dicom_series
from autounet.errors import DatasetError

from .conftest import GEOMETRY_VARIANTS, blob_label_map

SHAPE = (8, 14, 12)
LABELS = {"background": 0, "liver": 1, "tumour": 2, "vessel": 3, "absent": 4}


def _series(tmp_path, variant):
    data = np.random.default_rng(0).integers(-100, 100, SHAPE).astype(np.int16)
    write_dicom_series(tmp_path / "series", data, GEOMETRY_VARIANTS[variant], reverse_instance_numbers=True, slice_thickness=0.7)
    return read_dicom_series(tmp_path / "series")


def _placed_by_highdicom(seg_path, volume) -> np.ndarray:
    """The Segmentation read back with highdicom, frame by frame via the source instances it references."""
    seg = hd.seg.segread(seg_path)
    uids = [r.sop_instance_uid for r in volume.slices]
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True,
                                               skip_overlap_checks=True)
    return pixels


@pytest.mark.parametrize("seg_type", ["binary", "labelmap"])
@pytest.mark.parametrize("variant", sorted(GEOMETRY_VARIANTS))
def test_segments_read_back_in_place(tmp_path, variant, seg_type):
    volume = _series(tmp_path, variant)
    label = blob_label_map(SHAPE)
    result = write_dicom_seg(tmp_path / "seg.dcm", label, volume, LABELS, SegOptions(seg_type=seg_type))
    assert [c.voxels_expected for c in result.checks] == [int((label == v).sum()) for v in (1, 2, 3, 4)]
    assert all(c.error_voxels < 1e-6 for c in result.checks)
    assert np.array_equal(_placed_by_highdicom(tmp_path / "seg.dcm", volume), label)
    # independent of both writers: highdicom's own volume, placed by its affine, in world coordinates
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    seg_volume = seg.get_volume(combine_segments=True)
    index = np.argwhere(seg_volume.array == 2)
    world_xyz = (seg_volume.affine @ np.c_[index, np.ones(len(index))].T)[:3].T
    expected = volume.geometry.index_to_world(np.argwhere(label == 2))[:, ::-1]
    np.testing.assert_allclose(world_xyz.mean(axis=0), expected.mean(axis=0), atol=1e-3)


def test_segmentation_keeps_patient_study_frame_and_references(tmp_path):
    volume = _series(tmp_path, "oblique")
    write_dicom_seg(tmp_path / "seg.dcm", blob_label_map(SHAPE), volume, LABELS,
                    SegOptions(algorithm_name="autounet Dataset001", model_checksum="ab" * 32))
    seg = pydicom.dcmread(tmp_path / "seg.dcm")
    source = volume.source_headers[0]
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "FrameOfReferenceUID"):
        assert seg.get(keyword) == source.get(keyword), keyword
    referenced = {item.ReferencedSOPInstanceUID for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {h.SOPInstanceUID for h in volume.source_headers}
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    assert seg.SegmentationType == "BINARY" and seg.SeriesInstanceUID != source.SeriesInstanceUID
    segments = {int(s.SegmentNumber): s for s in seg.SegmentSequence}
    assert [segments[n].SegmentLabel for n in (1, 2, 3, 4)] == ["liver", "tumour", "vessel", "absent"]
    assert segments[1].SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Liver"
    assert segments[2].SegmentedPropertyCategoryCodeSequence[0].CodeMeaning == "Morphologically Abnormal Structure"
    algorithm = segments[1].SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "autounet Dataset001"
    assert "ab" * 32 in algorithm.AlgorithmParameters and segments[1].SegmentAlgorithmType == "AUTOMATIC"
    framed = {int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber) for f in seg.PerFrameFunctionalGroupsSequence}
    assert framed == {1, 2, 3}  # the absent label is described but has no frames


def test_an_empty_label_map_is_still_a_valid_segmentation(tmp_path):
    volume = _series(tmp_path, "axial")
    result = write_dicom_seg(tmp_path / "seg.dcm", np.zeros(SHAPE, np.uint8), volume, {"background": 0, "organ": 1})
    assert result.checks[0].voxels_written == 0
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    assert seg.number_of_segments == 1 and int(seg.NumberOfFrames) >= 1


def test_a_misplaced_segmentation_is_refused_and_not_written(tmp_path):
    """A reader bug that hands frames in the wrong order (the mirror bug) is caught by the proof; no file is left."""
    volume = _series(tmp_path, "negative_column_direction")
    flipped = dataclasses.replace(volume, slices=list(reversed(volume.slices)))
    (tmp_path / "out").mkdir()
    with pytest.raises(GeometryProofError, match=r"geometry proof failed.*voxels off"):
        write_dicom_seg(tmp_path / "out" / "seg.dcm", blob_label_map(SHAPE), flipped, LABELS)
    assert list((tmp_path / "out").iterdir()) == []


def test_user_codes_override_the_defaults(tmp_path):
    path = tmp_path / "codes.json"
    path.write_text(json.dumps({"1": {"label": "Liver (auto)", "type": {"CodeValue": "10200004", "CodingSchemeDesignator": "SCT",
                                                                        "CodeMeaning": "Liver"}}}))
    codes = segment_codes_for({"background": 0, "organ": 1, "lesion": 2}, read_segment_codes(path))
    assert codes[1].label == "Liver (auto)" and codes[1].type[2] == "Liver" and codes[1].category[2] == "Anatomical Structure"
    assert codes[2] == default_segment_code("lesion")
    with pytest.raises(DatasetError, match="name no label"):
        segment_codes_for({"background": 0, "organ": 1}, {"kidney": {}})
    with pytest.raises(DatasetError, match="a code needs a value, a scheme and a meaning"):
        segment_codes_for({"background": 0, "organ": 1}, {"organ": {"type": ["1", "SCT"]}})


def test_dciodvfy_finds_no_error_in_a_binary_segmentation(tmp_path):
    """dicom3tools' IOD validator (an independent implementation of the standard's rules) accepts the file."""
    import shutil
    import subprocess

    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) not installed; make test installs it")
    volume = _series(tmp_path, "oblique")
    write_dicom_seg(tmp_path / "seg.dcm", blob_label_map(SHAPE), volume, LABELS)
    run = subprocess.run(["dciodvfy", "-new", str(tmp_path / "seg.dcm")], capture_output=True, text=True)
    output = run.stdout + run.stderr
    assert "Segmentation" in output
    assert [line for line in output.splitlines() if line.startswith("Error")] == []


def test_labelmap_segmentation_reads_back_without_a_background_segment(tmp_path):
    from autounet.dicom.seg_reader import read_seg_masks

    volume = _series(tmp_path, "sagittal")
    label = blob_label_map(SHAPE)
    write_dicom_seg(tmp_path / "seg.dcm", label, volume, LABELS, SegOptions(seg_type="labelmap"))
    masks = read_seg_masks(tmp_path / "seg.dcm", volume.geometry, SHAPE)
    assert sorted(masks.names) == [1, 2, 3, 4]
    for value in (1, 2, 3, 4):
        assert np.array_equal(masks.masks[value], label == value)
