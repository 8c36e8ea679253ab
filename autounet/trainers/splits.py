"""Cross-validation folds: a deterministic five-fold split in ``splits.json``, user splits honoured, fold ``all``."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from autounet.errors import AutounetError
from autounet.jsonio import read_json, write_json
from autounet.layout import ResultsLayout
from autounet.safe_names import name_problem
from autounet.typing import PathType

logger = logging.getLogger(__name__)

#: nnU-Net's ``generate_crossval_split``: ``KFold(n_splits=5, shuffle=True, random_state=12345)`` on sorted ids.
SPLIT_SEED = 12345
NUM_FOLDS = 5

Fold = int | str  # 0..k-1 or "all"


class SplitsError(AutounetError, ValueError):
    """A splits file cannot be used with the cases at hand."""


def make_splits(case_ids: Sequence[str], num_folds: int = NUM_FOLDS, seed: int = SPLIT_SEED) -> list[dict[str, list[str]]]:
    """Split cases into ``num_folds`` train/val folds, exactly like nnU-Net v2.

    Parameters
    ----------
    case_ids : sequence of str
        Case identifiers; they are sorted first so the split does not depend on listing order.
    num_folds : int
        Number of folds (5). With fewer cases than folds, each case is its own validation fold.
    seed : int
        ``random_state`` of scikit-learn's shuffled ``KFold`` (nnU-Net's 12345).

    Returns
    -------
    list of dict
        ``[{"train": [...], "val": [...]}, ...]``, ids sorted within each list.

    Examples
    --------
    >>> splits = make_splits([f"case_{i}" for i in range(10)])
    >>> len(splits), [len(s["val"]) for s in splits]
    (5, [2, 2, 2, 2, 2])
    >>> splits == make_splits([f"case_{i}" for i in reversed(range(10))])
    True
    """
    from sklearn.model_selection import KFold  # type: ignore[import-untyped]

    ids = np.array(sorted(case_ids))
    if len(ids) < 2:
        raise SplitsError(f"need at least 2 training cases for cross-validation, got {len(ids)}; train fold 'all' instead")
    folds = min(num_folds, len(ids))
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    return [
        {"train": sorted(ids[train].tolist()), "val": sorted(ids[val].tolist())} for train, val in splitter.split(ids)
    ]


def load_or_create_splits(results_dir: PathType, case_ids: Sequence[str], write: bool = True) -> list[dict[str, list[str]]]:
    """The folds in ``results_dir/splits.json``; created with :func:`make_splits` when the file is missing.

    An existing file (written by autounet, by nnU-Net as ``splits_final.json`` content, or by hand) is never
    overwritten. Its cases must be exactly ``case_ids``: an unknown case, or a case in no fold, is refused.

    Parameters
    ----------
    results_dir : path
        The dataset's results folder.
    case_ids : sequence of str
        Cases in the preprocessed store.
    write : bool
        Write a new file when there is none (False on non-zero ranks of a multi-GPU run).

    Raises
    ------
    SplitsError
        When the file is malformed, names cases that are not in the store, or leaves store cases out of every fold.
    """
    path = ResultsLayout(results_dir).splits
    if not path.is_file():
        splits = make_splits(case_ids)
        if write:
            write_json(path, splits)
            logger.info("wrote a %d-fold split of %d cases to %s", len(splits), len(case_ids), path)
        return splits
    splits = read_json(path)
    if not isinstance(splits, list) or not all(isinstance(s, dict) and "train" in s and "val" in s for s in splits):
        raise SplitsError(
            f'{path}: expected a list of {{"train": [...], "val": [...]}} folds; fix the file or delete it to get '
            "the default five-fold split"
        )
    named = [c for s in splits for c in (*s["train"], *s["val"])]
    unsafe = sorted({repr(c) for c in named if name_problem(c) is not None})
    if unsafe:
        raise SplitsError(f"{path} names case(s) that cannot be file names ({', '.join(unsafe[:5])}); fix the file, "
                          "or delete it to get the default split")
    known = set(case_ids)
    unknown = sorted({c for s in splits for c in (*s["train"], *s["val"])} - known)
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise SplitsError(
            f"{path} names {len(unknown)} case(s) that are not in the preprocessed data ({shown}); "
            "fix the file, or delete it to get the default split"
        )
    uncovered = sorted(known - set(named))
    if uncovered:
        shown = ", ".join(uncovered[:5]) + (" ..." if len(uncovered) > 5 else "")
        raise SplitsError(
            f"{path} covers {len(known) - len(uncovered)} of the {len(known)} cases: {len(uncovered)} are in no fold "
            f"({shown}), e.g. because it was written from an incomplete preprocessing. Delete it to get the default "
            "five-fold split of every case, or add the cases to its folds"
        )
    return [{"train": list(s["train"]), "val": list(s["val"])} for s in splits]


def parse_fold(fold: Fold) -> Fold:
    """``0``..``k-1`` as int, or ``"all"``.

    Examples
    --------
    >>> parse_fold("3"), parse_fold("all"), parse_fold(1)
    (3, 'all', 1)
    """
    if isinstance(fold, str):
        if fold.lower() == "all":
            return "all"
        if not fold.isdigit():
            raise ValueError(f"fold must be a number (0-4) or 'all', got {fold!r}")
        return int(fold)
    if fold < 0:
        raise ValueError(f"fold must be a number (0-4) or 'all', got {fold}")
    return int(fold)


def fold_cases(splits: Sequence[dict[str, list[str]]], fold: Fold, case_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Training and validation cases of ``fold``; fold ``"all"`` trains on every case and validates on none.

    Examples
    --------
    >>> fold_cases([{"train": ["a"], "val": ["b"]}], 0, ["a", "b"])
    (['a'], ['b'])
    >>> fold_cases([{"train": ["a"], "val": ["b"]}], "all", ["a", "b"])
    (['a', 'b'], [])
    """
    fold = parse_fold(fold)
    if fold == "all":
        return sorted(case_ids), []
    assert isinstance(fold, int)
    if fold >= len(splits):
        raise SplitsError(f"fold {fold} does not exist: the split has {len(splits)} folds (0-{len(splits) - 1})")
    return sorted(splits[fold]["train"]), sorted(splits[fold]["val"])
