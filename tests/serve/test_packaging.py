"""Model packages: what goes in, that prediction from a package equals prediction from the folder, and every way a
package can be unsafe or tampered with is refused with a message before anything is used."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from autounet.cli import main
from autounet.inference import Predictor
from autounet.io import read_image
from autounet.jsonio import write_json
from autounet.packaging import PackageError, PackageLimits, export_model, open_package, opened_model

from inference.conftest import make_results, tiny_configuration, tiny_plans, write_case  # tests/ is on sys.path


@pytest.fixture
def model_folder(tmp_path) -> Path:
    """Random-weight 3d_fullres folds 0 and 1, plus the clutter a real results folder holds."""
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres")})
    results = make_results(tmp_path / "Dataset999_Tiny", plans, {"3d_fullres": (0, 1)})
    (results / "preprocessed" / "tiny").mkdir(parents=True)
    (results / "preprocessed" / "tiny" / "case_000.npy").write_bytes(b"\0" * 64)
    (results / "3d_fullres" / "fold_0" / "validation").mkdir()
    (results / "3d_fullres" / "fold_0" / "validation" / "case_000.nii.gz").write_bytes(b"x")
    write_json(results / "splits.json", [{"train": ["patient_name_1"], "val": ["patient_name_2"]}])
    write_json(results / "dataset.json", {"name": "Tiny", "labels": plans.labels, "channel_names": {"0": "MRI0"},
                                          "training": [{"image": "./imagesTr/patient_name_1.nii.gz"}], "numTraining": 1})
    return results


@pytest.fixture
def package(model_folder, tmp_path) -> Path:
    return export_model(model_folder, tmp_path / "tiny.zip", description="d", license="CC0-1.0")


def test_package_holds_what_prediction_needs_and_no_training_data(package):
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        dataset = json.loads(archive.read("dataset.json"))
    assert {"plans.json", "dataset.json", "inference.json", "manifest.json", "3d_fullres/fold_0/checkpoint_final.pt",
            "3d_fullres/fold_1/checkpoint_final.pt"} == names
    assert "training" not in dataset and dataset["name"] == "Tiny"  # no case names leave the hospital
    assert manifest["format"] == "autounet-model-manifest" and manifest["format_version"] == 1
    assert manifest["kind"] == "autounet-model-package" and manifest["autounet_version"]
    assert manifest["labels"] == {"background": 0, "organ": 1, "lesion": 2} and manifest["channels"] == ["MRI0"]
    assert manifest["configurations"] == ["3d_fullres"] and manifest["folds"] == [0, 1]
    assert manifest["license"] == "CC0-1.0" and manifest["dimensionality"] == "3D"
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert all(len(entry["sha256"]) == 64 for entry in manifest["files"].values())
    assert not any(name.endswith((".pkl", ".pickle")) for name in names)


def test_prediction_from_the_package_equals_the_folder(model_folder, package, tmp_path):
    write_case(tmp_path / "in" / "case_001.nii.gz")
    for name, model in (("folder", model_folder), ("package", package)):
        assert main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / name), "-m", str(model),
                     "--device", "cpu", "--no-mirroring", "--workers", "0", "--no-progress"]) == 0
    folder, packaged = (read_image(tmp_path / n / "case_001.nii.gz").data for n in ("folder", "package"))
    assert np.array_equal(folder, packaged)


def test_an_opened_package_is_private_and_removed_afterwards(package, tmp_path):
    with opened_model(package, tmp_path / "extract") as model:
        assert stat.S_IMODE(model.folder.stat().st_mode) == 0o700
        assert model.options == {"configurations": ["3d_fullres"], "folds": [0, 1], "checkpoint": "final"}
        predictor = Predictor.from_model_folder(model.folder, device="cpu", **model.predictor_options(folds=[1]))
        assert [f.fold for f in predictor.models["3d_fullres"]] == [1]
    assert not model.folder.exists()


def test_export_refuses_to_overwrite_and_to_write_other_than_zip(model_folder, package, tmp_path, capsys):
    assert main(["export-model", str(model_folder), "-o", str(package)]) == 2
    assert "exists" in capsys.readouterr().err
    with pytest.raises(PackageError, match=r"\.zip"):
        export_model(model_folder, tmp_path / "model.tar")


def _rewrite(package: Path, target: Path, change) -> Path:
    """Copy ``package`` entry by entry into ``target``; ``change(name, data)`` returns a list of (ZipInfo/name, data)."""
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            for name, data in change(info.filename, source.read(info)):
                out.writestr(name, data)
    return target


def _symlink_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _manifest_with(data: bytes, **changes) -> bytes:
    manifest = json.loads(data)
    manifest.update(changes)
    return json.dumps(manifest).encode()


TAMPERING = [
    ("a changed checkpoint", lambda n, d: [(n, d[:-1] + bytes([d[-1] ^ 1]) if n.endswith("fold_1/checkpoint_final.pt") else d)],
     "does not match its sha256"),
    ("an unknown format version", lambda n, d: [(n, _manifest_with(d, format_version=99) if n == "manifest.json" else d)],
     "format_version 99 is unknown"),
    ("another format", lambda n, d: [(n, _manifest_with(d, format="nnunet") if n == "manifest.json" else d)],
     "not an autounet model manifest"),
    ("an absolute path", lambda n, d: [(n, d)] + ([("/etc/cron.d/evil", b"x")] if n == "plans.json" else []),
     "is an absolute path"),
    ("a '..' entry", lambda n, d: [(n, d)] + ([("3d_fullres/../../evil.py", b"x")] if n == "plans.json" else []),
     "'..'"),
    ("a backslash path", lambda n, d: [(n, d)] + ([("..\\evil.py", b"x")] if n == "plans.json" else []), "backslash"),
    ("a symbolic link", lambda n, d: [(n, d)] + ([(_symlink_entry("link"), b"/etc/passwd")] if n == "plans.json" else []),
     "symbolic link"),
    ("a file the manifest does not list", lambda n, d: [(n, d)] + ([("extra.json", b"{}")] if n == "plans.json" else []),
     "does not list"),
    ("a listed file missing", lambda n, d: [] if n == "inference.json" else [(n, d)], "not in the zip"),
    ("no manifest", lambda n, d: [] if n == "manifest.json" else [(n, d)], "no manifest.json"),
    ("a manifest that is not JSON", lambda n, d: [(n, b"{oops" if n == "manifest.json" else d)], "not readable JSON"),
]


@pytest.mark.parametrize("what, change, words", TAMPERING, ids=[t[0] for t in TAMPERING])
def test_an_unsafe_or_tampered_package_is_refused(package, tmp_path, what, change, words):
    bad = _rewrite(package, tmp_path / "bad.zip", change)
    with pytest.raises(PackageError, match="bad.zip") as raised:
        open_package(bad, tmp_path / "extract")
    assert words in str(raised.value), str(raised.value)
    assert not (tmp_path / "extract").exists() or not any((tmp_path / "extract").iterdir())  # nothing left behind
    assert not (tmp_path / "evil.py").exists() and not Path("/etc/cron.d/evil").exists()


def test_zip_bombs_are_refused_before_extraction(package, tmp_path):
    bomb = _rewrite(package, tmp_path / "bomb.zip",
                    lambda n, d: [(n, d)] + ([("zeros.bin", b"\0" * (20 * 1024**2))] if n == "plans.json" else []))
    with pytest.raises(PackageError, match="expands .*-fold .*zip bomb"):
        open_package(bomb, tmp_path / "extract")
    with pytest.raises(PackageError, match="uncompressed .*zip bomb"):
        open_package(package, tmp_path / "extract", PackageLimits(max_total_bytes=10_000))
    assert not list((tmp_path / "extract").glob("*"))


def test_not_a_zip_is_refused(tmp_path, capsys):
    fake = tmp_path / "model.zip"
    fake.write_bytes(b"PK\x03\x04 not really")
    (tmp_path / "in").mkdir()
    assert main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(fake)]) == 2
    assert "not a readable zip file" in capsys.readouterr().err
