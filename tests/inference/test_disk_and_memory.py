"""Prediction on a full disk or out of memory (issue 9): the failing case is reported with where and how much (disk
space; memory estimated from its shape, with fewer workers suggested), the other cases are written, and the output
a previous run wrote for the failing case stays intact."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from autounet import jsonio
from autounet.inference import Predictor
from autounet.io import read_image

from .conftest import make_results, tiny_configuration, tiny_plans, write_case

CASES = ("a", "b", "c")


@pytest.fixture
def model(tmp_path):
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres")})
    results = make_results(tmp_path / "results", plans, {"3d_fullres": (0,)})
    return Predictor.from_model_folder(results, device="cpu", mirroring=False, autocast_dtype=None)


@pytest.fixture
def images(tmp_path):
    for index, case in enumerate(CASES):
        write_case(tmp_path / "in" / f"{case}_0000.nii.gz", seed=index)
    return tmp_path / "in"


@pytest.mark.parametrize("workers", [0, 2])
def test_a_full_disk_fails_the_case_and_keeps_its_earlier_output(tmp_path, model, images, monkeypatch, workers):
    out = tmp_path / "out"
    assert model.predict_folder(images, out, progress=False, workers=workers).ok
    before = read_image(out / "b.nii.gz").data.copy()
    real_replace = jsonio.os.replace

    def replace(source, target):
        if str(target).endswith("b.nii.gz"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(jsonio.os, "replace", replace)
    report = model.predict_folder(images, out, progress=False, workers=workers)
    assert sorted(report.written) == ["a", "c"] and list(report.failed) == ["b"]
    message = report.failed["b"]
    assert f"disk full while writing {out / 'b.nii.gz'} (" in message and "MB free" in message, message
    assert "kB needed for this file" in message and "free some space" in message
    assert np.array_equal(read_image(out / "b.nii.gz").data, before)  # the earlier output is intact
    assert not list(out.glob(".*.tmp"))


def test_out_of_memory_names_the_case_and_what_it_needs(tmp_path, model, images, monkeypatch):
    real_prepare = model.prepare

    def prepare(image, case_id):
        if case_id == "b":
            raise MemoryError()
        return real_prepare(image, case_id)

    monkeypatch.setattr(model, "prepare", prepare)
    report = model.predict_folder(images, tmp_path / "out", progress=False, workers=0)
    assert sorted(report.written) == ["a", "c"]
    message = report.failed["b"]
    assert "out of memory" in message and "b_0000.nii.gz" in message, message
    assert "case b needs about 0.0 GB (shape (20, 24, 22), 3 classes)" in message, message
    assert "--workers 0" in message and "--tile-batch-size" in message
