"""Preprocessing on a full disk or out of memory (issue 9): the case that fails is named with what it needed (disk
space, or memory estimated from its shape, with the advice to use fewer workers); cases stored before are kept and a
re-run finishes without recomputing them. Real Hippocampus cases (tests/dataset/corrupt.py)."""

from __future__ import annotations

import errno

import pytest

from autounet import jsonio
from autounet.cli import main
from autounet.preprocessing import open_preprocessed, pipeline

from dataset import corrupt  # tests/dataset/corrupt.py (tests/ is on sys.path)

pytestmark = pytest.mark.integration

BROKEN = corrupt.HIPPOCAMPUS_CASES[1]


@pytest.fixture
def planned(tmp_path, hippocampus_dir):
    root = corrupt.copy_msd_cases(hippocampus_dir, tmp_path / "data")
    assert main(["plan", str(root), "-o", str(tmp_path / "plans.json"), "--configurations", "3d_fullres",
                 "--no-progress"]) == 0
    return root, tmp_path / "plans.json"


def _preprocess(root, plans, output, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["preprocess", str(root), "--plans", str(plans), "-o", str(output), "--workers", "1", "--no-progress"])
    return code, capsys.readouterr().err


def test_a_full_disk_names_the_file_and_keeps_the_finished_cases(tmp_path, planned, capsys, monkeypatch):
    root, plans = planned
    real_replace = jsonio.os.replace

    def replace(source, target):
        if f"{BROKEN}.npy" in str(target):  # the disk fills while this case's image is written
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(jsonio.os, "replace", replace)
    folder = tmp_path / "pre" / "3d_fullres"
    code, err = _preprocess(root, plans, tmp_path / "pre", capsys)
    assert code == 2 and "Traceback" not in err, err
    assert f"{BROKEN}: disk full while writing {folder / f'{BROKEN}.npy'}" in err, err
    assert "MB free" in err and "MB needed for this file" in err and "free some space" in err, err
    store = open_preprocessed(folder)
    assert BROKEN not in store and len(store) == 3
    kept = {case: (folder / f"{case}.npy").stat().st_mtime_ns for case in store.case_ids}

    monkeypatch.setattr(jsonio.os, "replace", real_replace)  # space was freed
    code, err = _preprocess(root, plans, tmp_path / "pre", capsys)
    assert code == 0, err
    assert open_preprocessed(folder).is_complete
    assert {case: (folder / f"{case}.npy").stat().st_mtime_ns for case in kept} == kept  # not recomputed


def test_out_of_memory_names_the_case_and_what_it_needs(tmp_path, planned, capsys, monkeypatch):
    root, plans = planned
    real = pipeline.preprocess_case

    def preprocess_case(image, plans, configuration_name, label=None, **kwargs):
        if kwargs.get("case_id") == BROKEN:
            raise MemoryError()
        return real(image, plans, configuration_name, label, **kwargs)

    monkeypatch.setattr(pipeline, "preprocess_case", preprocess_case)
    code, err = _preprocess(root, plans, tmp_path / "pre", capsys)
    assert code == 2 and "Traceback" not in err, err
    assert f"{BROKEN}: out of memory while preprocessing {corrupt.image_file(root, BROKEN)}" in err, err
    assert "this case needs about 0.0 GB (shape (35, 52, 34), 1 channel(s))" in err, err
    assert "use fewer --workers" in err
    assert len(open_preprocessed(tmp_path / "pre" / "3d_fullres")) == 3


def test_memory_estimate_grows_with_the_case():
    small = pipeline.estimate_case_memory_bytes(1e6, 1e6, 1)
    assert pipeline.estimate_case_memory_bytes(1e6, 8e6, 1) > 3 * small  # upsampling to a finer spacing
    assert pipeline.estimate_case_memory_bytes(1e6, 1e6, 2) == 2 * small
