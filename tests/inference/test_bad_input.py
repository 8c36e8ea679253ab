"""Bad input to `autounet predict` (issue 9): each broken case fails alone with its file and the fix named, or is
handled correctly; the good cases are still written. Built from real Hippocampus cases (tests/dataset/corrupt.py)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from autounet.inference import Predictor, find_input_cases
from autounet.io import read_image

from dataset import corrupt  # tests/dataset/corrupt.py (tests/ is on sys.path)
from .conftest import make_results, tiny_configuration, tiny_plans

HIPPOCAMPUS_LABELS = {"background": 0, "Anterior": 1, "Posterior": 2}


@pytest.fixture
def model(tmp_path):
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres", patch=(24, 32, 24))}, labels=HIPPOCAMPUS_LABELS)
    results = make_results(tmp_path / "results", plans, {"3d_fullres": (0,)})
    return Predictor.from_model_folder(results, device="cpu", mirroring=False, autocast_dtype=None)


@pytest.fixture
def corpus(tmp_path, hippocampus_dir):
    return corrupt.copy_msd_cases(hippocampus_dir, tmp_path / "data", corrupt.HIPPOCAMPUS_CASES)


# (corruption, expected words in the failure message; None: the case must be predicted correctly)
CASES = [
    (lambda root, case: corrupt.truncate_image(root, case), ["truncated or corrupt"]),
    (lambda root, case: corrupt.put_nans(root, case), ["6 NaN/Inf voxel(s)", "replace them"]),
    (lambda root, case: corrupt.make_zero_size(root, case), ["zero-size image"]),
    (lambda root, case: corrupt.make_2d(root, case), ["2D image"]),
    (lambda root, case: corrupt.set_spacing(root, case, (1000.0, 1000.0, 1000.0)), ["1,000x coarser", "header's unit"]),
    (lambda root, case: corrupt.set_spacing(root, case, (0.001, 1.0, 1.0)), ["1,000x finer", "training data's median"]),
    (lambda root, case: corrupt.blank_image(root, case), None),
]


@pytest.mark.integration
@pytest.mark.parametrize("corruption, words", CASES)
def test_a_broken_image_fails_alone_with_a_clear_message(tmp_path, corpus, model, corruption, words):
    broken = corrupt.HIPPOCAMPUS_CASES[1]
    changed = corruption(corpus, broken)
    report = model.predict_folder(corpus / "imagesTr", tmp_path / "out", progress=False)
    good = [c for c in corrupt.HIPPOCAMPUS_CASES if c != broken]
    assert set(good) <= set(report.written)
    if words is None:
        assert report.ok
        result = read_image(tmp_path / "out" / f"{broken}.nii.gz")
        assert result.spatial_shape == read_image(changed).spatial_shape
        return
    assert list(report.failed) == [broken]
    message = report.failed[broken]
    assert changed.name in message, message
    for word in words:
        assert word in message, message


@pytest.mark.integration
def test_non_ascii_and_space_containing_paths(tmp_path, hippocampus_dir, model):
    rename = {corrupt.HIPPOCAMPUS_CASES[0]: "fall ärztlich 1"}
    root = corrupt.copy_msd_cases(hippocampus_dir, tmp_path / "dätä set", corrupt.HIPPOCAMPUS_CASES[:2], rename)
    report = model.predict_folder(root / "imagesTr", tmp_path / "out put", progress=False)
    assert report.ok and "fall ärztlich 1" in report.written
    assert (tmp_path / "out put" / "fall ärztlich 1.nii.gz").is_file()


@pytest.mark.integration
def test_missing_and_extra_channel_files_are_named(tmp_path, hippocampus_dir):
    msd = corrupt.copy_msd_cases(hippocampus_dir, tmp_path / "msd")
    root = corrupt.to_nnunet_v2(msd, tmp_path / "v2")
    corrupt.add_channel(root, channels=2)
    first, second = corrupt.HIPPOCAMPUS_CASES[:2]
    corrupt.delete_channel_file(root, first, channel=1)
    shutil.copyfile(root / "imagesTr" / f"{second}_0000.nii.gz", root / "imagesTr" / f"{second}_0002.nii.gz")
    cases = {c.case_id: c for c in find_input_cases(root / "imagesTr", num_channels=2)}
    assert set(cases) == set(corrupt.HIPPOCAMPUS_CASES)
    assert f"{first}_0001.nii.gz missing" in cases[first].problem
    assert f"unexpected channel file(s) {second}_0002.nii.gz" in cases[second].problem
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres", channels=2)}, channels=2, labels=HIPPOCAMPUS_LABELS)
    model = Predictor.from_model_folder(make_results(tmp_path / "results", plans, {"3d_fullres": (0,)}), device="cpu",
                                        mirroring=False)
    report = model.predict_folder(root / "imagesTr", tmp_path / "out", progress=False)
    assert sorted(report.failed) == sorted([first, second])
    assert len(report.written) == 2
    assert np.all([(tmp_path / "out" / f"{c}.nii.gz").is_file() for c in report.written])
