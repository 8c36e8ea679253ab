"""Bad input to `autounet preprocess` (issue 9): the broken case fails alone, named with its file and the fix (exit
code 2, no traceback), the good cases are stored; or the case is handled correctly. Plans come from a clean copy of
the same real Hippocampus cases, so preprocessing meets data the plans did not see (tests/dataset/corrupt.py)."""

from __future__ import annotations

import shutil

import pytest

from autounet.cli import main
from autounet.preprocessing import open_preprocessed

from dataset import corrupt  # tests/dataset/corrupt.py (tests/ is on sys.path)

pytestmark = pytest.mark.integration

BROKEN = corrupt.HIPPOCAMPUS_CASES[1]
GOOD = [case for case in corrupt.HIPPOCAMPUS_CASES if case != BROKEN]

# (id, corruption returning the file to be named, words the message must hold; None: preprocessed correctly)
CASES = [
    ("truncated_gzip", lambda r: corrupt.truncate_image(r, BROKEN), ["truncated or corrupt"]),
    ("truncated_gzip_trailer", lambda r: corrupt.drop_gzip_trailer(r, BROKEN), ["truncated or corrupt"]),
    ("nan_inf_intensities", lambda r: corrupt.put_nans(r, BROKEN), ["6 NaN/Inf voxel(s)", "replace them"]),
    ("flipped_direction", lambda r: corrupt.flip_label_direction(r, BROKEN), ["label direction", "re-export"]),
    ("wrong_spacing", lambda r: corrupt.set_label_spacing(r, BROKEN), ["label spacing", "one grid"]),
    ("shifted_origin", lambda r: corrupt.shift_label_origin(r, BROKEN), ["label origin", "shifted"]),
    ("swapped_axes", lambda r: corrupt.swap_label_axes(r, BROKEN), ["label shape (35, 34, 52)", "re-export"]),
    ("stray_label_value", lambda r: corrupt.add_label_value(r, BROKEN), ["label values [7]", "re-plan"]),
    ("negative_label", lambda r: corrupt.add_negative_label(r, BROKEN), ["label values [-1]"]),
    ("non_integer_label", lambda r: corrupt.make_label_fractional(r, BROKEN), ["non-integer"]),
    ("label_wrong_pixel_type", lambda r: corrupt.make_label_vector(r, BROKEN), ["one channel"]),
    ("complex_image", lambda r: corrupt.make_image_complex(r, BROKEN), ["complex64", "floating-point voxels"]),
    ("vector_image", lambda r: corrupt.make_image_vector(r, BROKEN), ["3 channel(s)", "declares 1"]),
    ("2d_among_3d", lambda r: corrupt.make_2d(r, BROKEN), ["2D image", "all 2D or all 3D"]),
    ("zero_size_image", lambda r: corrupt.make_zero_size(r, BROKEN), ["zero-size image"]),
    ("huge_spacing", lambda r: corrupt.set_spacing(r, BROKEN, (500.0, 500.0, 500.0)), ["check the spacing"]),
    # issue 20: was shrunk to one voxel along the axis and stored
    ("tiny_spacing", lambda r: corrupt.set_spacing(r, BROKEN, (0.001, 1.0, 1.0)),
     ["fewer than a quarter of the patch", "along axis 2", "check the spacing in the file header"]),
    ("deleted_label", lambda r: corrupt.delete_label(r, BROKEN), ["file not found"]),
    ("deleted_image", lambda r: corrupt.delete_image(r, BROKEN), ["file not found"]),
    ("empty_label", lambda r: corrupt.empty_label(r, BROKEN), None),
    ("empty_image", lambda r: corrupt.blank_image(r, BROKEN), None),
    ("float64_label", lambda r: corrupt.make_label_float64(r, BROKEN), None),
]


@pytest.fixture(scope="module")
def clean_plans(tmp_path_factory, hippocampus_dir):
    """Plans (3d_fullres) of the four clean cases, in MSD and nnU-Net v2 layout."""
    folder = tmp_path_factory.mktemp("clean")
    msd = corrupt.copy_msd_cases(hippocampus_dir, folder / "msd")
    v2 = corrupt.to_nnunet_v2(msd, folder / "v2")
    for root in (msd, v2):
        assert main(["plan", str(root), "-o", str(root / "plans.json"), "--configurations", "3d_fullres",
                     "--no-progress"]) == 0
    return {"msd": msd / "plans.json", "v2": v2 / "plans.json"}


@pytest.fixture
def corpus(tmp_path, hippocampus_dir):
    return corrupt.copy_msd_cases(hippocampus_dir, tmp_path / "data")


def _preprocess(root, plans, output, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["preprocess", str(root), "--plans", str(plans), "-o", str(output), "--workers", "1", "--no-progress"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("corruption, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_broken_case_fails_alone_with_its_file_named(tmp_path, corpus, clean_plans, capsys, corruption, words):
    changed = corruption(corpus)
    code, err = _preprocess(corpus, clean_plans["msd"], tmp_path / "pre", capsys)
    store = open_preprocessed(tmp_path / "pre" / "3d_fullres")
    if words is None:
        assert code == 0, err
        assert set(store.case_ids) == set(corrupt.HIPPOCAMPUS_CASES) and store.is_complete
        data, seg, properties = store.load(BROKEN)
        assert data.shape[1:] == seg.shape[1:] and data.size > 0
        return
    assert code == 2, err
    assert err.startswith("autounet preprocess: error: 1 of 4 cases could not be preprocessed"), err
    assert "Traceback" not in err and f"{BROKEN}: {changed}" in err, err
    for word in words:
        assert word in err, err
    assert "the other cases are stored" in err
    assert set(store.case_ids) == set(GOOD) and not store.is_complete


def test_fixing_the_broken_case_and_rerunning_finishes(tmp_path, corpus, clean_plans, capsys, hippocampus_dir):
    corrupt.truncate_image(corpus, BROKEN)
    assert _preprocess(corpus, clean_plans["msd"], tmp_path / "pre", capsys)[0] == 2
    shutil.copyfile(corrupt.image_file(hippocampus_dir, BROKEN), corrupt.image_file(corpus, BROKEN))
    code, err = _preprocess(corpus, clean_plans["msd"], tmp_path / "pre", capsys)
    assert code == 0, err
    assert open_preprocessed(tmp_path / "pre" / "3d_fullres").is_complete


def test_nnunet_v2_undeclared_channel_file_and_label_without_image(tmp_path, corpus, clean_plans, capsys):
    root = corrupt.to_nnunet_v2(corpus, tmp_path / "v2")
    extra = corrupt.add_extra_channel_file(root, BROKEN)
    code, err = _preprocess(root, clean_plans["v2"], tmp_path / "pre", capsys)
    assert code == 2 and str(extra) in err and "beyond the 1 channel(s)" in err, err
    extra.unlink()
    corrupt.delete_image(root, BROKEN)  # the case would vanish silently: its label is left without image
    code, err = _preprocess(root, clean_plans["v2"], tmp_path / "pre", capsys)
    label = corrupt.label_file(root, BROKEN)
    assert code == 2 and f"{label}: label(s) without image files" in err and "add the images" in err, err


def test_plans_for_another_channel_count_are_refused(tmp_path, corpus, clean_plans, capsys):
    root = corrupt.to_nnunet_v2(corpus, tmp_path / "v2")
    corrupt.add_channel(root, channels=2)
    code, err = _preprocess(root, clean_plans["v2"], tmp_path / "pre", capsys)
    assert code == 2 and "the plans are for 1 channel(s)" in err and "plan this dataset first" in err, err


def test_non_ascii_and_space_paths(tmp_path, hippocampus_dir, clean_plans, capsys):
    rename = {corrupt.HIPPOCAMPUS_CASES[0]: "fall ärztlich 1", corrupt.HIPPOCAMPUS_CASES[2]: "海马 003"}
    root = corrupt.copy_msd_cases(hippocampus_dir, tmp_path / "Dätä sät (copy)", rename=rename)
    code, err = _preprocess(root, clean_plans["msd"], tmp_path / "vör verarbeitet", capsys)
    assert code == 0, err
    store = open_preprocessed(tmp_path / "vör verarbeitet" / "3d_fullres")
    assert {"fall ärztlich 1", "海马 003"} <= set(store.case_ids)
    assert store.load("海马 003")[0].shape[0] == 1
