"""A results folder belongs to one dataset: nnU-Net v2 datasets without a name get their own folder, and a folder
made for another dataset is refused before anything in it is touched; the same dataset (also with added cases)
resumes."""

from __future__ import annotations

import json
import shutil

import pytest

from autounet.cli import main
from autounet.dataset import load_dataset
from autounet.dataset.demo import DemoSpec, make_demo_dataset
from autounet.errors import DatasetError
from autounet.fingerprint import compute_fingerprint
from autounet.dataset.identity import check_results_folder
from autounet.pipeline.run import results_folder

LABELS = {"background": 0, "organ": 1, "lesion": 2}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("identity") / "Demo", DemoSpec(num_cases=6, shape=(10, 12, 11), seed=5))


def as_nnunet_v2(demo, folder, cases=None, labels=None, channel="MRI", rename=None):
    """The demo cases in the nnU-Net v2 layout (CASE_0000 channel files), with a dataset.json without "name"."""
    cases = sorted(p.name[: -len(".nii.gz")] for p in (demo / "labelsTr").glob("*.nii.gz")) if cases is None else cases
    for case in cases:
        target = (rename or {}).get(case, case)
        (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
        (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
        shutil.copy(demo / "imagesTr" / f"{case}.nii.gz", folder / "imagesTr" / f"{target}_0000.nii.gz")
        shutil.copy(demo / "labelsTr" / f"{case}.nii.gz", folder / "labelsTr" / f"{target}.nii.gz")
    description = {"channel_names": {"0": channel}, "labels": labels or LABELS, "numTraining": len(cases), "file_ending": ".nii.gz"}
    (folder / "dataset.json").write_text(json.dumps(description))
    return folder


def results_made_for(dataset_dir, results_root):
    """What a run leaves before training: the stored dataset.json and the fingerprint with the case list."""
    results = results_folder(dataset_dir, results_root)
    results.mkdir(parents=True)
    shutil.copy(dataset_dir / "dataset.json", results / "dataset.json")
    compute_fingerprint(load_dataset(dataset_dir), output=results / "fingerprint.json", workers=1, progress=False)
    return results


def snapshot(folder):
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.rglob("*"))}


def test_unnamed_v2_datasets_get_their_own_results_folders(demo, tmp_path):
    first = as_nnunet_v2(demo, tmp_path / "Dataset900_BraTSsample")
    second = as_nnunet_v2(demo, tmp_path / "Dataset901_Other")
    assert results_folder(first, tmp_path / "results") == tmp_path / "results" / "BraTSsample"
    assert results_folder(second, tmp_path / "results") == tmp_path / "results" / "Other"


def test_the_same_dataset_resumes_also_with_added_or_a_few_removed_cases(demo, tmp_path):
    source = as_nnunet_v2(demo, tmp_path / "a" / "Dataset900_BraTSsample", cases=["demo_000", "demo_001", "demo_002", "demo_003"])
    results = results_made_for(source, tmp_path / "results")
    check_results_folder(results, load_dataset(source))  # a re-run
    grown = as_nnunet_v2(demo, tmp_path / "b" / "Dataset900_BraTSsample")  # two more cases
    check_results_folder(results, load_dataset(grown))
    shrunk = as_nnunet_v2(demo, tmp_path / "c" / "Dataset900_BraTSsample", cases=["demo_000", "demo_001", "demo_003"])
    check_results_folder(results, load_dataset(shrunk))
    check_results_folder(tmp_path / "results" / "new", load_dataset(source))  # nothing stored yet


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": {"background": 0, "edema": 1, "tumor": 2, "enhancing": 3}}, "labels"),
        ({"channel": "CT"}, "channels"),
        ({"rename": {f"demo_00{i}": f"brats_{i}" for i in range(6)}}, "training cases"),
    ],
)
def test_a_results_folder_of_another_dataset_is_refused_and_left_untouched(demo, tmp_path, capsys, change, message):
    source = as_nnunet_v2(demo, tmp_path / "site_a" / "Dataset900_BraTSsample")
    results = results_made_for(source, tmp_path / "results")
    other = as_nnunet_v2(demo, tmp_path / "site_b" / "Dataset900_BraTSsample", **change)
    with pytest.raises(DatasetError, match=message):
        check_results_folder(results, load_dataset(other))
    before = snapshot(results)
    assert main(["run", str(other), "-o", str(tmp_path / "results"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(results) in err and message in err and "-o" in err
    assert snapshot(results) == before


def test_a_different_name_is_another_dataset_even_when_the_folder_names_agree(demo, tmp_path):
    source = as_nnunet_v2(demo, tmp_path / "a" / "Liver")
    raw = json.loads((source / "dataset.json").read_text())
    (source / "dataset.json").write_text(json.dumps({**raw, "name": "Liver scans"}))
    results = results_made_for(source, tmp_path / "results")
    other = as_nnunet_v2(demo, tmp_path / "b" / "Liver")
    (other / "dataset.json").write_text(json.dumps({**raw, "name": "Liver_scans"}))  # same folder name once made safe
    assert results_folder(other, tmp_path / "results") == results
    with pytest.raises(DatasetError, match="name"):
        check_results_folder(results, load_dataset(other))


def test_an_unreadable_stored_dataset_json_is_explained(demo, tmp_path):
    source = as_nnunet_v2(demo, tmp_path / "Dataset900_BraTSsample")
    results = results_made_for(source, tmp_path / "results")
    (results / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match="dataset.json"):
        check_results_folder(results, load_dataset(source))
