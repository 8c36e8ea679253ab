"""Whether a results folder was made for this dataset: refuse to mix the plans and models of two datasets.

A run keeps a copy of ``dataset.json`` and the fingerprint (with the training case IDs) in its results folder
``RESULTS/<dataset name>/``. Two datasets that end up with the same name (two nnU-Net v2 datasets ``Dataset900_X``
and ``Dataset901_X``, or names that differ only in characters a folder name cannot hold) would share that folder
and overwrite or, worse, reuse each other's plans and trained folds. The rule, checked before anything is written:

- the name, when the stored ``dataset.json`` has one, must be the same;
- the labels (name -> value, and regions) and the channels (names, in order) must be the same: the plans, the
  normalisation and every trained network depend on them;
- at least :data:`MIN_SHARED_CASE_FRACTION` of the training cases the folder was made from must still be in the
  dataset. Added cases, a few removed or renamed ones, or fixed images are the same dataset and resume.

Two datasets that agree on all of this cannot be told apart: give them different names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autounet.dataset.dataset import Dataset
from autounet.dataset.description import DatasetDescription, parse_dataset_json
from autounet.errors import DatasetError
from autounet.jsonio import read_json
from autounet.typing import PathType

#: Share of the stored training cases that must still be in the dataset. Half: adding cases keeps all of them,
#: curating a dataset removes a few, and two different datasets share few case IDs (demo_000 in both is chance).
MIN_SHARED_CASE_FRACTION = 0.5
STORED_DATASET_JSON = "dataset.json"
STORED_FINGERPRINT = "fingerprint.json"


def dataset_differences(
    stored: DatasetDescription,
    stored_name: str | None,
    stored_cases: Sequence[str] | None,
    current: DatasetDescription,
    current_cases: Sequence[str],
) -> list[str]:
    """What makes ``current`` another dataset than the one a results folder was made for (empty: the same one).

    Parameters
    ----------
    stored : DatasetDescription
        The results folder's copy of ``dataset.json``.
    stored_name : str or None
        The ``name`` written in that copy (None when it has none: the folder name was used, nothing to compare).
    stored_cases : sequence of str or None
        Training case IDs the folder was made from (None when unknown).
    current : DatasetDescription
        The dataset being run.
    current_cases : sequence of str
        Its training case IDs.

    Examples
    --------
    >>> a = DatasetDescription("X", ("MRI",), {"background": 0, "tumor": 1}, ".nii.gz", "nnunet_v2")
    >>> dataset_differences(a, None, ["c1", "c2"], a, ["c1", "c2", "c3"])
    []
    >>> b = DatasetDescription("X", ("CT",), {"background": 0, "tumor": 1}, ".nii.gz", "nnunet_v2")
    >>> dataset_differences(a, None, ["c1", "c2"], b, ["d1"])
    ["channels ['MRI'] there, ['CT'] here", 'training cases: 0 of its 2 cases are here (c1, c2 are not)']
    """
    reasons = []
    if stored_name is not None and stored_name != current.name:
        reasons.append(f"name {stored_name!r} there, {current.name!r} here")
    if stored.labels != current.labels or stored.regions != current.regions:
        reasons.append(f"labels {_labels(stored)} there, {_labels(current)} here")
    if stored.channel_names != current.channel_names:
        reasons.append(f"channels {list(stored.channel_names)} there, {list(current.channel_names)} here")
    if stored_cases:
        present = set(current_cases)
        missing = [case for case in stored_cases if case not in present]
        shared = len(stored_cases) - len(missing)
        if shared < MIN_SHARED_CASE_FRACTION * len(stored_cases):
            examples = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            reasons.append(f"training cases: {shared} of its {len(stored_cases)} cases are here ({examples} are not)")
    return reasons


def check_results_folder(results_dir: PathType, dataset: Dataset) -> None:
    """Refuse ``results_dir`` when it was made for another dataset (see the module for the rule).

    Reads only; a folder without a stored ``dataset.json`` (new, or from before the copy was kept) is accepted.

    Parameters
    ----------
    results_dir : str or Path
        ``RESULTS/<dataset name>``.
    dataset : Dataset
        The dataset about to be run.

    Raises
    ------
    DatasetError
        Naming the differences and the ways out (another results folder, another name, moving the folder away).
    """
    results_dir = Path(results_dir)
    stored_path = results_dir / STORED_DATASET_JSON
    if not stored_path.is_file():
        return
    try:
        raw = read_json(stored_path)
        stored = parse_dataset_json(raw, str(stored_path))
    except (ValueError, DatasetError) as err:
        raise DatasetError(
            f"cannot tell which dataset {results_dir} was made for: its copy of dataset.json is unusable ({err}). If "
            f"the folder belongs to {dataset.root}, copy {dataset.root / 'dataset.json'} over {stored_path}; otherwise "
            "use another results folder (-o OTHER_FOLDER)"
        ) from None
    stored_name = str(raw["name"]) if str(raw.get("name") or "").strip() else None
    reasons = dataset_differences(stored, stored_name, _stored_cases(results_dir), dataset.description, dataset.case_ids)
    if reasons:
        raise DatasetError(
            f"{results_dir} was made for another dataset than {dataset.root}: {'; '.join(reasons)}. A results folder "
            "belongs to one dataset (same name, labels and channels, and at least half of the training cases it was "
            "made from; added cases or fixed images are fine), so nothing was changed. Use another results folder "
            f'(-o OTHER_FOLDER), give the dataset its own "name" in {dataset.root / "dataset.json"}, or move '
            f"{results_dir} away to start over"
        )


def _stored_cases(results_dir: Path) -> list[str] | None:
    """Training case IDs from the results folder's fingerprint (None if there is none or it is not autounet's)."""
    path = results_dir / STORED_FINGERPRINT
    if not path.is_file():
        return None
    try:
        data: Any = read_json(path)
    except ValueError:
        return None  # the fingerprint stage recomputes a broken file; the other checks still apply
    if not isinstance(data, dict) or data.get("source_format", "autounet") != "autounet":
        return None
    cases = data.get("cases")
    if not isinstance(cases, list):
        return None
    return [str(case["case_id"]) for case in cases if isinstance(case, dict) and "case_id" in case]


def _labels(description: DatasetDescription) -> dict[str, Any]:
    return {**description.labels, **{name: list(values) for name, values in description.regions.items()}}
