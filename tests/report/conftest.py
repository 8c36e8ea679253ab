"""Results folders for the report tests: a tiny trained 3D run, and a 2D run with hand-made validation predictions."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from autounet.dataset import load_dataset
from autounet.dataset.demo import DemoSpec, make_demo_dataset
from autounet.jsonio import write_json

#: A network of a few thousand weights: one training step takes milliseconds on a CPU.
TINY_FEATURES = (4, 8, 16, 16, 16, 16)
#: What ``autounet run`` writes; the report shows it as the stage timings table.
RUN_LOG = {
    "sessions": 2,
    "stages": {
        "check": {"seconds": 1.5, "peak_rss_mb": 210.0, "errors": 0, "warnings": 1},
        "train_3d_fullres_fold_0": {"seconds": 3725.4, "peak_rss_mb": 1843.0},
    },
}


def _plan(dataset, results: Path, configurations: tuple[str, ...], patch_size: tuple[int, ...]):
    from autounet.fingerprint import compute_fingerprint
    from autounet.planners import PlanOverrides, plan_experiment

    results.mkdir(parents=True, exist_ok=True)
    shutil.copy2(dataset.root / "dataset.json", results / "dataset.json")
    fingerprint = compute_fingerprint(dataset, output=results / "fingerprint.json", workers=1, progress=False)
    overrides = PlanOverrides(patch_size=patch_size, batch_size=2, configurations=configurations)
    plans = plan_experiment(fingerprint, overrides=overrides)
    tiny = {
        name: conf.replace(features_per_stage=TINY_FEATURES[: conf.n_stages]) for name, conf in plans.configurations.items()
    }
    plans = replace(plans, configurations=tiny)
    plans.save(results / "plans.json")
    return plans


@pytest.fixture(scope="module")
def trained_3d(tmp_path_factory) -> Path:
    """Demo 3D data (15 cases, so fold 0 validates 3), one epoch of 2 iterations, final validation, find-best.

    Images of about 20 x 24 x 24 voxels fit one 24 x 28 x 28 patch, so the final validation is one tile per case.
    """
    from autounet.inference.find_best import find_best
    from autounet.preprocessing import preprocess_dataset
    from autounet.pipeline import train_fold
    from autounet.trainers import TrainingConfig

    folder = tmp_path_factory.mktemp("report_3d")
    spec = DemoSpec(kind="3d", num_cases=15, shape=(20, 24, 24), seed=7)
    dataset = load_dataset(make_demo_dataset(folder / "data", spec, name="ReportDemo3D"))
    results = folder / "results"
    plans = _plan(dataset, results, ("3d_fullres",), (24, 28, 28))
    preprocess_dataset(dataset, plans, ["3d_fullres"], results / "preprocessed", workers=1, progress=False)
    config = TrainingConfig(
        epochs=1, iterations_per_epoch=2, validation_iterations=1, device="cpu", precision="float32", num_workers=0,
        num_threads=1, progress=False, seed=0,
    )
    train_fold(results, "3d_fullres", 0, config)
    find_best(results, ensembles=False, workers=1, progress=False)
    write_json(results / "run_log.json", RUN_LOG)
    return results


@pytest.fixture(scope="module")
def predicted_2d(tmp_path_factory) -> Path:
    """Demo 2D RGB data, planned but not trained; fold 0's validation holds predictions of known quality.

    Case 0 is predicted exactly (Dice 1), the others with the labels shifted by a growing number of pixels.
    """
    from autounet.evaluation import evaluate_folders
    from autounet.io import read_image, write_image

    folder = tmp_path_factory.mktemp("report_2d")
    dataset = load_dataset(
        make_demo_dataset(folder / "data", DemoSpec(kind="2d", num_cases=4, num_channels=3, num_labels=3, seed=3),
                          name="ReportDemo2D")
    )
    results = folder / "results"
    _plan(dataset, results, ("2d",), (32, 32))
    validation = results / "2d" / "fold_0" / "validation"
    for shift, case in enumerate(dataset.training):
        label = read_image(case.label_file)
        predicted = np.roll(label.data, 3 * shift, axis=-1)
        write_image(validation / case.label_file.name, predicted, label.geometry)
    evaluate_folders(dataset.root / "labelsTr", validation, output=validation, workers=1, progress=False)
    return results
