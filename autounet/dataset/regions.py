"""Refuse region labels until autounet trains them: a ``dataset.json`` that declares regions is not trained silently
as plain labels.

nnU-Net v2 lets a label stand for a region, a list of label values that overlap (BraTS: "whole tumor" is 1, 2 and 3),
with ``regions_class_order`` saying how the regions are painted back into one label map; such a dataset is trained
with one sigmoid output per region. autounet does not train regions yet: it would train the plain values as separate
classes instead, a different task, and report Dice for classes the dataset did not ask for. So ``check``, ``plan``
(and ``fingerprint``, which it needs) and ``train`` stop with :func:`region_labels_message`. ``autounet evaluate``
still evaluates regions (``--dataset-json``).
"""

from __future__ import annotations

from pathlib import Path

from autounet.dataset.description import DatasetDescription, parse_dataset_json
from autounet.errors import DatasetError
from autounet.jsonio import read_json
from autounet.typing import PathType


def region_labels_message(description: DatasetDescription, source: str = "dataset.json") -> str | None:
    """Why a dataset with region labels cannot be trained and what to do; None for plain labels.

    Parameters
    ----------
    description : DatasetDescription
        The parsed ``dataset.json``.
    source : str
        The file, for the message.

    Returns
    -------
    str or None

    Examples
    --------
    >>> from autounet.dataset.description import parse_dataset_json
    >>> plain = parse_dataset_json({"channel_names": {"0": "MRI"}, "labels": {"background": 0, "a": 1},
    ...                             "file_ending": ".nii.gz"})
    >>> region_labels_message(plain) is None
    True
    >>> brats = parse_dataset_json({"channel_names": {"0": "T1"}, "file_ending": ".nii.gz",
    ...     "labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3},
    ...     "regions_class_order": [1, 2, 3]})
    >>> print(region_labels_message(brats).split(";")[0])
    dataset.json declares region labels (whole tumor = [1, 2, 3], tumor core = [2, 3]) and regions_class_order [1, 2, 3]
    """
    if not description.regions:
        return None
    regions = ", ".join(f"{name} = {list(values)}" for name, values in description.regions.items())
    order = description.extra.get("regions_class_order")
    ordered = f" and regions_class_order {list(order)}" if isinstance(order, (list, tuple)) else ""
    return (
        f"{source} declares region labels ({regions}){ordered}; autounet does not train regions yet and would "
        "train the label values as separate plain classes instead, a different task. To train plain labels, give "
        'every label one value (e.g. "edema": 1, "non-enhancing tumor": 2, "enhancing tumour": 3) and drop '
        "regions_class_order; to train the regions, use nnU-Net v2 until autounet supports them "
        "(autounet evaluate --dataset-json already evaluates regions)"
    )


def refuse_region_labels(description: DatasetDescription, source: str = "dataset.json") -> None:
    """Raise :class:`~autounet.errors.DatasetError` with :func:`region_labels_message` when regions are declared.

    Parameters
    ----------
    description : DatasetDescription
    source : str
        The file, for the message.

    Raises
    ------
    DatasetError
        When ``description`` declares region labels.
    """
    message = region_labels_message(description, source)
    if message is not None:
        raise DatasetError(message)


def refuse_regions_in_folder(folder: PathType) -> None:
    """:func:`refuse_region_labels` for the ``dataset.json`` a results folder keeps (nothing when it has none).

    Parameters
    ----------
    folder : str or Path
        A results folder (``autounet train RESULTS``) or dataset folder.

    Raises
    ------
    DatasetError
        When its ``dataset.json`` declares region labels. A copy that cannot be parsed is left to the stage that
        reads it.
    """
    path = Path(folder) / "dataset.json"
    if not path.is_file():
        return
    try:
        description = parse_dataset_json(read_json(path), str(path))
    except (DatasetError, ValueError, OSError, KeyError, TypeError):
        return
    refuse_region_labels(description, str(path))
