"""Fixtures for trainer tests: a tiny results folder (plans with a 4-16 feature network + preprocessed store)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from autounet.dataset.demo import DemoSpec, make_demo_dataset

from .helpers import TINY_PATCH_3D, make_results


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Six isotropic 3D demo cases with two labels (read only)."""
    return make_demo_dataset(tmp_path_factory.mktemp("tiny_dataset"), DemoSpec(kind="3d", num_cases=6, seed=4))


@pytest.fixture(scope="session")
def tiny_results_template(tiny_dataset, tmp_path_factory) -> Path:
    """Plans + preprocessed store for ``tiny_dataset``; copy it before training (see ``tiny_results``)."""
    return make_results(tiny_dataset, tmp_path_factory.mktemp("tiny_results"), "3d_fullres", TINY_PATCH_3D)


@pytest.fixture
def tiny_results(tiny_results_template, tmp_path) -> Path:
    """A private copy of the tiny results folder (training writes into it)."""
    return Path(shutil.copytree(tiny_results_template, tmp_path / "results"))


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: tiny networks gain nothing from more, and on a shared machine two threads that wait
    for each other can be ten times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
