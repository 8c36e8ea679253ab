"""Bad DICOM input: each case a clear message naming the series and the fix, and nothing half-written."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder

from autounet.cli import main
from autounet.dicom.series import read_dicom_series
from autounet.dicom.synthetic import write_dicom_series
from autounet.errors import ImageReadError

from inference.conftest import make_results, tiny_configuration, tiny_plans
from .conftest import GEOMETRY_VARIANTS, SHARED_DATASETS

SHAPE = (6, 16, 16)
DCMQI_SEG = SHARED_DATASETS / "dicom" / "dcmqi_ct3slice_liver_seg" / "seg" / "liver.dcm"
#: Compressed transfer syntaxes, for finding one that no installed plugin decodes.
COMPRESSED = ["1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",
              "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.50"]


def _series(folder, variant="axial", **kwargs):
    data = np.random.default_rng(0).integers(0, 100, SHAPE)
    return write_dicom_series(folder, data, GEOMETRY_VARIANTS[variant], **kwargs)


def test_missing_pixel_data_names_the_file(tmp_path):
    files = _series(tmp_path)
    broken = pydicom.dcmread(files[2])
    del broken.PixelData
    broken.save_as(files[2])
    with pytest.raises(ImageReadError, match=rf"{files[2].name} has no pixel data .*re-export"):
        read_dicom_series(tmp_path)


def test_compressed_without_decoder_names_the_package(tmp_path):
    missing = [uid for uid in COMPRESSED if not get_decoder(pydicom.uid.UID(uid)).is_available]
    if not missing:
        pytest.skip("every compressed transfer syntax tried has a decoder installed here")
    files = _series(tmp_path)
    compressed = pydicom.dcmread(files[0])
    compressed.file_meta.TransferSyntaxUID = pydicom.uid.UID(missing[0])
    compressed.PixelData = encapsulate([compressed.PixelData])  # the frame is not really encoded: never decoded
    compressed.save_as(files[0], enforce_file_format=True)
    with pytest.raises(ImageReadError, match=r"no installed decoder reads it; install one \(pip install (pylibjpeg|pyjpegls)"):
        read_dicom_series(tmp_path)


def test_one_slice_only(tmp_path):
    files = _series(tmp_path)
    for path in files[1:]:
        path.unlink()
    with pytest.raises(ImageReadError, match="one slice only.*export the whole series"):
        read_dicom_series(tmp_path)


def test_mixed_series_without_a_way_to_pick(tmp_path):
    _series(tmp_path / "mixed")
    _series(tmp_path / "mixed", "oblique", file_prefix="OB")  # a second series (new UID) in the same folder
    with pytest.raises(ImageReadError, match=r"2 image series in one folder and no way to pick one.*own folder"):
        read_dicom_series(tmp_path / "mixed")


def test_inconsistent_orientations(tmp_path):
    files = _series(tmp_path)
    for path in files[:3]:
        other = pydicom.dcmread(path)
        other.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
        other.save_as(path)
    with pytest.raises(ImageReadError, match=r"inconsistent orientations in one series .*Export each orientation"):
        read_dicom_series(tmp_path)


def test_a_missing_dicom_extra_is_named(tmp_path, monkeypatch):
    import sys

    _series(tmp_path)
    monkeypatch.setitem(sys.modules, "pydicom", None)  # as if pydicom were not installed
    with pytest.raises(ImageReadError, match=r"pip install 'autounet\[dicom\]'"):
        read_dicom_series(tmp_path)


def test_no_dicom_at_all(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(ImageReadError, match=r"no DICOM image series.*1 file\(s\) are not DICOM"):
        read_dicom_series(tmp_path)


def test_predict_reports_each_bad_series_and_writes_nothing_for_it(tmp_path, capsys):
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres")})
    results = make_results(tmp_path / "results", plans, {"3d_fullres": (0,)})
    inputs = tmp_path / "in"
    _series(inputs / "good", reverse_instance_numbers=True)
    (inputs / "good" / "DIRFILE").write_bytes(b"proprietary")  # not DICOM: ignored
    _series(inputs / "two_series")
    _series(inputs / "two_series", "oblique", file_prefix="OB")
    files = _series(inputs / "single")
    for path in files[1:]:
        path.unlink()
    if DCMQI_SEG.is_file():  # a folder of Segmentations only (an earlier run's output) is not a case
        (inputs / "old_output").mkdir()
        shutil.copy(DCMQI_SEG, inputs / "old_output" / "a.dcm")
    code = main(["predict", "-i", str(inputs), "-o", str(tmp_path / "out"), "-m", str(results), "--device", "cpu",
                 "--no-mirroring", "--no-progress", "--output-format", "both"])
    out = capsys.readouterr().out
    assert code == 1
    report = json.loads((tmp_path / "out" / "prediction_report.json").read_text())
    assert report["written"] == ["good"]
    assert "2 image series and no way to pick" in report["failed"]["two_series"]
    assert "one slice only" in report["failed"]["single"] and "single" in out
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["good.dcm", "good.nii.gz", "prediction_report.json"]


def test_segmentation_of_a_nifti_input_is_refused(tmp_path):
    from inference.conftest import write_case

    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres")})
    results = make_results(tmp_path / "results", plans, {"3d_fullres": (0,)})
    write_case(tmp_path / "in" / "a.nii.gz")
    code = main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(results), "--device", "cpu",
                 "--no-mirroring", "--no-progress", "--output-format", "dicom-seg"])
    report = json.loads((tmp_path / "out" / "prediction_report.json").read_text())
    assert code == 1 and "needs DICOM input" in report["failed"]["a"]
    assert not (tmp_path / "out" / "a.nii.gz").exists() and not (tmp_path / "out" / "a.dcm").exists()
