"""``import-dicom``: real DICOM-SEG and RTSTRUCT against their reference label maps; pairing, records, check."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from autounet.cli import main
from autounet.dataset import check_dataset, load_dataset
from autounet.dicom.import_dataset import import_dicom_dataset
from autounet.dicom.synthetic import write_dicom_series
from autounet.errors import DatasetError
from autounet.fingerprint.compute import compute_fingerprint
from autounet.io import read_image, write_image

from .conftest import GEOMETRY_VARIANTS, blob_label_map

#: IBSI reproduced its NIfTI mask from this RTSTRUCT with an even-odd point-in-polygon test at pixel centres; ours
#: must agree to this Dice (it does exactly: 17090 voxels, Dice 1.0, on the real case).
IBSI_MIN_DICE = 0.999


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float(np.logical_and(a, b).sum()) / float(a.sum() + b.sum())


def test_import_real_liver_seg_matches_its_label_map(tmp_path, dicom_data, capsys):
    source = dicom_data / "dcmqi_ct3slice_liver_seg"
    shutil.copytree(source / "ct", tmp_path / "studies" / "patient1")
    (tmp_path / "segs").mkdir()
    shutil.copy(source / "seg" / "liver.dcm", tmp_path / "segs")
    code = main(["import-dicom", "--images", str(tmp_path / "studies"), "--labels", str(tmp_path / "segs"),
                 "-o", str(tmp_path / "Dataset001_Liver"), "--no-progress"])
    assert code == 0 and "1 Liver" in capsys.readouterr().out
    label = read_image(tmp_path / "Dataset001_Liver" / "labelsTr" / "patient1.nii.gz")
    reference = read_image(source / "label_reference" / "liver_seg.nrrd")
    assert np.array_equal(label.data[0] > 0, reference.data[0] > 0)  # exact: 107098 voxels
    np.testing.assert_allclose(label.geometry.origin, reference.geometry.origin, atol=1e-4)
    image = read_image(tmp_path / "Dataset001_Liver" / "imagesTr" / "patient1_0000.nii.gz")
    assert image.spatial_shape == (3, 512, 512) and int(image.data.min()) < -1000  # HU
    assert check_dataset(tmp_path / "Dataset001_Liver", progress=False).ok


@pytest.mark.integration
def test_import_real_rtstruct_matches_ibsi_mask_and_trains_downstream(tmp_path, dicom_data):
    source = dicom_data / "ibsi_sts002_ct_rtstruct"
    shutil.copytree(source / "CT", tmp_path / "STS_002" / "CT")
    result = import_dicom_dataset(tmp_path / "STS_002", tmp_path / "ds", progress=False)
    assert result.labels == {"background": 0, "GTV_Mass_CT": 1} and not result.unpaired
    (case,) = result.cases
    assert case["label"]["kind"] == "rtstruct"
    label = read_image(tmp_path / "ds" / "labelsTr" / f"{case['case']}.nii.gz").data[0] > 0
    reference = read_image(source / "nifti_reference" / "CT_mask.nii.gz").data[0] > 0
    assert _dice(label, reference) >= IBSI_MIN_DICE and label.sum() == reference.sum() == 17090
    dataset = load_dataset(tmp_path / "ds")
    assert check_dataset(dataset.root, progress=False).ok
    fingerprint = compute_fingerprint(dataset, workers=1, progress=False)
    assert fingerprint.cases[0].label_voxels[1] == 17090


def test_overlapping_segments_are_resolved_with_a_note(tmp_path, dicom_data):
    source = dicom_data / "dcmqi_ct3slice_liver_seg"
    shutil.copytree(source / "ct", tmp_path / "studies" / "ct")
    (tmp_path / "segs").mkdir()
    shutil.copy(source / "seg" / "partial_overlaps.dcm", tmp_path / "segs")
    result = import_dicom_dataset(tmp_path / "studies", tmp_path / "ds", tmp_path / "segs", progress=False)
    assert list(result.labels) == ["background", "GREEN", "ORANGE", "PURPLE", "LIGHT_BLUE", "DARK_BLUE"]
    assert any("overlaps" in note for note in result.cases[0]["notes"])
    label = read_image(tmp_path / "ds" / "labelsTr" / "ct.nii.gz").data[0]
    only_one = read_image(source / "label_reference" / "partial_overlaps-1.nrrd").data[0]  # segments 1, 4, 5
    for value in (4, 5):  # the highest values win overlaps, so these are whole
        assert np.array_equal(label == value, only_one == value)


def test_pairs_label_files_lists_unpaired_series_and_check_names_them(tmp_path):
    geometry = GEOMETRY_VARIANTS["oblique"]
    shape = (6, 14, 12)
    data = np.random.default_rng(0).integers(0, 100, shape)
    write_dicom_series(tmp_path / "studies" / "p1", data, geometry)
    write_dicom_series(tmp_path / "studies" / "p2", data, geometry)  # no label anywhere
    write_dicom_series(tmp_path / "studies" / "p3", data, GEOMETRY_VARIANTS["axial"])
    labels = tmp_path / "labels"
    write_image(labels / "p1.nii.gz", blob_label_map(shape).clip(0, 2), geometry)
    write_image(labels / "p3.nii.gz", blob_label_map(shape).clip(0, 2), geometry)  # on another grid: mismatched
    write_image(labels / "stray.nii.gz", blob_label_map(shape), geometry)
    result = import_dicom_dataset(tmp_path / "studies", tmp_path / "ds", labels, label_names=["organ", "lesion"], progress=False)
    assert [c["case"] for c in result.cases] == ["p1"]
    assert {u.get("folder", u.get("label")).split("/")[-1] for u in result.unpaired} == {"p2", "stray.nii.gz"}
    assert result.mismatched[0]["case"] == "p3" and "not on the grid" in result.mismatched[0]["reason"]
    assert not (tmp_path / "ds" / "imagesTr" / "p3_0000.nii.gz").exists()
    label = read_image(tmp_path / "ds" / "labelsTr" / "p1.nii.gz")
    assert np.array_equal(label.data[0], blob_label_map(shape).clip(0, 2))
    report = check_dataset(tmp_path / "ds", progress=False)
    kinds = {p.kind for p in report.problems}
    assert {"dicom_unpaired", "dicom_mismatch"} <= kinds
    assert any("p2" in p.message for p in report.problems) and any("p3" in p.message for p in report.problems)
    record = json.loads((tmp_path / "ds" / "dicom_import.json").read_text())
    assert record["cases"][0]["series"][0]["uid"]
    with pytest.raises(DatasetError, match="exists and is not empty"):
        import_dicom_dataset(tmp_path / "studies", tmp_path / "ds", labels, progress=False)


def test_a_dataset_of_series_folders_is_checked_and_fingerprinted(tmp_path):
    """dataset.json may name DICOM series folders as images: check and fingerprint read them."""
    geometry = GEOMETRY_VARIANTS["negative_column_direction"]
    shape = (6, 14, 12)
    data = np.random.default_rng(0).integers(0, 100, shape) + 10
    write_dicom_series(tmp_path / "series" / "a", data, geometry, reverse_instance_numbers=True)
    write_image(tmp_path / "labelsTr" / "a.nii.gz", blob_label_map(shape).clip(0, 1), geometry)
    (tmp_path / "dataset.json").write_text(json.dumps({
        "name": "dicom", "channel_names": {"0": "CT"}, "labels": {"background": 0, "organ": 1}, "file_ending": ".nii.gz",
        "numTraining": 1, "dataset": {"a": {"images": ["series/a"], "label": "labelsTr/a.nii.gz"}}}))
    report = check_dataset(tmp_path, progress=False)
    assert report.ok, str(report)
    fingerprint = compute_fingerprint(load_dataset(tmp_path), workers=1, progress=False)
    assert fingerprint.cases[0].shape == shape


def test_a_killed_import_resumes_without_redoing_finished_cases(tmp_path, monkeypatch):
    import autounet.dicom.import_dataset as module

    geometry = GEOMETRY_VARIANTS["axial"]
    shape = (5, 10, 10)
    for name in ("p1", "p2"):
        write_dicom_series(tmp_path / "studies" / name, np.full(shape, 7), geometry)
        write_image(tmp_path / "labels" / f"{name}.nii.gz", blob_label_map(shape).clip(0, 1), geometry)
    real = module._write_case
    calls = []

    def killed_on_second(candidate, *args):
        calls.append(candidate.case_id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(candidate, *args)

    monkeypatch.setattr(module, "_write_case", killed_on_second)
    with pytest.raises(KeyboardInterrupt):
        import_dicom_dataset(tmp_path / "studies", tmp_path / "ds", tmp_path / "labels", progress=False)
    assert not (tmp_path / "ds").exists()  # nothing half-written in place
    monkeypatch.setattr(module, "_write_case", lambda candidate, *args: calls.append(candidate.case_id) or real(candidate, *args))
    result = import_dicom_dataset(tmp_path / "studies", tmp_path / "ds", tmp_path / "labels", progress=False)
    assert calls == ["p1", "p2", "p2"] and [c["case"] for c in result.cases] == ["p1", "p2"]
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["dataset.json", "dicom_import.json", "imagesTr", "labelsTr"]
