"""Hostile values bounded before they allocate (issue 20, item 6): a label voxel of 2**40 is refused before the label
counts are allocated, and a checkpoint is inspected (compressed entries, unknown keys, tensor bytes against the
planned network) before ``torch.load``. The hostile files are built here, small: the limits are scaled down through
the scan's parameters instead of writing gigabytes."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest
import torch

from autounet.cli import main
from autounet.errors import DatasetError
from autounet.fingerprint.compute import fingerprint_case
from autounet.io import Geometry, write_image
from autounet.trained_fold.checkpoint import CheckpointError, load_checkpoint

from inference.conftest import make_results, tiny_configuration, tiny_plans, write_case

CHECKPOINT = "3d_fullres/fold_0/checkpoint_final.pt"


def test_a_huge_label_value_is_refused_before_counting(tmp_path):
    grid = Geometry(spacing=(1.0, 1.0, 1.0))
    write_image(tmp_path / "image.nii.gz", np.ones((4, 5, 6), np.float32), grid)
    label = np.zeros((4, 5, 6), np.int64)
    label[1, 2, 3] = 2**40  # np.bincount would ask for 8 TiB
    write_image(tmp_path / "label.nii.gz", label, grid)
    with pytest.raises(DatasetError) as caught:
        fingerprint_case("case", [tmp_path / "image.nii.gz"], tmp_path / "label.nii.gz", 1, label_values=(0, 1, 2))
    assert str(caught.value).startswith(f"{tmp_path / 'label.nii.gz'}: label value(s) 1099511627776 (1 voxels) "
                                        "not declared in dataset.json (declared: 0, 1, 2)")


def test_huge_label_values_are_counted_without_a_counter_per_value(tmp_path):
    """Without declared labels the counts are still bounded by the voxels (sorting), not by the largest value."""
    grid = Geometry(spacing=(1.0, 1.0, 1.0))
    write_image(tmp_path / "image.nii.gz", np.ones((2, 3, 4), np.float32), grid)
    label = np.zeros((2, 3, 4), np.int64)
    label[0, 0, :2] = 2**40
    write_image(tmp_path / "label.nii.gz", label, grid)
    case, _ = fingerprint_case("case", [tmp_path / "image.nii.gz"], tmp_path / "label.nii.gz", 1)
    assert case.label_voxels == {0: 22, 2**40: 2}


@pytest.fixture
def model(tmp_path):
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres")})
    folder = make_results(tmp_path / "model", plans, {"3d_fullres": (0,)})
    write_case(tmp_path / "in" / "case.nii.gz")
    return folder


def _repack(path, compression=zipfile.ZIP_DEFLATED) -> None:
    """Rewrite a torch checkpoint's zip with ``compression`` (torch reads deflate entries)."""
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", compression=compression) as target:
        for info, data in entries:
            target.writestr(info.filename, data)


def _add_entry(path, key, value, compress=False) -> None:
    state = torch.load(path, weights_only=True)
    state[key] = value
    torch.save(state, path)
    if compress:
        _repack(path)


def _predict(tmp_path, model, capsys) -> tuple[int, str]:
    code = main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(model), "--device",
                 "cpu", "--no-mirroring", "--no-progress"])
    return code, capsys.readouterr().err


def test_a_deflate_bomb_under_an_extra_key_is_refused_before_loading(tmp_path, model, capsys, monkeypatch):
    path = model / CHECKPOINT
    _add_entry(path, "padding", torch.zeros(16 * 1024**2), compress=True)  # 64 MiB of zeros in about 64 kB
    assert path.stat().st_size < 2 * 1024**2
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load ran on a hostile file"))
    code, err = _predict(tmp_path, model, capsys)
    assert code == 2, err
    assert f"{path}: refused to load: " in err and "compressed" in err and "unpacking to 64.0 MiB" in err, err
    assert "torch.save never does" in err and "source you trust" in err
    assert not (tmp_path / "out" / "case.nii.gz").exists()


def test_an_unknown_key_is_refused_and_named_with_its_size(tmp_path, model, capsys):
    path = model / CHECKPOINT
    _add_entry(path, "padding", torch.zeros(1024))
    code, err = _predict(tmp_path, model, capsys)
    assert code == 2
    assert "not an autounet checkpoint: it holds key(s) autounet never writes: 'padding' (0.0 MiB of tensors)" in err


def test_tensor_bytes_beyond_the_planned_network_are_refused(tmp_path, model):
    """An allowed key holding far more than the network's weights (a stored, uncompressed file): the limit scales
    with the planned parameter count; here the slack is set to 0 so a 4 MB tensor is enough to show it."""
    from autounet.checkpoint_scan import CheckpointScanError, scan_checkpoint  # noqa: F401

    path = model / CHECKPOINT
    _add_entry(path, "optimizer_state", {"state": {0: {"momentum_buffer": torch.zeros(1024**2)}}})
    weights = sum(t.numel() for t in torch.load(path, weights_only=True)["network_weights"].values())
    with pytest.raises(CheckpointScanError) as caught:
        scan_checkpoint(path, expected_parameters=weights, slack_bytes=0)
    message = str(caught.value)
    assert "its tensors take 4.0 MiB ('optimizer_state': 4.0 MiB)" in message
    assert f"the planned network has {weights:,} parameters and buffers" in message
    layout = scan_checkpoint(path, expected_parameters=weights * 300, slack_bytes=0)  # a network that large: fine
    assert layout.key_bytes["optimizer_state"] == 4 * 1024**2 and layout.texts["network"] == "unet"


def test_an_oversized_object_record_is_refused(tmp_path, model):
    from autounet.checkpoint_scan import CheckpointScanError, scan_checkpoint  # noqa: F401

    path = model / CHECKPOINT
    with pytest.raises(CheckpointScanError, match=r"data.pkl is .*\(at most"):
        scan_checkpoint(path, max_pickle_bytes=100)


def test_a_real_checkpoint_passes_the_scan(model):
    from autounet.checkpoint_scan import CheckpointScanError, scan_checkpoint  # noqa: F401

    layout = scan_checkpoint(model / CHECKPOINT, expected_parameters=1)  # default slack covers a tiny network
    assert layout.keys[:1] == ["network_weights"] and layout.key_bytes["network_weights"] > 0
    assert load_checkpoint(model / CHECKPOINT)["configuration"] == "3d_fullres"


def test_the_malicious_checkpoint_message_gives_our_advice_only(tmp_path, model, capsys):
    """Issue 20, item 10: torch's hint that weights_only=False "will likely succeed" is not shown."""
    class Payload:
        def __reduce__(self):
            return (os.system, ("true",))

    path = model / CHECKPOINT
    state = torch.load(path, weights_only=True)
    state["training_config"] = Payload()
    torch.save(state, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "Unsupported global: GLOBAL posix.system" in message and "source you trust" in message
    assert "weights_only" not in message and "likely succeed" not in message and "In PyTorch" not in message
    code, err = _predict(tmp_path, model, capsys)
    assert code == 2 and "likely succeed" not in err and "GLOBAL posix.system" in err
