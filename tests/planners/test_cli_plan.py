"""``autounet plan``: from a dataset folder, from a fingerprint file, overrides, --explain and errors."""

from __future__ import annotations

import json

import pytest

from autounet.cli import main
from autounet.planners import load_plans

from shared_data import HIPPOCAMPUS_REFERENCE as REFERENCE

# Every test marked so needs nnU-Net's reference plans: missing, it fails (pytest --skip-shared skips it).
needs_reference = pytest.mark.usefixtures("hippocampus_reference")


@needs_reference
def test_plan_from_reference_file(tmp_path, capsys):
    out = tmp_path / "plans.json"
    assert main(["plan", "--fingerprint", str(REFERENCE), "-o", str(out)]) == 0
    plans = load_plans(out)
    assert plans.configurations["3d_fullres"].patch_size == (40, 56, 40)
    assert plans.configurations["3d_fullres"].batch_size == 9
    printed = capsys.readouterr().out
    assert "3d_fullres: spacing [1.0, 1.0, 1.0] patch [40, 56, 40] batch 9 stages 4" in printed
    assert f"wrote {out}" in printed


@needs_reference
def test_plan_from_nnunet_fingerprint_and_msd_dataset_json(tmp_path):
    data = json.loads(REFERENCE.read_text())
    (tmp_path / "dataset_fingerprint.json").write_text(json.dumps(data["fingerprint"]))
    msd = {"name": "Hippocampus", "modality": {"0": "MRI"}, "labels": {"0": "background", "1": "Anterior", "2": "Posterior"},
           "numTraining": 260, "training": [], "use_mask_for_norm": True}
    (tmp_path / "dataset.json").write_text(json.dumps(msd))
    out = tmp_path / "plans.json"
    assert main(["plan", "--fingerprint", str(tmp_path / "dataset_fingerprint.json"),
                 "--dataset-json", str(tmp_path / "dataset.json"), "-o", str(out)]) == 0
    conf = load_plans(out).configurations["3d_fullres"]
    assert conf.patch_size == (40, 56, 40) and conf.normalization[0].use_mask  # dataset.json's use_mask_for_norm



@needs_reference
def test_plan_from_nnunet_fingerprint_and_nnunet_v2_dataset_json(tmp_path):
    """A user moving over from nnU-Net v2 keeps both files: its fingerprint and its dataset.json."""
    data = json.loads(REFERENCE.read_text())
    (tmp_path / "dataset_fingerprint.json").write_text(json.dumps(data["fingerprint"]))
    v2 = {"channel_names": {"0": "T1"}, "labels": {"background": 0, "Anterior": 1, "Posterior": 2},
          "numTraining": 260, "file_ending": ".nii.gz"}
    (tmp_path / "dataset.json").write_text(json.dumps(v2))
    out = tmp_path / "plans.json"
    assert main(["plan", "--fingerprint", str(tmp_path / "dataset_fingerprint.json"),
                 "--dataset-json", str(tmp_path / "dataset.json"), "-o", str(out)]) == 0
    plans = load_plans(out)
    assert plans.channel_names == ("T1",) and plans.labels == {"background": 0, "Anterior": 1, "Posterior": 2}
    conf = plans.configurations["3d_fullres"]
    assert (conf.patch_size, conf.batch_size) == ((40, 56, 40), 9)
    assert conf.normalization[0].scheme == "zscore"
    assert plans.class_prior is None  # nnU-Net's fingerprint counts no label voxels: zero output bias, as nnU-Net

@needs_reference
def test_overrides_and_explain(tmp_path, capsys):
    out = tmp_path / "plans.json"
    argv = ["plan", "--fingerprint", str(REFERENCE), "-o", str(out), "--patch-size", "30", "60", "60",
            "--batch-size", "3", "--gpu-memory", "11", "--configurations", "3d_fullres", "--network", "unet", "--explain"]
    assert main(argv) == 0
    plans = load_plans(out)
    assert list(plans.configurations) == ["3d_fullres"] and plans.memory_budget_gb == 11.0
    conf = plans.configurations["3d_fullres"]
    assert conf.patch_size == (32, 64, 64) and conf.batch_size == 3
    printed = capsys.readouterr().out
    assert "batch size 3: set by the user (--batch-size)" in printed and "rounded up to [32, 64, 64]" in printed
    assert plans.explanations["3d_fullres"]


@needs_reference
def test_spacing_override(tmp_path):
    out = tmp_path / "plans.json"
    assert main(["plan", "--fingerprint", str(REFERENCE), "-o", str(out), "--spacing", "2", "1", "1"]) == 0
    assert load_plans(out).configurations["3d_fullres"].spacing == (2.0, 1.0, 1.0)


@needs_reference
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--patch-size", "2", "64", "64"], "smaller than the minimum feature-map size"),
        (["--batch-size", "0"], "batch size must be at least 1"),
        (["--configurations", "3d"], "unknown configuration '3d'"),
        (["--gpu-memory", "0"], "GPU memory must be positive"),
    ],
)
def test_impossible_overrides_exit_2_with_a_message(tmp_path, capsys, extra, message):
    assert main(["plan", "--fingerprint", str(REFERENCE), "-o", str(tmp_path / "p.json"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_dataset_or_fingerprint_but_not_both_or_neither(tmp_path, capsys):
    assert main(["plan", "-o", str(tmp_path / "p.json")]) == 2
    assert "give either a dataset folder or --fingerprint" in capsys.readouterr().err
    assert main(["plan", str(tmp_path), "--fingerprint", str(tmp_path / "fp.json")]) == 2


def test_nnunet_fingerprint_without_dataset_json(tmp_path, capsys):
    (tmp_path / "fp.json").write_text(json.dumps({"spacings": [[1, 1, 1]], "shapes_after_crop": [[8, 8, 8]]}))
    assert main(["plan", "--fingerprint", str(tmp_path / "fp.json"), "-o", str(tmp_path / "p.json")]) == 2
    assert "--dataset-json" in capsys.readouterr().err


def test_plan_a_dataset_folder_computes_then_reuses_the_fingerprint(demo_3d, tmp_path, capsys):
    out = tmp_path / "results" / "plans.json"
    argv = ["plan", str(demo_3d), "-o", str(out), "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    fingerprint = out.parent / "fingerprint.json"
    assert fingerprint.is_file()
    first_mtime = fingerprint.stat().st_mtime_ns
    plans = load_plans(out)
    assert "3d_fullres" in plans.configurations and plans.fingerprint_signature
    assert main(argv) == 0
    assert fingerprint.stat().st_mtime_ns == first_mtime
    assert load_plans(out).to_dict() == plans.to_dict()


def test_plan_a_2d_dataset_folder(demo_2d, tmp_path):
    out = tmp_path / "plans.json"
    assert main(["plan", str(demo_2d), "-o", str(out), "--workers", "1", "--no-progress"]) == 0
    assert list(load_plans(out).configurations) == ["2d"]


@pytest.mark.integration
def test_real_hippocampus_matches_the_reference_topology(hippocampus_dir, tmp_path):
    out = tmp_path / "plans.json"
    assert main(["plan", str(hippocampus_dir), "-o", str(out), "--workers", "2", "--no-progress"]) == 0
    plans = load_plans(out)
    fullres = plans.configurations["3d_fullres"]
    assert fullres.patch_size == (40, 56, 40) and fullres.n_stages == 4
    assert fullres.strides == ((1, 1, 1),) + ((2, 2, 2),) * 3
    assert plans.configurations["2d"].patch_size == (56, 40)
    assert sorted(plans.configurations) == ["2d", "3d_fullres"]
    assert fullres.batch_size >= 2  # 208 cases here (260 in the reference), so the 5% cap gives 7 rather than 9
