"""Bad input to `autounet fingerprint` and `autounet plan` (issue 9): one clear message naming the file and the fix,
exit code 2 and no traceback; or correct handling. Datasets are built from real Hippocampus cases
(tests/dataset/corrupt.py), one corruption each."""

from __future__ import annotations

import json

import pytest

from autounet.cli import main
from autounet.fingerprint import load_fingerprint

from dataset import corrupt  # tests/dataset/corrupt.py (tests/ is on sys.path)

pytestmark = pytest.mark.integration

BROKEN = corrupt.HIPPOCAMPUS_CASES[1]

# (id, corruption returning the file to be named, words the message must hold; None: fingerprinted correctly)
CASES = [
    ("truncated_gzip", lambda r: corrupt.truncate_image(r, BROKEN), ["truncated or corrupt", "re-download"]),
    ("truncated_gzip_trailer", lambda r: corrupt.drop_gzip_trailer(r, BROKEN), ["truncated or corrupt"]),
    ("nan_inf_intensities", lambda r: corrupt.put_nans(r, BROKEN), ["6 NaN/Inf voxel(s)", "replace them"]),
    ("flipped_direction", lambda r: corrupt.flip_label_direction(r, BROKEN), ["label direction", "image's grid"]),
    ("wrong_spacing", lambda r: corrupt.set_label_spacing(r, BROKEN), ["label spacing", "resample it onto the image"]),
    ("shifted_origin", lambda r: corrupt.shift_label_origin(r, BROKEN), ["label origin", "image's grid"]),
    ("swapped_axes", lambda r: corrupt.swap_label_axes(r, BROKEN), ["label shape (35, 34, 52)", "re-export"]),
    ("stray_label_value", lambda r: corrupt.add_label_value(r, BROKEN), ["label value(s) 7 (3 voxels)", "dataset.json"]),
    ("negative_label", lambda r: corrupt.add_negative_label(r, BROKEN), ["negative values (-1)"]),
    ("non_integer_label", lambda r: corrupt.make_label_fractional(r, BROKEN), ["non-integer", "nearest-neighbour"]),
    ("label_wrong_pixel_type", lambda r: corrupt.make_label_vector(r, BROKEN), ["3 channels", "single-channel"]),
    ("complex_image", lambda r: corrupt.make_image_complex(r, BROKEN), ["complex64", "floating-point voxels"]),
    ("vector_image", lambda r: corrupt.make_image_vector(r, BROKEN), ["3 channel(s)", "declares 1"]),
    ("2d_among_3d", lambda r: corrupt.make_2d(r, BROKEN), ["2D image(s) among 3 3D cases", "all 2D or all 3D"]),
    ("zero_size_image", lambda r: corrupt.make_zero_size(r, BROKEN), ["zero-size image", "remove the case"]),
    ("deleted_label", lambda r: corrupt.delete_label(r, BROKEN), ["file not found"]),
    ("deleted_image", lambda r: corrupt.delete_image(r, BROKEN), ["file not found"]),
    ("empty_label", lambda r: corrupt.empty_label(r, BROKEN), None),
    ("empty_image", lambda r: corrupt.blank_image(r, BROKEN), None),
    ("huge_spacing", lambda r: corrupt.set_spacing(r, BROKEN, (500.0, 500.0, 500.0)),
     ["500x coarser than (1.0, 1.0, 1.0) mm", "check the header's unit"]),
    ("tiny_spacing", lambda r: corrupt.set_spacing(r, BROKEN, (0.001, 1.0, 1.0)),
     ["1,000x finer than (1.0, 1.0, 1.0) mm along axis 2", "the dataset's median"]),
    ("float64_label", lambda r: corrupt.make_label_float64(r, BROKEN), None),
]


@pytest.fixture
def corpus(tmp_path, hippocampus_dir):
    return corrupt.copy_msd_cases(hippocampus_dir, tmp_path / "data")


def _run(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_one_clear_error(code: int, err: str, command: str, path, words) -> None:
    assert code == 2, err
    assert err.startswith(f"autounet {command}: error: ") and err.count("error:") == 1, err
    assert "Traceback" not in err
    assert str(path) in err, err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("corruption, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fingerprint_names_the_broken_file_or_handles_it(tmp_path, corpus, capsys, corruption, words):
    changed = corruption(corpus)
    output = tmp_path / "fingerprint.json"
    code, out, err = _run(["fingerprint", str(corpus), "-o", str(output), "--workers", "1", "--no-progress"], capsys)
    if words is None:
        assert code == 0, err
        fingerprint = load_fingerprint(output)
        assert fingerprint.num_cases == len(corrupt.HIPPOCAMPUS_CASES)
        assert {case.case_id for case in fingerprint.cases} == set(corrupt.HIPPOCAMPUS_CASES)
        return
    _assert_one_clear_error(code, err, "fingerprint", changed, words)
    assert not output.exists()


def test_fingerprint_refuses_an_undeclared_channel_file(tmp_path, corpus, capsys):
    root = corrupt.to_nnunet_v2(corpus, tmp_path / "v2")
    extra = corrupt.add_extra_channel_file(root, BROKEN)
    code, out, err = _run(["fingerprint", str(root), "-o", str(tmp_path / "fp.json"), "--no-progress"], capsys)
    _assert_one_clear_error(code, err, "fingerprint", extra, ["beyond the 1 channel(s)", "channel_names"])


def test_fingerprint_refuses_a_label_without_image_files(tmp_path, corpus, capsys):
    root = corrupt.to_nnunet_v2(corpus, tmp_path / "v2")
    corrupt.delete_image(root, BROKEN)
    code, out, err = _run(["fingerprint", str(root), "-o", str(tmp_path / "fp.json"), "--no-progress"], capsys)
    _assert_one_clear_error(code, err, "fingerprint", corrupt.label_file(root, BROKEN), ["label(s) without image"])


def test_fingerprint_names_a_missing_channel_file(tmp_path, corpus, capsys):
    root = corrupt.to_nnunet_v2(corpus, tmp_path / "v2")
    corrupt.add_channel(root, channels=2)
    missing = corrupt.delete_channel_file(root, BROKEN, channel=1)
    code, out, err = _run(["fingerprint", str(root), "-o", str(tmp_path / "fp.json"), "--no-progress"], capsys)
    _assert_one_clear_error(code, err, "fingerprint", missing, ["file not found"])


def test_non_ascii_and_space_paths_fingerprint_and_plan(tmp_path, hippocampus_dir, capsys):
    rename = {corrupt.HIPPOCAMPUS_CASES[0]: "fall ärztlich 1", corrupt.HIPPOCAMPUS_CASES[2]: "海马 003"}
    root = corrupt.copy_msd_cases(hippocampus_dir, tmp_path / "Dätä sät (copy)", rename=rename)
    plans = tmp_path / "out put" / "plans ü.json"
    code, out, err = _run(["plan", str(root), "-o", str(plans), "--configurations", "3d_fullres", "--no-progress"],
                          capsys)
    assert code == 0, err
    fingerprint = load_fingerprint(plans.parent / "fingerprint.json")
    assert {"fall ärztlich 1", "海马 003"} <= {case.case_id for case in fingerprint.cases}
    assert json.loads(plans.read_text(encoding="utf-8"))["configurations"]["3d_fullres"]


# --- plan -------------------------------------------------------------------------------------------------------


def test_plan_of_a_broken_dataset_names_the_file(tmp_path, corpus, capsys):
    changed = corrupt.add_label_value(corpus, BROKEN)
    plans = tmp_path / "plans.json"
    code, out, err = _run(["plan", str(corpus), "-o", str(plans), "--no-progress"], capsys)
    _assert_one_clear_error(code, err, "plan", changed, ["label value(s) 7"])
    assert not plans.exists()


def test_plan_refuses_one_case_with_implausible_spacing(tmp_path, corpus, capsys):
    """Issue 20: one implausible header is refused at the fingerprint, naming the file (before: planned around it)."""
    changed = corrupt.set_spacing(corpus, BROKEN, (500.0, 500.0, 500.0))
    plans = tmp_path / "plans.json"
    code, out, err = _run(["plan", str(corpus), "-o", str(plans), "--configurations", "3d_fullres",
                           "--no-progress"], capsys)
    _assert_one_clear_error(code, err, "plan", changed, ["500x coarser", "implausible spacing"])
    assert not plans.exists()


def _damage_fingerprint(path, how: str) -> None:
    data = json.loads(path.read_text())
    if how == "truncated":
        path.write_text(path.read_text()[:300])
        return
    if how == "newer_version":
        data["fingerprint_version"] = 99
    elif how == "no_cases":
        data["cases"] = []
    elif how == "wrong_type":
        data["cases"][0]["spacing"] = "abc"
    elif how == "not_a_fingerprint":
        data = {"hello": 1}
    path.write_text(json.dumps(data))


FINGERPRINT_FILES = [
    ("truncated", ["not valid JSON", "fix or delete the file"]),
    ("newer_version", ["fingerprint version 99 is newer", "upgrade autounet or recompute"]),
    ("no_cases", ["no training cases"]),
    ("wrong_type", ["not a usable fingerprint", "autounet fingerprint"]),
    ("not_a_fingerprint", ["not a fingerprint", "autounet fingerprint"]),
]


@pytest.mark.parametrize("how, words", FINGERPRINT_FILES, ids=[f[0] for f in FINGERPRINT_FILES])
def test_plan_from_a_damaged_fingerprint_file(tmp_path, corpus, capsys, how, words):
    fingerprint = tmp_path / "fingerprint.json"
    assert main(["fingerprint", str(corpus), "-o", str(fingerprint), "--no-progress"]) == 0
    _damage_fingerprint(fingerprint, how)
    capsys.readouterr()
    code, out, err = _run(["plan", "--fingerprint", str(fingerprint), "-o", str(tmp_path / "plans.json")], capsys)
    _assert_one_clear_error(code, err, "plan", fingerprint, words)
