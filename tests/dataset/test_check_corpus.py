"""The bad-input corpus: real Hippocampus cases broken one way each; ``autounet check`` must name every problem.

Each entry copies four real cases into ``tmp_path`` (MSD layout), breaks one thing in one case and runs the
``autounet check`` command. The test asserts the problem kind, the case, the file and the exit code (1 for an
error, 0 when there are only warnings). ``docs/reliability.md`` lists these cases.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autounet.cli import main
from autounet.dataset import load_dataset
from autounet.fingerprint import compute_fingerprint

from . import corrupt
from .corrupt import HIPPOCAMPUS_CASES, copy_msd_cases

pytestmark = pytest.mark.integration

CASE = HIPPOCAMPUS_CASES[1]  # the case each corruption hits; the other three stay clean


def _run_check(root: Path, tmp_path: Path, capsys) -> tuple[int, dict, str]:
    """Run ``autounet check`` as a user would; return exit code, JSON report and printed text."""
    json_path = tmp_path / "report.json"
    code = main(["check", str(root), "--json", str(json_path), "--workers", "1", "--no-progress"])
    return code, json.loads(json_path.read_text(encoding="utf-8")), capsys.readouterr().out


@pytest.fixture
def hippo(hippocampus_dir, tmp_path) -> Path:
    return copy_msd_cases(hippocampus_dir, tmp_path / "Task04 copy")


@pytest.fixture
def hippo_v2(hippo, tmp_path) -> Path:
    return corrupt.to_nnunet_v2(hippo, tmp_path / "Dataset004_Hippocampus")


# name, corruption (root -> changed file), expected kind, severity, case (None: dataset level)
MSD_CORPUS = [
    ("deleted_label", lambda r: corrupt.delete_label(r, CASE), "missing_label", "error", CASE),
    ("label_without_image", lambda r: corrupt.delete_image(r, CASE), "missing_image", "error", CASE),
    ("unreferenced_label_file", corrupt.add_stray_label_file, "unreferenced_file", "warning", None),
    ("flipped_direction", lambda r: corrupt.flip_label_direction(r, CASE), "direction_mismatch", "error", CASE),
    ("wrong_spacing", lambda r: corrupt.set_label_spacing(r, CASE), "spacing_mismatch", "error", CASE),
    ("shifted_origin", lambda r: corrupt.shift_label_origin(r, CASE), "origin_mismatch", "error", CASE),
    ("nan_inf_intensities", lambda r: corrupt.put_nans(r, CASE), "nonfinite_intensity", "error", CASE),
    ("stray_label_value", lambda r: corrupt.add_label_value(r, CASE, 7), "undeclared_label", "error", CASE),
    ("non_integer_label", lambda r: corrupt.make_label_fractional(r, CASE), "non_integer_label", "error", CASE),
    ("label_wrong_pixel_type", lambda r: corrupt.make_label_vector(r, CASE), "label_channels", "error", CASE),
    ("truncated_gzip", lambda r: corrupt.truncate_image(r, CASE), "unreadable", "error", CASE),
    ("truncated_gzip_trailer", lambda r: corrupt.drop_gzip_trailer(r, CASE), "unreadable", "error", CASE),
    ("2d_among_3d", lambda r: corrupt.make_2d(r, CASE), "dimensionality", "error", CASE),
    ("num_training_wrong", lambda r: corrupt.set_num_training(r, 5), "num_training", "error", None),
    ("zero_size_image", lambda r: corrupt.make_zero_size(r, CASE), "zero_size", "error", CASE),
    ("swapped_axes", lambda r: corrupt.swap_label_axes(r, CASE), "shape_mismatch", "error", CASE),
    ("empty_image", lambda r: corrupt.blank_image(r, CASE), "empty_image", "error", CASE),
    ("empty_label", lambda r: corrupt.empty_label(r, CASE), "empty_label", "warning", CASE),
    # issue 20: 500x the median spacing is an error (before: only the warning suspicious_spacing, exit 0)
    ("huge_spacing", lambda r: corrupt.set_spacing(r, CASE, (1.0, 1.0, 500.0)), "implausible_spacing",
     "error", CASE),
    ("tiny_spacing_vs_median", lambda r: corrupt.set_spacing(r, CASE, (0.001, 0.001, 0.001)), "implausible_spacing",
     "error", CASE),
]


def _assert_reported(code, report, text, changed: Path, kind, severity, case_id):
    matching = [p for p in report["problems"] if p["kind"] == kind]
    assert matching, text
    assert all(p["severity"] == severity and p["case_id"] == case_id for p in matching), text
    assert any(Path(f).name == changed.name for p in matching for f in p["files"]), text
    assert changed.name in text or (case_id and f"case {case_id}" in text)
    assert code == (1 if severity == "error" else 0), text
    # nothing else is wrong: the three untouched cases are not flagged
    assert {p["case_id"] for p in report["problems"]} <= {case_id, None}, text


@pytest.mark.parametrize("name, corruption, kind, severity, case_id", MSD_CORPUS, ids=[c[0] for c in MSD_CORPUS])
def test_check_names_each_problem(hippo, tmp_path, capsys, name, corruption, kind, severity, case_id):
    changed = corruption(hippo)
    code, report, text = _run_check(hippo, tmp_path, capsys)
    _assert_reported(code, report, text, changed, kind, severity, case_id)


NNUNET_V2_CORPUS = [
    ("missing_channel_file", lambda r: (corrupt.add_channel(r), corrupt.delete_channel_file(r, CASE))[1],
     "missing_channel", "error", CASE),
    ("extra_channel_file", lambda r: corrupt.add_extra_channel_file(r, CASE), "extra_channel", "error", CASE),
    # the orphan label is the file named; numTraining (counted from imagesTr/) is reported as well
    ("label_without_image", lambda r: (corrupt.delete_image(r, CASE), corrupt.label_file(r, CASE))[1],
     "missing_image", "error", CASE),
    ("num_training_wrong", lambda r: corrupt.set_num_training(r, 3), "num_training", "error", None),
]


@pytest.mark.parametrize("name, corruption, kind, severity, case_id", NNUNET_V2_CORPUS, ids=[c[0] for c in NNUNET_V2_CORPUS])
def test_check_names_each_problem_nnunet_v2(hippo_v2, tmp_path, capsys, name, corruption, kind, severity, case_id):
    changed = corruption(hippo_v2)
    code, report, text = _run_check(hippo_v2, tmp_path, capsys)
    _assert_reported(code, report, text, changed, kind, severity, case_id)


def test_channel_count_disagreeing_with_dataset_json(hippo, tmp_path, capsys):
    corrupt.edit_dataset_json(hippo, lambda d: d.update(modality={"0": "T1", "1": "T2"}))
    code, report, text = _run_check(hippo, tmp_path, capsys)
    assert code == 1
    flagged = {p["case_id"] for p in report["problems"] if p["kind"] == "channel_count"}
    assert flagged == set(HIPPOCAMPUS_CASES)
    assert "1 channel(s) found but dataset.json declares 2" in text


def test_missing_dataset_json_is_one_clear_error(hippo, tmp_path, capsys):
    (hippo / "dataset.json").unlink()
    code, report, text = _run_check(hippo, tmp_path, capsys)
    assert code == 1 and [p["kind"] for p in report["problems"]] == ["dataset_json"]
    assert 'run "autounet import" first' in text


def test_every_problem_of_a_multiply_broken_dataset_is_reported_at_once(hippocampus_dir, tmp_path, capsys):
    cases = sorted(p.name[: -len(".nii.gz")] for p in (hippocampus_dir / "imagesTr").iterdir())[:12]
    root = copy_msd_cases(hippocampus_dir, tmp_path / "broken", cases)
    breakages = {  # case -> (corruption, kind)
        cases[0]: (corrupt.delete_label, "missing_label"),
        cases[1]: (corrupt.flip_label_direction, "direction_mismatch"),
        cases[2]: (corrupt.set_label_spacing, "spacing_mismatch"),
        cases[3]: (corrupt.put_nans, "nonfinite_intensity"),
        cases[4]: (lambda r, c: corrupt.add_label_value(r, c, 9), "undeclared_label"),
        cases[5]: (corrupt.truncate_image, "unreadable"),
        cases[6]: (corrupt.make_2d, "dimensionality"),
        cases[7]: (corrupt.make_zero_size, "zero_size"),
        cases[8]: (corrupt.swap_label_axes, "shape_mismatch"),
        cases[9]: (corrupt.make_label_fractional, "non_integer_label"),
    }
    for case_id, (corruption, _) in breakages.items():
        corruption(root, case_id)
    corrupt.set_num_training(root, 13)
    code, report, text = _run_check(root, tmp_path, capsys)
    assert code == 1
    found = {(p["case_id"], p["kind"]) for p in report["problems"]}
    expected = {(case_id, kind) for case_id, (_, kind) in breakages.items()} | {(None, "num_training")}
    assert expected <= found, text
    assert not {c for c, _ in found} & set(cases[10:]), "the two clean cases must not be flagged"
    assert report["num_errors"] == len(report["problems"]) >= len(expected)


def test_non_ascii_and_space_paths_are_fine(hippocampus_dir, tmp_path, capsys):
    rename = {HIPPOCAMPUS_CASES[0]: "hippo café 001", HIPPOCAMPUS_CASES[1]: "海马 003"}
    root = copy_msd_cases(hippocampus_dir, tmp_path / "Dätä sät (copy)", rename=rename)
    code, report, text = _run_check(root, tmp_path, capsys)
    assert code == 0 and report["problems"] == [], text
    dataset = load_dataset(root)
    assert {"hippo café 001", "海马 003"} <= set(dataset.case_ids)
    fingerprint = compute_fingerprint(dataset, workers=1, progress=False)
    assert fingerprint.num_cases == 4


def test_real_hippocampus_passes(hippocampus_dir, tmp_path, capsys):
    code, report, text = _run_check(hippocampus_dir, tmp_path, capsys)
    assert code == 0 and report["ok"] and report["problems"] == [], text
    files = sorted((hippocampus_dir / "imagesTr").glob("*.nii.gz"))
    assert report["summary"]["num_training"] == len(files)
    assert report["summary"]["dimensionality"] == "3D"
    assert text.splitlines()[0].endswith(": OK") and len(text.splitlines()) <= 6
