"""Two ``autounet train`` runs of one fold (issue 20, item 3): the second, a separate process, stops at once naming
the first (command, pid, host, start time) instead of interleaving logs and checkpoints; after the first is killed
the fold folder can be trained again."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

from autounet.locks import LOCK_FILE, folder_lock, read_holder

LONG = ["--epochs", "1000", "--iterations-per-epoch", "250", "--device", "cpu", "--workers", "0", "--no-progress",
        "--threads", "1"]


def test_a_second_train_of_the_same_fold_is_refused(tiny_results):
    command = [sys.executable, "-c", "import sys; from autounet.cli import main; sys.exit(main(sys.argv[1:]))", "train", str(tiny_results), "3d_fullres", "0", *LONG]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock_file = tiny_results / "3d_fullres" / "fold_0" / LOCK_FILE
    try:
        deadline = time.monotonic() + 120
        while read_holder(lock_file) is None:
            assert first.poll() is None and time.monotonic() < deadline, "the first run never took the fold's lock"
            time.sleep(0.2)
        second = subprocess.run(command, capture_output=True, text=True, timeout=90)  # on a build without the lock it would train on
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    assert second.returncode == 2, second.stderr
    assert second.stderr.startswith("autounet train: error: ") and "Traceback" not in second.stderr
    assert (f'is being written by another autounet run "autounet train 3d_fullres fold 0" (pid {first.pid} on '
            f"{socket.gethostname()}, started ") in second.stderr
    with folder_lock(lock_file.parent, "autounet train 3d_fullres fold 0"):  # the killed run's lock is recovered
        pass
