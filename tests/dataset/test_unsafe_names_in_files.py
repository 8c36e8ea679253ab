"""No file outside the folder it belongs to (issue 20, item 1): case ids from dataset.json (the nnU-Net v2 "dataset"
map names its cases), from a preprocessed store's manifest.json and splits.json, and the plans' data_identifier become
paths only through autounet.safe_names. `check` names each offending entry with the fix; every later stage refuses
before touching the disk, so nothing outside the output folder is written or deleted."""

from __future__ import annotations

import json
import shutil

import pytest

from autounet.cli import main
from autounet.dataset.demo import DemoSpec, make_demo_dataset
from autounet.fingerprint import compute_fingerprint
from autounet.dataset import load_dataset
from autounet.planners import plan_experiment

HOSTILE = ["../../victim", "/tmp/autounet_absolute_case"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("demo"), DemoSpec(num_cases=3, seed=5))


@pytest.fixture(scope="module")
def plans_file(demo, tmp_path_factory):
    """Plans of the clean demo dataset (3d_fullres only)."""
    plans = plan_experiment(compute_fingerprint(load_dataset(demo), workers=1, progress=False))
    path = tmp_path_factory.mktemp("plans") / "plans.json"
    plans.save(path)
    return path


def _nnunet_v2_copy(demo, folder, case_ids, truncate=None):
    """An nnU-Net v2 dataset whose "dataset" map names the demo's cases ``case_ids``."""
    shutil.copytree(demo / "imagesTr", folder / "scans")  # explicit file lists: any folder names
    shutil.copytree(demo / "labelsTr", folder / "masks")
    mapping = {}
    for index, case_id in enumerate(case_ids):
        name = f"demo_{index:03d}.nii.gz"
        mapping[case_id] = {"images": [f"scans/{name}"], "label": f"masks/{name}"}
    if truncate is not None:
        image = folder / "scans" / f"demo_{truncate:03d}.nii.gz"
        image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    description = {"name": "Hostile", "channel_names": {"0": "MRI"}, "labels": {"background": 0, "organ": 1, "lesion": 2},
                   "file_ending": ".nii.gz", "numTraining": len(case_ids), "dataset": mapping}
    (folder / "dataset.json").write_text(json.dumps(description))
    return folder


def _sentinels(folder):
    """Files where "../../victim" would land for an output folder ``folder/out/<identifier>``."""
    files = [folder / f"victim{suffix}" for suffix in (".json", ".npy", "_seg.npy", "_fg.npz")]
    for path in files:
        path.write_text("precious")
    return files


def test_check_names_every_unsafe_case_id_with_the_fix(demo, tmp_path, capsys):
    dataset = _nnunet_v2_copy(demo, tmp_path / "hostile", ["good_case", *HOSTILE])
    code = main(["check", str(dataset), "--no-progress", "--json", str(tmp_path / "report.json")])
    assert code == 1
    problems = json.loads((tmp_path / "report.json").read_text())["problems"]
    unsafe = {p["case_id"]: p for p in problems if p["kind"] == "unsafe_case_id"}
    assert set(unsafe) == set(HOSTILE)
    assert "contains a path separator ('/')" in unsafe["../../victim"]["message"]
    assert unsafe["../../victim"]["files"] == [str(dataset / "dataset.json")]
    assert "rename the case" in unsafe["../../victim"]["fix"]
    assert not any(p["case_id"] == "good_case" and p["kind"] == "unsafe_case_id" for p in problems)


@pytest.mark.parametrize("command", ["preprocess", "fingerprint", "train"])
def test_later_stages_refuse_before_touching_the_disk(demo, plans_file, tmp_path, capsys, command):
    dataset = _nnunet_v2_copy(demo, tmp_path / "hostile", ["good_case", *HOSTILE], truncate=1)
    sentinels = _sentinels(tmp_path)
    arguments = {
        "preprocess": ["preprocess", str(dataset), "--plans", str(plans_file), "-o", str(tmp_path / "out")],
        "fingerprint": ["fingerprint", str(dataset), "-o", str(tmp_path / "out" / "fingerprint.json")],
        "train": ["train", str(dataset), "3d_fullres", "0", "--results", str(tmp_path / "out"), "--epochs", "1"],
    }[command]
    code = main([*arguments, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{dataset / 'dataset.json'}: case id(s) that cannot be used as file names: '../../victim'" in err, err
    assert "'/tmp/autounet_absolute_case'" in err and "Rename the cases" in err
    assert all(path.read_text() == "precious" for path in sentinels)  # nothing outside was written or deleted
    assert not list((tmp_path / "out").rglob("*.npy")) if (tmp_path / "out").exists() else True


def test_a_hostile_store_manifest_is_refused(demo, plans_file, tmp_path, capsys):
    assert main(["preprocess", str(demo), "--plans", str(plans_file), "-o", str(tmp_path / "out"), "-c", "3d_fullres",
                 "--no-progress"]) == 0
    store = next(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["cases"]["../../victim"] = manifest["cases"].pop("demo_001")
    (store / "manifest.json").write_text(json.dumps(manifest))
    sentinels = _sentinels(tmp_path)
    code = main(["preprocess", str(demo), "--plans", str(plans_file), "-o", str(tmp_path / "out"), "-c", "3d_fullres",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and f"{store / 'manifest.json'} names case(s) that cannot be file names ('../../victim'" in err, err
    assert all(path.read_text() == "precious" for path in sentinels)
    from autounet.preprocessing import open_preprocessed
    from autounet.safe_names import UnsafeNameError

    with pytest.raises(UnsafeNameError, match="manifest.json names case"):
        open_preprocessed(store)


def test_an_unsafe_data_identifier_or_split_is_refused(demo, plans_file, tmp_path, capsys):
    plans = json.loads(plans_file.read_text())
    plans["configurations"]["3d_fullres"]["data_identifier"] = "../../victim"
    (tmp_path / "plans.json").write_text(json.dumps(plans))
    code = main(["preprocess", str(demo), "--plans", str(tmp_path / "plans.json"), "-o", str(tmp_path / "out" / "x"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "data_identifier '../../victim': contains a path separator" in err, err
    assert not (tmp_path / "victim").exists() and not (tmp_path / "out").exists()

    from autounet.trainers.splits import SplitsError, load_or_create_splits

    (tmp_path / "splits.json").write_text(json.dumps([{"train": ["a", "../b"], "val": ["c"]}]))
    with pytest.raises(SplitsError, match=r"names case\(s\) that cannot be file names \('../b'\)"):
        load_or_create_splits(tmp_path, ["a", "../b", "c"])
