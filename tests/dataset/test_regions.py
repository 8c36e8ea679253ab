"""A dataset.json with region labels is refused by check, plan and train with a message, not trained as plain labels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from autounet.cli import main
from autounet.dataset.demo import DemoSpec, make_demo_dataset
from autounet.errors import DatasetError

REGION_WORDS = "declares region labels (whole = [1, 2]) and regions_class_order [1, 2]"


def _nnunet_v2(msd: Path, target: Path, regions: bool) -> Path:
    """The demo dataset in the nnU-Net v2 layout, its labels plain or with a region over both values."""
    for folder in ("imagesTr", "labelsTr"):
        (target / folder).mkdir(parents=True)
    cases = sorted(p.name[: -len(".nii.gz")] for p in (msd / "labelsTr").glob("*.nii.gz"))
    for case in cases:
        shutil.copy(msd / "imagesTr" / f"{case}.nii.gz", target / "imagesTr" / f"{case}_0000.nii.gz")
        shutil.copy(msd / "labelsTr" / f"{case}.nii.gz", target / "labelsTr" / f"{case}.nii.gz")
    labels = {"background": 0, "organ": 1, "lesion": 2}
    description = {"channel_names": {"0": "MRI"}, "labels": labels, "file_ending": ".nii.gz",
                   "numTraining": len(cases), "name": "Regions"}
    if regions:
        description["labels"] = {"background": 0, "whole": [1, 2], "lesion": 2}
        description["regions_class_order"] = [1, 2]
    (target / "dataset.json").write_text(json.dumps(description))
    return target


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("regions")
    msd = make_demo_dataset(root / "msd", DemoSpec(num_cases=4, shape=(16, 20, 18), seed=5))
    return _nnunet_v2(msd, root / "plain", False), _nnunet_v2(msd, root / "regions", True)


def test_check_reports_region_labels_as_an_error(datasets, capsys):
    plain, regions = datasets
    assert main(["check", str(plain), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["check", str(regions), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert REGION_WORDS in out and "give every label one value" in out


@pytest.mark.parametrize("command", [
    ["plan", "{dataset}", "-o", "{tmp}/plans.json"],
    ["fingerprint", "{dataset}", "-o", "{tmp}/fingerprint.json", "--no-progress"],
    ["train", "{dataset}", "3d_fullres", "0", "--results", "{tmp}/results", "--epochs", "1",
     "--iterations-per-epoch", "1", "--device", "cpu", "--no-progress"],
    ["run", "{dataset}", "-o", "{tmp}/run", "-c", "3d_fullres", "-f", "0", "--no-progress"],
])
def test_plan_fingerprint_train_and_run_refuse_region_labels(datasets, tmp_path, capsys, command):
    _, regions = datasets
    argv = [part.format(dataset=regions, tmp=tmp_path) for part in command]
    assert main(argv) in (1, 2)
    captured = capsys.readouterr()
    assert REGION_WORDS in captured.out + captured.err
    assert not (tmp_path / "results" / "3d_fullres").exists() and not (tmp_path / "run" / "3d_fullres").exists()


def test_plan_from_a_fingerprint_refuses_a_region_dataset_json(datasets, tmp_path, capsys):
    plain, regions = datasets
    assert main(["fingerprint", str(plain), "-o", str(tmp_path / "fp.json"), "--no-progress"]) == 0
    argv = ["plan", "--fingerprint", str(tmp_path / "fp.json"), "--dataset-json", str(regions / "dataset.json"),
            "-o", str(tmp_path / "plans.json")]
    assert main(argv) == 2
    assert REGION_WORDS in capsys.readouterr().err
    assert not (tmp_path / "plans.json").exists()


def test_train_fold_refuses_a_results_folder_whose_dataset_json_declares_regions(datasets, tmp_path):
    from autounet.pipeline import train_fold
    from autounet.pipeline.prepare import PrepareOptions, prepare_results

    plain, regions = datasets
    results = tmp_path / "results"
    prepare_results(plain, results, PrepareOptions(configurations=("3d_fullres",), workers=1, progress=False))
    shutil.copy(regions / "dataset.json", results / "dataset.json")  # e.g. edited after planning
    with pytest.raises(DatasetError, match="declares region labels"):
        train_fold(results, "3d_fullres", 0)
