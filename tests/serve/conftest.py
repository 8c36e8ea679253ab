"""A small model trained on real Hippocampus cases, its package, and ``autounet serve`` started as a real process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx", reason='the server tests need the serve extra: pip install "autounet[serve]"')
pytest.importorskip("fastapi", reason='the server tests need the serve extra: pip install "autounet[serve]"')

from trainers.helpers import hippocampus_subset, make_results, quick_config  # noqa: E402  (tests/ is on sys.path)

#: Training cases of the test model, and the cases predicted through the server (not among them).
TRAINING_CASES = 10
PREDICT_CASES = ("hippocampus_367", "hippocampus_394", "hippocampus_017")
#: An API key of the accepted length (tests only).
TEST_KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="session")
def hippocampus_model(hippocampus_dir, tmp_path_factory) -> Path:
    """3d_fullres fold 0 of a 4-16 feature U-Net trained for 60 iterations on 10 real cases (about 10 s), with its
    final validation and find-best, so its labels are not all background and it has a cross-validation Dice."""
    from autounet.inference.find_best import find_best
    from autounet.pipeline import train_fold

    root = tmp_path_factory.mktemp("serve_model")
    dataset = hippocampus_subset(hippocampus_dir, root / "Hippocampus", TRAINING_CASES)
    results = make_results(dataset, root / "HippocampusTiny", "3d_fullres", (40, 56, 40))
    shutil.copyfile(dataset / "dataset.json", results / "dataset.json")
    config = quick_config(epochs=4, iterations_per_epoch=15, final_validation=True, initial_lr=0.05, augment=False,
                          foreground_fraction=1.0)
    train_fold(results, "3d_fullres", 0, config)
    find_best(results, ensembles=False, workers=1, progress=False)
    return results


@pytest.fixture(scope="session")
def hippocampus_package(hippocampus_model, tmp_path_factory) -> Path:
    from autounet.packaging import export_model

    return export_model(hippocampus_model, tmp_path_factory.mktemp("serve_package") / "hippo.zip",
                        description="test model", license="CC0-1.0", model_version="0.1-test")


@pytest.fixture(scope="session")
def predict_inputs(hippocampus_dir, tmp_path_factory) -> Path:
    """A folder with three real Hippocampus images the model was not trained on."""
    folder = tmp_path_factory.mktemp("serve_inputs")
    for case in PREDICT_CASES:
        shutil.copyfile(hippocampus_dir / "imagesTr" / f"{case}.nii.gz", folder / f"{case}.nii.gz")
    return folder


@pytest.fixture(scope="session")
def flat_model(tmp_path_factory) -> Path:
    """A 2D model (random weights, a 4-8 feature U-Net) for grey flat images such as PNG slides."""
    from dataclasses import replace

    from inference.conftest import make_results as make_model_folder, tiny_configuration, tiny_plans

    plans = tiny_plans({"2d": tiny_configuration("2d", ndim=2, patch=(32, 32))}, labels={"background": 0, "cell": 1})
    plans = replace(plans, original_median_shape_after_transp=(1.0, 40.0, 40.0),
                    original_median_spacing_after_transp=(999.0, 1.0, 1.0))
    return make_model_folder(tmp_path_factory.mktemp("flat") / "Slides2D", plans, {"2d": (0,)})


@pytest.fixture(scope="session")
def two_channel_model(tmp_path_factory) -> Path:
    """A 3D model of two channels (random weights), for one-file-per-channel uploads."""
    from inference.conftest import make_results as make_model_folder, tiny_configuration, tiny_plans

    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres", channels=2)}, channels=2)
    return make_model_folder(tmp_path_factory.mktemp("two_channel") / "TwoChannel", plans, {"3d_fullres": (0,)})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    """``autounet serve`` in a subprocess: its URL, its log file and its private folder's parent."""

    url: str
    process: subprocess.Popen
    log: Path
    work_dir: Path

    def client(self, api_key: str | None = None, **kwargs) -> "httpx.Client":
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120.0, **kwargs)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def private_folders(self) -> list[Path]:
        return sorted(self.work_dir.glob("autounet-serve-*"))

    def stop_and_check(self) -> None:
        """Stop with SIGTERM (as systemd and docker do): a clean exit that removes the private folder."""
        assert self.private_folders(), "the server has no private folder"
        assert self.stop() == 0, self.log_text()[-2000:]
        assert not self.private_folders(), "the private folder outlived the server"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{self.url}/healthz", timeout=2)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(models: list[Path], folder: Path, *options: str, timeout: float = 120.0) -> RunningServer:
    """Start ``autounet serve`` on a free port and wait until ``/readyz`` says ready."""
    port = free_port()
    work_dir = folder / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    log = folder / "serve.log"
    command = [sys.executable, "-c", "import sys; from autounet.cli import main; sys.exit(main())", "serve", *map(str, models), "--port", str(port),
               "--work-dir", str(work_dir), "--device", "cpu", *options]
    with open(log, "w") as stream:
        process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = RunningServer(f"http://127.0.0.1:{port}", process, log, work_dir)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"autounet serve exited with {process.returncode}:\n{server.log_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise TimeoutError(f"autounet serve not ready within {timeout:.0f} s:\n{server.log_text()[-3000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def server(hippocampus_model, hippocampus_package, flat_model, two_channel_model, tmp_path_factory):
    """No API key, loopback; the package as model "hippo", the folder as "HippocampusTiny", a 2D model "Slides2D" and
    a two-channel model "TwoChannel"; one torch thread per case (so the labels can be compared with
    ``autounet predict`` on one thread)."""
    running = start_server([hippocampus_package, hippocampus_model, flat_model, two_channel_model],
                           tmp_path_factory.mktemp("server"),
                           "--max-concurrent", "2", "--threads", "1", "--job-ttl", "3s")
    yield running
    running.stop_and_check()


@pytest.fixture(scope="session")
def keyed_server(hippocampus_package, tmp_path_factory):
    """With an API key, a small upload limit (1 MB) and one case at a time with no queue."""
    folder = tmp_path_factory.mktemp("keyed_server")
    key_file = folder / "api.key"
    key_file.write_text(TEST_KEY + "\n")
    key_file.chmod(0o600)
    running = start_server([hippocampus_package], folder, "--api-key-file", str(key_file), "--max-upload-mb", "1",
                           "--max-concurrent", "1", "--max-queue", "0")
    yield running
    running.stop_and_check()
