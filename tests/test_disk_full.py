"""A full disk (issue 9): every atomic write (``autounet.jsonio.atomic_path``) turns it into one ``DiskFullError`` that
says where, how much is free and how much was needed, and leaves the previous file intact. The stage tests
(preprocessing, training checkpoints, prediction outputs) simulate the full disk the same way."""

from __future__ import annotations

import errno
import os
import shutil
from collections import namedtuple

import numpy as np
import pytest

from autounet import jsonio
from autounet.errors import DiskFullError
from autounet.jsonio import atomic_path, save_npy, write_json

_Usage = namedtuple("_Usage", "total used free")


def _replace_fails_with(error):
    def replace(source, target):
        raise error

    return replace


def test_enospc_becomes_one_clear_error_and_the_old_file_stays(tmp_path, monkeypatch):
    path = tmp_path / "case.npy"
    save_npy(path, np.zeros(10))
    monkeypatch.setattr(jsonio.os, "replace", _replace_fails_with(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(DiskFullError) as caught:
        save_npy(path, np.ones(1_000_000))  # 8 MB
    message = str(caught.value)
    assert message.startswith(f"disk full while writing {path} (")
    assert "MB free on the disk holding" in message and "about 8.0 MB needed for this file" in message
    assert "free some space or choose another output folder" in message and "kept" in message
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, OSError)
    assert np.load(path, allow_pickle=False).tolist() == [0.0] * 10
    assert [p.name for p in tmp_path.iterdir()] == ["case.npy"]  # no temporary file left


def test_quota_exceeded_is_a_full_disk_too(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonio.os, "replace", _replace_fails_with(OSError(errno.EDQUOT, "Disk quota exceeded")))
    with pytest.raises(DiskFullError, match="disk full while writing"):
        write_json(tmp_path / "a.json", {"a": 1})


def test_a_writer_without_an_error_number_on_a_nearly_full_disk(tmp_path, monkeypatch):
    """torch.save and SimpleITK raise RuntimeError when the disk fills; the free space decides."""
    monkeypatch.setattr(jsonio.shutil, "disk_usage", lambda path: _Usage(10**12, 10**12 - 10**6, 10**6))
    with pytest.raises(DiskFullError, match=r"1 MB free .*at least 0 kB needed"):
        with atomic_path(tmp_path / "model.pt"):
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
    with pytest.raises(DiskFullError, match="about 50.0 MB needed"):
        with atomic_path(tmp_path / "model.pt", expected_bytes=50_000_000):
            raise RuntimeError("file write failed")


def test_other_errors_pass_unchanged(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="not about disks"):  # plenty of space free
        with atomic_path(tmp_path / "a.bin"):
            raise RuntimeError("not about disks")
    monkeypatch.setattr(jsonio.os, "replace", _replace_fails_with(PermissionError(errno.EACCES, "Permission denied")))
    with pytest.raises(PermissionError):
        write_json(tmp_path / "a.json", {})


def test_a_full_disk_before_the_temporary_file_exists(tmp_path, monkeypatch):
    def mkstemp(**kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(jsonio.tempfile, "mkstemp", mkstemp)
    with pytest.raises(DiskFullError, match=f"disk full while writing {tmp_path / 'a.json'}"):
        write_json(tmp_path / "a.json", {})


def test_the_cli_prints_it_without_a_traceback(tmp_path, monkeypatch, capsys, demo_3d):
    from autounet.cli import main

    data = shutil.copytree(demo_3d, tmp_path / "data")
    monkeypatch.setattr(jsonio.os, "replace", _replace_fails_with(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    assert main(["fingerprint", str(data), "-o", str(tmp_path / "fp.json"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"autounet fingerprint: error: disk full while writing {tmp_path / 'fp.json'}")
    assert "Traceback" not in err
