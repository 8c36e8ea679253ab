"""Checkpoints: resume reaches the weights of an uninterrupted run, also after SIGKILL; unsafe files are refused."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from autounet.pipeline import train_fold
from autounet.trainers import CheckpointError, load_checkpoint

from .helpers import StopAfter, final_weights, interrupt_at, quick_config

REPO_ROOT = Path(__file__).resolve().parents[2]


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_resume_reaches_identical_weights(tiny_results, tmp_path, precision):
    config = quick_config(epochs=2, iterations_per_epoch=4, checkpoint_every_seconds=0, precision=precision)
    reference = Path(str(tiny_results) + "_reference")
    reference.mkdir()
    import shutil

    shutil.copytree(tiny_results, reference, dirs_exist_ok=True)
    train_fold(reference, "3d_fullres", 0, config)

    with pytest.raises(StopAfter):
        train_fold(tiny_results, "3d_fullres", 0, config, callbacks=[interrupt_at(5)])
    fold_dir = tiny_results / "3d_fullres" / "fold_0"
    assert load_checkpoint(fold_dir / "checkpoint_latest.pt")["iteration"] == 5
    assert not (fold_dir / "checkpoint_final.pt").exists()
    result = train_fold(tiny_results, "3d_fullres", 0, config, resume=True)
    assert (result.epochs, result.iterations) == (2, 8)
    _assert_same_weights(final_weights(fold_dir), final_weights(reference / "3d_fullres" / "fold_0"))
    log = load_checkpoint(fold_dir / "checkpoint_final.pt")["log"]
    assert [r["iteration"] for r in log] == [4, 8]


_KILLABLE = """
import sys, time
sys.path.insert(0, {tests!r})
from trainers.helpers import quick_config
from autounet.pipeline import train_fold
from autounet.trainers import Callback

class Slow(Callback):
    def on_iteration_end(self, trainer, loss):
        time.sleep(0.2)

train_fold({results!r}, "3d_fullres", 0, quick_config(epochs=3, iterations_per_epoch=5, checkpoint_every_seconds=0),
           resume={resume}, callbacks=[Slow()])
"""


def test_sigkill_and_resume_gives_the_uninterrupted_result(tiny_results, tmp_path):
    import shutil

    reference = tmp_path / "reference"
    shutil.copytree(tiny_results, reference)
    train_fold(reference, "3d_fullres", 0, quick_config(epochs=3, iterations_per_epoch=5, checkpoint_every_seconds=0))

    # A random point: after a random iteration's checkpoint, plus a random delay, so the kill may land inside a
    # step or inside the next checkpoint write. The seed is in every assertion message, to replay a failure.
    seed = random.SystemRandom().randrange(2**32)
    chooser = random.Random(seed)
    kill_after, delay = chooser.randint(1, 12), chooser.uniform(0.0, 0.25)
    script = _KILLABLE.format(tests=str(REPO_ROOT / "tests"), results=str(tiny_results), resume=False)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT)
    latest = tiny_results / "3d_fullres" / "fold_0" / "checkpoint_latest.pt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if latest.exists() and load_checkpoint(latest)["iteration"] >= kill_after:
            break
        time.sleep(0.02)
    time.sleep(delay)
    assert process.poll() is None, f"training finished before it could be killed (seed {seed})"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = load_checkpoint(latest)["iteration"]
    assert kill_after <= killed_at < 15, f"seed {seed}"
    assert not (latest.parent / "checkpoint_final.pt").exists()

    result = train_fold(tiny_results, "3d_fullres", 0, quick_config(epochs=3, iterations_per_epoch=5, checkpoint_every_seconds=0), resume=True)
    assert result.iterations == 15, f"seed {seed}"
    _assert_same_weights(final_weights(latest.parent), final_weights(reference / "3d_fullres" / "fold_0"))


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_is_refused_without_running(tiny_results, tmp_path):
    marker = tmp_path / "pwned"
    fold_dir = tiny_results / "3d_fullres" / "fold_0"
    fold_dir.mkdir(parents=True)
    path = fold_dir / "checkpoint_latest.pt"
    torch.save({"network_weights": {}, "payload": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="refused to load"):
        train_fold(tiny_results, "3d_fullres", 0, quick_config(), resume=True)
    assert not marker.exists()


def test_checkpoint_of_another_model_is_refused(tiny_results):
    config = quick_config(epochs=1, iterations_per_epoch=2)
    train_fold(tiny_results, "3d_fullres", 0, config)
    latest = tiny_results / "3d_fullres" / "fold_0" / "checkpoint_latest.pt"
    checkpoint = load_checkpoint(latest)
    checkpoint["network"] = "resenc"
    torch.save(checkpoint, latest)
    final = latest.parent / "checkpoint_final.pt"
    final.unlink()
    with pytest.raises(CheckpointError, match="network 'resenc'"):
        train_fold(tiny_results, "3d_fullres", 0, config, resume=True)


def test_damaged_checkpoint_is_reported(tmp_path):
    path = tmp_path / "checkpoint_latest.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)


def test_resuming_a_finished_fold_only_does_what_is_missing(tiny_results):
    config = quick_config(epochs=1, iterations_per_epoch=2, final_validation=True)
    first = train_fold(tiny_results, "3d_fullres", 0, config)
    summary = first.fold_dir / "validation" / "fold_summary.json"
    written = summary.stat().st_mtime_ns
    again = train_fold(tiny_results, "3d_fullres", 0, config, resume=True)
    assert (again.iterations, again.validation) == (first.iterations, first.validation)
    assert summary.stat().st_mtime_ns == written
    summary.unlink()  # a final validation that did not finish runs again
    assert train_fold(tiny_results, "3d_fullres", 0, config, resume=True).validation["cases"] == 2
