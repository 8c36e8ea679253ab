"""One writer per folder (issue 20, item 3): a second run on a folder another process holds is refused with the
holder named (command, pid, host, start time); a crashed holder's lock is recovered. Real processes hold the locks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from autounet import locks
from autounet.cli import main
from autounet.locks import FolderLockedError, LockHolder, folder_lock, read_holder

_HOLD = """
import sys, time
from autounet.locks import folder_lock
with folder_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    time.sleep(120)
"""


def hold_in_another_process(folder, command: str) -> subprocess.Popen:
    """A real process holding ``folder``'s lock until it is killed."""
    process = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder), command], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def test_a_second_writer_is_told_who_holds_the_folder_and_a_killed_holder_frees_it(tmp_path, caplog):
    folder = tmp_path / "3d_fullres" / "fold_0"
    holder = hold_in_another_process(folder, "autounet train 3d_fullres fold 0")
    try:
        with pytest.raises(FolderLockedError) as caught:
            with folder_lock(folder, "autounet train 3d_fullres fold 0"):
                pytest.fail("two writers held one folder")
        message = str(caught.value)
        assert f"{folder} is being written by another autounet run" in message
        assert f'"autounet train 3d_fullres fold 0" (pid {holder.pid} on {socket.gethostname()}, started 20' in message
        assert "wait for it to finish or use another folder" in message and "delete" not in message
    finally:
        _kill(holder)  # a crash: the holder never released the lock, its record stays behind
    assert read_holder(folder / locks.LOCK_FILE).pid == holder.pid
    with folder_lock(folder, "autounet train 3d_fullres fold 0") as lock_file:
        assert read_holder(lock_file).pid != holder.pid
    assert not (folder / locks.LOCK_FILE).exists()
    assert "ended without releasing it" in caplog.text


def test_the_same_thread_may_nest_the_lock_and_it_waits_when_asked(tmp_path):
    with folder_lock(tmp_path, "autounet predict"):
        with folder_lock(tmp_path, "autounet predict"):  # the CLI and the library function it calls
            pass
        assert (tmp_path / locks.LOCK_FILE).exists()
    holder = hold_in_another_process(tmp_path, "autounet predict")
    started = time.monotonic()
    with pytest.raises(FolderLockedError):
        with folder_lock(tmp_path, "autounet predict", wait_seconds=0.5):
            pass
    assert time.monotonic() - started >= 0.5
    _kill(holder)


def test_a_lock_never_leaves_the_folders_it_made_behind(tmp_path):
    with folder_lock(tmp_path / "a" / "b", "autounet train"):
        assert (tmp_path / "a" / "b").is_dir()
    assert not (tmp_path / "a").exists()


@pytest.fixture
def record_only(monkeypatch):
    """A file system without flock: the holder record alone is the lock."""
    def unsupported(path, me):
        raise locks._Unsupported()

    monkeypatch.setattr(locks, "_try_flock", unsupported)


def _write_record(folder, pid: int, host: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"command": "autounet predict", "pid": pid, "host": host, "started": "2024-01-02 03:04:05",
              "process_start": locks._process_start(pid)}
    (folder / locks.LOCK_FILE).write_text(json.dumps(record))


def test_without_flock_a_dead_holder_on_this_host_is_stale(tmp_path, record_only, caplog):
    crashed = subprocess.Popen([sys.executable, "-c", "pass"])
    crashed.wait()  # its pid is free now, as after a crash
    _write_record(tmp_path, crashed.pid, socket.gethostname())
    with folder_lock(tmp_path, "autounet predict") as lock_file:
        assert read_holder(lock_file).pid == os.getpid()
    assert "removing the stale lock" in caplog.text
    assert not (tmp_path / locks.LOCK_FILE).exists()


def test_without_flock_a_live_holder_is_refused_and_one_elsewhere_is_explained(tmp_path, record_only):
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_record(tmp_path, alive.pid, socket.gethostname())
        with pytest.raises(FolderLockedError, match=f"pid {alive.pid} on {socket.gethostname()}") as caught:
            with folder_lock(tmp_path, "autounet predict"):
                pass
        assert "delete" not in str(caught.value)
    finally:
        _kill(alive)
    _write_record(tmp_path, 4242, "node17.cluster")
    with pytest.raises(FolderLockedError) as caught:
        with folder_lock(tmp_path, "autounet predict"):
            pass
    assert "pid 4242 on node17.cluster, started 2024-01-02 03:04:05" in str(caught.value)
    assert f"this machine cannot check it), delete {tmp_path / locks.LOCK_FILE} and run again" in str(caught.value)


def test_holder_records_round_trip(tmp_path):
    me = LockHolder("autounet train", 1, "h", "2024-01-01 00:00:00", None)
    assert "pid 1 on h" in me.describe()
    (tmp_path / "x").write_text("garbage")
    assert read_holder(tmp_path / "x") is None


def test_predict_into_a_folder_another_predict_writes_is_refused(tmp_path, capsys):
    from inference.conftest import make_results, tiny_configuration, tiny_plans, write_case

    model = make_results(tmp_path / "model", tiny_plans({"3d_fullres": tiny_configuration("3d_fullres")}),
                         {"3d_fullres": (0,)})
    write_case(tmp_path / "in" / "case.nii.gz")
    holder = hold_in_another_process(tmp_path / "out", "autounet predict")
    try:
        code = main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(model),
                     "--device", "cpu", "--no-progress"])
    finally:
        _kill(holder)
    err = capsys.readouterr().err
    assert code == 2, err
    assert f'"autounet predict" (pid {holder.pid} on {socket.gethostname()}' in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == [locks.LOCK_FILE]  # nothing written by the refused run
