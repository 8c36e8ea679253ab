"""Determinism (issue 9): on the CPU the same data and seed give bitwise identical weights, with or without data
loader worker processes; another seed gives other weights. The stages before training (fingerprint, plans, splits,
preprocessed arrays) are identical for a copy of the same real cases, whatever the worker count. GPU kernels may be
nondeterministic: see docs/reliability.md."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from autounet.dataset import load_dataset
from autounet.fingerprint import compute_fingerprint
from autounet.planners import plan_experiment
from autounet.preprocessing import open_preprocessed, preprocess_dataset
from autounet.pipeline import train_fold
from autounet.trainers.splits import load_or_create_splits

from dataset import corrupt  # tests/dataset/corrupt.py (tests/ is on sys.path)
from .helpers import final_weights, quick_config


def _train(template, folder, **changes) -> dict:
    results = shutil.copytree(template, folder)
    train_fold(results, "3d_fullres", 0, quick_config(epochs=2, iterations_per_epoch=3, **changes))
    return final_weights(results / "3d_fullres" / "fold_0")


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def test_same_seed_gives_bitwise_identical_weights_and_another_seed_does_not(tiny_results_template, tmp_path):
    first = _train(tiny_results_template, tmp_path / "first")
    second = _train(tiny_results_template, tmp_path / "second")
    assert _same(first, second)
    other = _train(tiny_results_template, tmp_path / "other", seed=1)
    assert not _same(first, other)


def test_data_loader_workers_do_not_change_the_weights(tiny_results_template, tmp_path):
    """Every batch is a function of (seed, rank, iteration) only, so worker processes make the same batches."""
    in_process = _train(tiny_results_template, tmp_path / "in_process")
    with_workers = _train(tiny_results_template, tmp_path / "workers", num_workers=2)
    assert _same(in_process, with_workers)


@pytest.mark.integration
def test_fingerprint_plans_splits_and_arrays_are_identical_for_a_copy(tmp_path, hippocampus_dir):
    outputs = []
    for name, workers in (("one", 1), ("two", 2)):
        dataset = load_dataset(corrupt.copy_msd_cases(hippocampus_dir, tmp_path / name / "data"))
        fingerprint = compute_fingerprint(dataset, workers=workers, progress=False)
        plans = plan_experiment(fingerprint)
        plans = plans.__class__(**{**plans.__dict__, "configurations": {"3d_fullres": plans.configuration("3d_fullres")}})
        folder = preprocess_dataset(dataset, plans, ["3d_fullres"], tmp_path / name / "pre", workers=workers,
                                    progress=False)["3d_fullres"]
        store = open_preprocessed(folder)
        arrays = {case: [np.asarray(a) for a in store.load(case)[:2]] for case in store.case_ids}
        splits = load_or_create_splits(tmp_path / name, dataset.case_ids)
        # The signatures hash file paths and times (they tell an unchanged dataset from a copy); the rest must agree.
        fingerprint_data = {k: v for k, v in fingerprint.to_dict().items() if k != "signature"}
        plans_data = {k: v for k, v in plans.to_dict().items() if k != "fingerprint_signature"}
        outputs.append((fingerprint_data, plans_data, splits, arrays))
    (fp_a, plans_a, splits_a, arrays_a), (fp_b, plans_b, splits_b, arrays_b) = outputs
    assert json.dumps(fp_a, sort_keys=True) == json.dumps(fp_b, sort_keys=True)
    assert plans_a == plans_b
    assert splits_a == splits_b
    assert arrays_a.keys() == arrays_b.keys()
    for case in arrays_a:
        for a, b in zip(arrays_a[case], arrays_b[case]):
            assert a.dtype == b.dtype and np.array_equal(a, b), case
