"""A full disk while training (issue 9): the checkpoint write fails with one message (where, free space, size of the
checkpoint), exit code 2 and no traceback; the checkpoint written before stays intact and resuming from it works."""

from __future__ import annotations

import errno
import shutil
from collections import namedtuple

from autounet import jsonio
from autounet.cli import main
from autounet.trained_fold import checkpoint as checkpoint_module
from autounet.trainers import load_checkpoint

QUICK = ["--epochs", "2", "--iterations-per-epoch", "1", "--device", "cpu", "--precision", "float32", "--workers", "0",
         "--no-progress", "--no-validation"]
_Usage = namedtuple("_Usage", "total used free")


def test_a_full_disk_at_a_checkpoint_keeps_the_previous_one(tiny_results, capsys, monkeypatch):
    real_save = checkpoint_module.torch.save
    saves = []

    def save(obj, path):
        saves.append(path)
        if len(saves) > 1:  # the disk fills after the first checkpoint; torch reports it as a RuntimeError
            raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0: file write failed")
        return real_save(obj, path)

    monkeypatch.setattr(checkpoint_module.torch, "save", save)
    monkeypatch.setattr(jsonio.shutil, "disk_usage", lambda path: _Usage(10**12, 10**12 - 2 * 10**6, 2 * 10**6))
    code = main(["train", str(tiny_results), "3d_fullres", "all", *QUICK])
    err = capsys.readouterr().err
    fold = tiny_results / "3d_fullres" / "fold_all"
    assert code == 2 and "Traceback" not in err, err
    assert err.startswith(f"autounet train: error: disk full while writing {fold / 'checkpoint_latest.pt'} (2 MB free")
    assert "MB needed for this file" in err and "files written before are complete and kept" in err, err
    assert load_checkpoint(fold / "checkpoint_latest.pt")["epoch"] == 1  # the one written before the disk filled
    assert not list(fold.glob(".*.tmp"))

    monkeypatch.setattr(checkpoint_module.torch, "save", real_save)
    monkeypatch.setattr(jsonio.shutil, "disk_usage", shutil.disk_usage)
    assert main(["train", str(tiny_results), "3d_fullres", "all", *QUICK, "--resume"]) == 0
    assert load_checkpoint(fold / "checkpoint_final.pt")["epoch"] == 2
