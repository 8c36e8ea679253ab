"""Bad input to `autounet train` (issue 9): a broken dataset or preprocessed store stops with one message naming the
file and the fix (exit code 2, no traceback); empty labels, blank images and unusual paths train. Real Hippocampus
cases (tests/dataset/corrupt.py) with tiny plans (4-16 features, 16^3 patches), one or two iterations."""

from __future__ import annotations

import shutil

import pytest

from autounet.cli import main
from autounet.planners.plans import load_plans

from dataset import corrupt  # tests/dataset/corrupt.py (tests/ is on sys.path)
from .helpers import shrink_plans

pytestmark = pytest.mark.integration

BROKEN = corrupt.HIPPOCAMPUS_CASES[1]
QUICK = ["--epochs", "1", "--iterations-per-epoch", "2", "--device", "cpu", "--precision", "float32",
         "--workers", "0", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_plans(tmp_path_factory, hippocampus_dir):
    """Plans of four clean cases with a tiny 3d_fullres network."""
    folder = tmp_path_factory.mktemp("plans")
    clean = corrupt.copy_msd_cases(hippocampus_dir, folder / "clean")
    assert main(["plan", str(clean), "-o", str(folder / "full.json"), "--configurations", "3d_fullres",
                 "--no-progress"]) == 0
    shrink_plans(load_plans(folder / "full.json"), "3d_fullres", (16, 16, 16)).save(folder / "plans.json")
    return folder / "plans.json"


@pytest.fixture
def corpus(tmp_path, hippocampus_dir):
    return corrupt.copy_msd_cases(hippocampus_dir, tmp_path / "data")


def _train(dataset, results, tiny_plans, capsys, fold="all", extra=()) -> tuple[int, str]:
    """``autounet train DATASET 3d_fullres FOLD --results RESULTS`` with the tiny plans placed in RESULTS."""
    results.mkdir(parents=True, exist_ok=True)
    if not (results / "plans.json").exists():
        shutil.copyfile(tiny_plans, results / "plans.json")
    capsys.readouterr()
    code = main(["train", str(dataset), "3d_fullres", fold, "--results", str(results), *QUICK, *extra])
    return code, capsys.readouterr().err


def _assert_one_clear_error(code: int, err: str, path, words) -> None:
    assert code == 2, err
    assert err.startswith("autounet train: error: ") and err.count("error:") == 1 and "Traceback" not in err, err
    assert str(path) in err, err
    for word in words:
        assert word in err, err


BROKEN_DATASETS = [
    ("truncated_gzip", lambda r: corrupt.truncate_image(r, BROKEN), ["truncated or corrupt"]),
    ("nan_inf_intensities", lambda r: corrupt.put_nans(r, BROKEN), ["NaN/Inf voxel(s)", "replace them"]),
    ("flipped_direction", lambda r: corrupt.flip_label_direction(r, BROKEN), ["label direction"]),
    ("stray_label_value", lambda r: corrupt.add_label_value(r, BROKEN), ["label values [7]"]),
    ("2d_among_3d", lambda r: corrupt.make_2d(r, BROKEN), ["all 2D or all 3D"]),
    ("zero_size_image", lambda r: corrupt.make_zero_size(r, BROKEN), ["zero-size image"]),
    ("huge_spacing", lambda r: corrupt.set_spacing(r, BROKEN, (500.0, 500.0, 500.0)), ["check the spacing"]),
    ("complex_image", lambda r: corrupt.make_image_complex(r, BROKEN), ["complex64"]),
]


@pytest.mark.parametrize("corruption, words", [c[1:] for c in BROKEN_DATASETS], ids=[c[0] for c in BROKEN_DATASETS])
def test_a_broken_dataset_stops_training_with_the_file_named(tmp_path, corpus, tiny_plans, capsys, corruption, words):
    changed = corruption(corpus)
    code, err = _train(corpus, tmp_path / "results", tiny_plans, capsys)
    _assert_one_clear_error(code, err, changed, words)
    assert not (tmp_path / "results" / "3d_fullres").exists()  # nothing trained on a partial dataset


def test_a_broken_dataset_without_plans_stops_at_the_fingerprint(tmp_path, corpus, capsys):
    changed = corrupt.add_label_value(corpus, BROKEN)
    capsys.readouterr()
    code = main(["train", str(corpus), "3d_fullres", "all", "--results", str(tmp_path / "results"), *QUICK])
    _assert_one_clear_error(code, capsys.readouterr().err, changed, ["label value(s) 7", "dataset.json"])


@pytest.mark.parametrize("fold", ["all", "0"])
def test_empty_labels_and_a_blank_image_train(tmp_path, corpus, tiny_plans, capsys, fold):
    """All-background labels (here in every case but one) and an all-zero image are valid training data."""
    for case in corrupt.HIPPOCAMPUS_CASES[1:]:
        corrupt.empty_label(corpus, case)
    corrupt.blank_image(corpus, corrupt.HIPPOCAMPUS_CASES[2])
    extra = () if fold == "0" else ("--no-validation",)
    code, err = _train(corpus, tmp_path / "results", tiny_plans, capsys, fold=fold, extra=extra)
    assert code == 0, err
    fold_dir = tmp_path / "results" / "3d_fullres" / f"fold_{fold}"
    assert (fold_dir / "checkpoint_final.pt").is_file()


def test_non_ascii_and_space_paths_train(tmp_path, hippocampus_dir, tiny_plans, capsys):
    rename = {corrupt.HIPPOCAMPUS_CASES[0]: "fall ärztlich 1", corrupt.HIPPOCAMPUS_CASES[2]: "海马 003"}
    root = corrupt.copy_msd_cases(hippocampus_dir, tmp_path / "Dätä sät (copy)", rename=rename)
    code, err = _train(root, tmp_path / "Ergebnisse ü", tiny_plans, capsys, extra=("--no-validation",))
    assert code == 0, err
    assert (tmp_path / "Ergebnisse ü" / "3d_fullres" / "fold_all" / "checkpoint_final.pt").is_file()


# --- a damaged preprocessed store ---------------------------------------------------------------------------------


def _damage(folder, how: str):
    files = {"data": folder / f"{BROKEN}.npy", "seg": folder / f"{BROKEN}_seg.npy",
             "foreground": folder / f"{BROKEN}_fg.npz", "properties": folder / f"{BROKEN}.json"}
    if how == "truncated_npy":
        return corrupt.truncate(files["data"], 0.5)
    if how == "deleted_seg":
        files["seg"].unlink()
        return files["seg"]
    if how == "garbage_properties":
        files["properties"].write_text("{garbage")
        return files["properties"]
    if how == "truncated_foreground":
        return corrupt.truncate(files["foreground"], 0.5)
    raise AssertionError(how)


STORE_DAMAGE = ["truncated_npy", "deleted_seg", "garbage_properties", "truncated_foreground"]


@pytest.mark.parametrize("how", STORE_DAMAGE)
def test_a_damaged_preprocessed_case_is_named_and_the_fix_works(tmp_path, corpus, tiny_plans, capsys, how):
    results = tmp_path / "results"
    code, err = _train(corpus, results, tiny_plans, capsys, extra=("--iterations-per-epoch", "1", "--no-validation"))
    assert code == 0, err
    shutil.rmtree(results / "3d_fullres")
    damaged = _damage(results / "preprocessed" / "3d_fullres", how)
    capsys.readouterr()
    code = main(["train", str(results), "3d_fullres", "all", *QUICK, "--no-validation"])
    err = capsys.readouterr().err
    properties = results / "preprocessed" / "3d_fullres" / f"{BROKEN}.json"
    _assert_one_clear_error(code, err, damaged, [f"preprocessed case {BROKEN} is damaged", f"delete {properties}"])
    properties.unlink(missing_ok=True)  # the fix the message gives: the next run recomputes the case
    code, err = _train(corpus, results, tiny_plans, capsys, extra=("--no-validation",))
    assert code == 0, err
