"""Five-fold splits: deterministic (nnU-Net's KFold seed 12345), saved once, user splits honoured, fold all."""

from __future__ import annotations

import json

import pytest

from autounet.trainers import fold_cases, load_or_create_splits, make_splits
from autounet.trainers.splits import SplitsError, parse_fold

CASES = [f"case_{i:03d}" for i in range(23)]


def test_splits_are_deterministic_and_partition_the_cases():
    splits = make_splits(CASES)
    assert splits == make_splits(list(reversed(CASES)))
    assert [len(s["val"]) for s in splits] == [5, 5, 5, 4, 4]
    assert sorted(c for s in splits for c in s["val"]) == CASES
    for fold in splits:
        assert sorted(fold["train"] + fold["val"]) == CASES


def test_splits_match_nnunet_kfold():
    # sklearn KFold(5, shuffle=True, random_state=12345) on the sorted ids: nnU-Net's generate_crossval_split.
    from sklearn.model_selection import KFold

    expected = [sorted(CASES[i] for i in val) for _, val in KFold(5, shuffle=True, random_state=12345).split(CASES)]
    assert [s["val"] for s in make_splits(CASES)] == expected


def test_splits_file_is_written_once_and_never_overwritten(tmp_path):
    first = load_or_create_splits(tmp_path, CASES)
    assert json.loads((tmp_path / "splits.json").read_text()) == first
    custom = [{"train": CASES[:20], "val": CASES[20:]}, {"train": CASES[3:], "val": CASES[:3]}]
    (tmp_path / "splits.json").write_text(json.dumps(custom))
    assert load_or_create_splits(tmp_path, CASES) == custom
    assert json.loads((tmp_path / "splits.json").read_text()) == custom
    assert fold_cases(custom, 1, CASES) == (CASES[3:], CASES[:3])
    with pytest.raises(SplitsError, match="fold 2 does not exist"):
        fold_cases(custom, 2, CASES)


def test_fold_all_trains_on_everything():
    assert fold_cases(make_splits(CASES), "all", CASES) == (CASES, [])


@pytest.mark.parametrize(
    "content, message",
    [({"train": []}, "expected a list"), ([{"train": ["nope"], "val": []}], "not in the preprocessed data")],
)
def test_bad_splits_file_is_explained(tmp_path, content, message):
    (tmp_path / "splits.json").write_text(json.dumps(content))
    with pytest.raises(SplitsError, match=message):
        load_or_create_splits(tmp_path, CASES)


def test_parse_fold():
    assert parse_fold("all") == "all" and parse_fold("2") == 2
    with pytest.raises(ValueError, match="0-4"):
        parse_fold("first")


def test_too_few_cases():
    with pytest.raises(SplitsError, match="at least 2"):
        make_splits(["only"])
