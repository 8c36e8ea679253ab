"""Shared fixtures: small synthetic datasets and the real datasets in ../shared/datasets.

Options: ``--skip-shared`` skips (instead of failing) the tests that need ``../shared``; ``--skip-browser`` skips
(instead of failing) the report test that renders in headless Chromium when no Chromium is installed. Neither is
the default: a run without them is a complete run or a failing one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import shared_data
from autounet.dataset.demo import DemoSpec, make_demo_dataset
from shared_data import HIPPOCAMPUS_REFERENCE, SHARED_DATASETS, require

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser) -> None:
    group = parser.getgroup("autounet")
    group.addoption("--skip-shared", action="store_true",
                    help="skip the tests that need ../shared (real datasets, reference plans) instead of failing them")
    group.addoption("--skip-browser", action="store_true",
                    help="skip the report rendering test when no Chromium is installed instead of failing it")


def pytest_configure(config) -> None:
    shared_data.SKIP_SHARED = bool(config.getoption("skip_shared", False))
    shared_data.SKIP_BROWSER = bool(config.getoption("skip_browser", False))


def pytest_terminal_summary(terminalreporter) -> None:
    """Say loudly which tests were skipped on purpose: a green run without them is not a complete run."""
    kinds = {shared_data.SKIP_SHARED_WORDS: "need ../shared", shared_data.SKIP_BROWSER_WORDS: "need headless Chromium"}
    for words, need in kinds.items():
        ids = [report.nodeid for report in terminalreporter.stats.get("skipped", [])
               if words in str(getattr(report, "longrepr", ""))]
        if ids:
            terminalreporter.write_sep("!", f"NOT RUN: {len(ids)} test(s) that {need} were {words}", red=True, bold=True)
            for test_id in ids[:10]:
                terminalreporter.write_line(f"  {test_id}")
            if len(ids) > 10:
                terminalreporter.write_line(f"  ... and {len(ids) - 10} more")


def _real_dataset(name: str) -> Path:
    return require(SHARED_DATASETS / name, f"real dataset {name}")


@pytest.fixture(scope="session")
def hippocampus_reference() -> Path:
    """nnU-Net's reference plans and fingerprint of Hippocampus (../shared/reference/nnunet_plans), read only."""
    return require(HIPPOCAMPUS_REFERENCE, "nnU-Net reference plans of Hippocampus")


@pytest.fixture(scope="session")
def hippocampus_dir() -> Path:
    """MSD Task04 Hippocampus (208 training cases), read only."""
    return _real_dataset("Task04_Hippocampus")


@pytest.fixture(scope="session")
def drive_dir() -> Path:
    """DRIVE retinal vessels, original tree, read only."""
    return _real_dataset("DRIVE")


@pytest.fixture(scope="session")
def isbi_dir() -> Path:
    """ISBI 2012 EM slices, read only."""
    return _real_dataset("ISBI2012_EM")


@pytest.fixture(scope="session")
def demo_3d(tmp_path_factory) -> Path:
    """Eight isotropic single-channel 3D cases with two labels (read only: copy before changing)."""
    return make_demo_dataset(tmp_path_factory.mktemp("demo_3d"), DemoSpec(kind="3d", num_cases=8, seed=1))


@pytest.fixture(scope="session")
def demo_aniso(tmp_path_factory) -> Path:
    """Six strongly anisotropic two-channel 3D cases (4D NIfTI, MSD style)."""
    return make_demo_dataset(
        tmp_path_factory.mktemp("demo_aniso"), DemoSpec(kind="3d_aniso", num_cases=6, num_channels=2, seed=2)
    )


@pytest.fixture(scope="session")
def demo_2d(tmp_path_factory) -> Path:
    """Six 2D PNG cases with three labels."""
    return make_demo_dataset(tmp_path_factory.mktemp("demo_2d"), DemoSpec(kind="2d", num_cases=6, num_labels=3, seed=3))


_CLI = "import sys; from autounet.cli import main; sys.exit(main(sys.argv[1:]))"


def _run_cli(*arguments) -> subprocess.CompletedProcess:
    """The real ``autounet`` command in a new process; stdout and stderr go to pipes (not a terminal), as in a log."""
    return subprocess.run([sys.executable, "-c", _CLI, *map(str, arguments)], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def run_cli():
    """``run_cli("check", folder, ...) -> CompletedProcess`` runs ``autounet`` in a subprocess."""
    return _run_cli


@pytest.fixture(scope="session")
def fold_all_run(tmp_path_factory):
    """``autounet run -c 3d_fullres -f all`` (2 epochs of 2 iterations) on five tiny cases, output to pipes:
    (dataset folder, results folder, CompletedProcess). Shared by the fold "all" and the progress-output tests."""
    root = tmp_path_factory.mktemp("fold_all")
    data = make_demo_dataset(root / "Demo", DemoSpec(num_cases=5, shape=(16, 20, 18), seed=11), name="Demo")
    completed = _run_cli("run", data, "-o", root / "results", "-c", "3d_fullres", "-f", "all",
                         "--epochs", "2", "--iterations-per-epoch", "2", "--workers", "1")
    return data, root / "results" / "Demo", completed
