"""Progress output: animated bars on a terminal, one plain line per stage or epoch when stderr is a log file."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from types import SimpleNamespace

import pytest

from autounet import progress
from autounet.dataset.demo import DemoSpec, make_demo_dataset
from autounet.parallel import map_with_progress
from autounet.progress import epoch_line, progress_bar
from autounet.trainers.callbacks import ProgressBar

_CLI = "import sys; from autounet.cli import main; sys.exit(main(sys.argv[1:]))"


class FakeStream(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def _square(value: int) -> int:
    return value * value


def test_a_terminal_gets_an_animated_bar():
    stream = FakeStream(terminal=True)
    with progress_bar(3, "preprocess", stream=stream) as bar:
        for _ in range(3):
            bar.update()
    assert "\r" in stream.getvalue() and "preprocess" in stream.getvalue()


def test_a_log_file_gets_one_line_per_stage():
    stream = FakeStream(terminal=False)
    with progress_bar(3, "preprocess", stream=stream) as bar:
        for _ in range(3):
            bar.update()
    assert "\r" not in stream.getvalue()
    assert re.fullmatch(r"preprocess: 3/3 cases, \d+\.\d s\n", stream.getvalue())


def test_a_long_stage_in_a_log_file_reports_every_interval(monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_LINE_INTERVAL_SECONDS", 0.0)
    stream = FakeStream(terminal=False)
    with progress_bar(2, "fingerprint", stream=stream) as bar:
        bar.update()
        bar.update()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("fingerprint: 1/2 cases") and lines[-1].startswith("fingerprint: 2/2 cases")
    assert len(lines) == 2  # the last update and the closing line are one


@pytest.mark.parametrize("terminal", [True, False])
def test_disabled_progress_and_detail_bars_in_a_log_write_nothing(terminal):
    stream = FakeStream(terminal=terminal)
    with progress_bar(4, "predict", enabled=False, stream=stream) as bar:
        bar.update(4)
    with progress_bar(4, "tiles", unit="tile", detail=True, stream=stream) as bar:
        bar.update(4)
    assert ("\r" in stream.getvalue()) is terminal and "predict" not in stream.getvalue()


@pytest.mark.parametrize("terminal", [True, False])
def test_map_with_progress_follows_the_rule(monkeypatch, terminal):
    stream = FakeStream(terminal=terminal)
    monkeypatch.setattr(sys, "stderr", stream)
    assert map_with_progress(_square, [1, 2, 3], workers=1, description="check") == [1, 4, 9]
    assert ("\r" in stream.getvalue()) is terminal
    assert terminal or stream.getvalue().startswith("check: 3/3 cases")


def test_epoch_line_has_the_numbers_of_the_epoch():
    record = {"epoch": 2, "train_loss": 0.53, "val_loss": 0.41, "dice_per_label": {"organ": 0.71, "lesion": 0.65},
              "ema_dice": 0.68, "lr": 0.0077, "epoch_seconds": 12.07}
    assert epoch_line(record, 10) == (
        "epoch 3/10: train loss 0.5300, val loss 0.4100, pseudo Dice 0.7100 / 0.6500 (EMA 0.6800), lr 0.00770, 12.1 s"
    )
    assert epoch_line({"epoch": 0, "train_loss": 1.0, "lr": 0.01, "epoch_seconds": 1.0}, 1, "2d fold all") == (
        "2d fold all, epoch 1/1: train loss 1.0000, lr 0.01000, 1.0 s"
    )


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("progress") / "Demo", DemoSpec(num_cases=5, shape=(16, 20, 18), seed=3), name="Demo")


def _fake_trainer():
    return SimpleNamespace(config=SimpleNamespace(iterations_per_epoch=2), state=SimpleNamespace(total_iterations=6, epoch=0),
                           iterations_this_epoch=lambda: 2, current_lr=lambda: 0.01)


@pytest.mark.parametrize(("terminal", "enabled"), [(False, True), (True, True), (False, False)])
def test_the_trainer_writes_one_line_per_epoch_in_a_log(monkeypatch, terminal, enabled):
    stream = FakeStream(terminal=terminal)
    monkeypatch.setattr(sys, "stderr", stream)
    callback, trainer = ProgressBar(enabled, label="3d_fullres fold 1"), _fake_trainer()
    record = {"epoch": 0, "train_loss": 0.9, "lr": 0.01, "epoch_seconds": 2.0, "val_loss": 0.8,
              "dice_per_label": {"organ": 0.5, "lesion": 0.25}, "ema_dice": 0.375}
    callback.on_epoch_start(trainer)
    for _ in range(2):
        callback.on_iteration_end(trainer, 0.9)
    callback.on_epoch_end(trainer, record)
    text = stream.getvalue()
    if not enabled:
        assert text == ""
    elif terminal:
        assert "\r" in text and "epoch 0" in text and "pseudo Dice" not in text  # the bar, as before
    else:
        assert text == ("3d_fullres fold 1, epoch 1/3: train loss 0.9000, val loss 0.8000, pseudo Dice 0.5000 / 0.2500 "
                        "(EMA 0.3750), lr 0.01000, 2.0 s\n")


def test_cli_run_with_stderr_to_a_pipe_writes_plain_lines(fold_all_run):
    text = fold_all_run[2].stderr
    assert "\r" not in text
    for pattern in (r"^check: 7/7 cases, \d+\.\d s$", r"^fingerprint: 5/5 cases, ", r"^preprocess: 5/5 cases, ",
                    r"^3d_fullres fold all, epoch 1/2: train loss \d\.\d{4}, lr [\d.]+, \d+\.\d s$",
                    r"^3d_fullres fold all, epoch 2/2: train loss "):
        assert re.search(pattern, text, re.MULTILINE), (pattern, text)
    assert not re.search(r"^(tiles|epoch \d+:)", text, re.MULTILINE)  # no per-tile or per-iteration output


def test_no_progress_writes_neither_bars_nor_lines(tiny_demo, run_cli):
    completed = run_cli("check", tiny_demo, "--workers", "1", "--no-progress")
    assert completed.returncode == 0 and completed.stderr == ""
    assert run_cli("check", tiny_demo, "--workers", "1").stderr.startswith("check: 7/7 cases, ")


def test_cli_on_a_terminal_still_animates_a_bar(tiny_demo):
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a real terminal has a size
    try:
        process = subprocess.Popen([sys.executable, "-c", _CLI, "check", str(tiny_demo), "--workers", "1"],
                                   stdout=subprocess.DEVNULL, stderr=follower)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=120) == 0
    finally:
        os.close(leader)
    text = b"".join(chunks).decode(errors="replace")
    assert "\r" in text and re.search(r"check: +\d+%\|", text)  # tqdm's frame, not the plain line
    assert "check: 7/7 cases," not in text
