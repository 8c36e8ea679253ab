"""Files others can read (issue 20, item 9): atomic writes follow the umask like any other tool's files, and the files
whose loss costs hours (checkpoints, plans, manifests) are flushed to the disk (file and folder) before they count."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch

from autounet import jsonio
from autounet.io import Geometry, write_image
from autounet.jsonio import save_npy, save_npz, write_json
from autounet.trained_fold.checkpoint import save_checkpoint

from inference.conftest import tiny_configuration, tiny_plans


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_writes_follow_the_umask(tmp_path, umask_022):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what any other tool creates
    assert _mode(plain) == 0o644
    write_json(tmp_path / "plans.json", {"a": 1})
    save_npy(tmp_path / "case.npy", np.zeros(3))
    save_npz(tmp_path / "case_fg.npz", a=np.zeros(2))
    save_checkpoint(tmp_path / "checkpoint_final.pt", {"network_weights": {"w": torch.zeros(2)}})
    write_image(tmp_path / "pred.nii.gz", np.zeros((2, 3, 4), np.uint8), Geometry(spacing=(1.0, 1.0, 1.0)))
    for name in ("plans.json", "case.npy", "case_fg.npz", "checkpoint_final.pt", "pred.nii.gz"):
        assert _mode(tmp_path / name) == 0o644, name


def test_a_stricter_umask_is_honoured_too(tmp_path):
    previous = os.umask(0o077)
    try:
        write_json(tmp_path / "private.json", {})
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "private.json") == 0o600


def _record_fsyncs(monkeypatch) -> list:
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(jsonio.os, "fsync", fsync)
    return synced


def test_checkpoints_plans_are_flushed_file_and_folder(tmp_path, monkeypatch):
    synced = _record_fsyncs(monkeypatch)
    save_checkpoint(tmp_path / "fold_0" / "checkpoint_final.pt", {"network_weights": {"w": torch.zeros(2)}})
    assert any(".checkpoint_final.pt." in path for path in synced), synced  # the file, before the rename
    assert str(tmp_path / "fold_0") in synced  # the folder, after it
    synced.clear()
    tiny_plans({"3d_fullres": tiny_configuration("3d_fullres")}).save(tmp_path / "plans.json")
    assert any(".plans.json." in path for path in synced) and str(tmp_path) in synced, synced


def test_ordinary_files_are_not_flushed(tmp_path, monkeypatch):
    synced = _record_fsyncs(monkeypatch)
    write_json(tmp_path / "report.json", {})
    assert synced == []
