"""Parse ``dataset.json`` in the Medical Segmentation Decathlon or the nnU-Net v2 style."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from autounet.errors import DatasetError

Layout = Literal["msd", "nnunet_v2"]

#: nnU-Net's numbered folder names: ``Dataset123_Name`` (v2) and ``Task04_Name`` (MSD, nnU-Net v1).
_NUMBERED_FOLDER = re.compile(r"^(?:Dataset\d{3}|Task\d{2,3})_(?P<name>.+)$")


@dataclass(frozen=True)
class DatasetDescription:
    """What ``dataset.json`` says about a dataset, independent of its layout.

    Parameters
    ----------
    name : str
        Dataset name.
    channel_names : tuple of str
        Modality or normalisation name per input channel (``"CT"``, ``"MRI"``, ``"noNorm"``, ...).
    labels : dict of str to int
        Label name -> integer value, background included.
    regions : dict of str to tuple of int
        nnU-Net v2 region labels (name -> values that make up the region); empty for plain labels.
    file_ending : str
        Image file extension, e.g. ``".nii.gz"``.
    layout : {"msd", "nnunet_v2"}
        The folder layout the description came from.
    num_training : int or None
        ``numTraining`` as declared, to compare with the files found.
    """

    name: str
    channel_names: tuple[str, ...]
    labels: dict[str, int]
    file_ending: str
    layout: Layout
    regions: dict[str, tuple[int, ...]] = field(default_factory=dict)
    num_training: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_channels(self) -> int:
        return len(self.channel_names)

    @property
    def label_values(self) -> tuple[int, ...]:
        """Sorted declared label values (background included)."""
        values = set(self.labels.values())
        for region in self.regions.values():
            values.update(region)
        return tuple(sorted(values))

    @property
    def foreground_labels(self) -> tuple[int, ...]:
        return tuple(v for v in self.label_values if v != 0)

    @property
    def num_classes(self) -> int:
        """Number of network output channels: background plus one per label value."""
        return len(self.label_values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "channel_names": list(self.channel_names),
            "labels": dict(self.labels),
            "regions": {k: list(v) for k, v in self.regions.items()},
            "file_ending": self.file_ending,
            "layout": self.layout,
            "num_training": self.num_training,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DatasetDescription":
        return cls(
            name=data["name"],
            channel_names=tuple(data["channel_names"]),
            labels={str(k): int(v) for k, v in data["labels"].items()},
            regions={k: tuple(int(x) for x in v) for k, v in data.get("regions", {}).items()},
            file_ending=data["file_ending"],
            layout=data["layout"],
            num_training=data.get("num_training"),
        )


def dataset_name_from_folder(folder_name: str) -> str:
    """The name of a dataset whose ``dataset.json`` has none, from its folder, as nnU-Net names datasets.

    Parameters
    ----------
    folder_name : str
        Name of the dataset folder (not a path).

    Examples
    --------
    >>> dataset_name_from_folder("Dataset900_BraTSsample"), dataset_name_from_folder("Task04_Hippocampus")
    ('BraTSsample', 'Hippocampus')
    >>> dataset_name_from_folder("my_scans")
    'my_scans'
    """
    match = _NUMBERED_FOLDER.match(folder_name)
    return match.group("name") if match else folder_name


def has_name(data: dict[str, Any]) -> bool:
    """Whether a parsed ``dataset.json`` names its dataset (a non-empty ``name``).

    Parameters
    ----------
    data : dict
        The parsed ``dataset.json``.
    """
    return bool(str(data.get("name") or "").strip())


def parse_dataset_json(data: dict[str, Any], source: str = "dataset.json") -> DatasetDescription:
    """Build a :class:`DatasetDescription` from a parsed ``dataset.json`` of either style.

    MSD style has ``modality`` (index -> name) and ``labels`` (value -> name); nnU-Net v2 style has
    ``channel_names`` (index -> name) and ``labels`` (name -> value or list of values for regions).

    Examples
    --------
    >>> d = parse_dataset_json({"modality": {"0": "MRI"}, "labels": {"0": "background", "1": "a"},
    ...                         "training": [], "numTraining": 0})
    >>> d.layout, d.channel_names, d.labels
    ('msd', ('MRI',), {'background': 0, 'a': 1})
    >>> parse_dataset_json({"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1},
    ...                     "file_ending": ".nii.gz", "numTraining": 3}).labels
    {'background': 0, 'liver': 1}
    """
    if not isinstance(data, dict):
        raise DatasetError(f"{source}: expected a JSON object at the top level, got {type(data).__name__}")
    if "channel_names" in data or "modality" not in data and "file_ending" in data:
        return _parse_nnunet_v2(data, source)
    if "modality" in data:
        return _parse_msd(data, source)
    raise DatasetError(
        f"{source}: neither MSD style (needs 'modality', 'labels', 'training') nor nnU-Net v2 style "
        "(needs 'channel_names', 'labels', 'file_ending'); add the missing keys"
    )


def _indexed_names(mapping: Any, key: str, source: str) -> tuple[str, ...]:
    if not isinstance(mapping, dict) or not mapping:
        raise DatasetError(f"{source}: '{key}' must map channel indices to names, e.g. {{\"0\": \"MRI\"}}")
    try:
        indices = sorted(int(k) for k in mapping)
    except ValueError:
        raise DatasetError(f"{source}: '{key}' keys must be channel indices \"0\", \"1\", ...; got {list(mapping)}") from None
    if indices != list(range(len(indices))):
        raise DatasetError(f"{source}: '{key}' indices must be 0..{len(indices) - 1} without gaps; got {indices}")
    return tuple(str(mapping[str(i)] if str(i) in mapping else mapping[i]) for i in indices)


def _parse_msd(data: dict[str, Any], source: str) -> DatasetDescription:
    channel_names = _indexed_names(data.get("modality"), "modality", source)
    raw_labels = data.get("labels")
    if not isinstance(raw_labels, dict) or not raw_labels:
        raise DatasetError(f"{source}: 'labels' must map label values to names, e.g. {{\"0\": \"background\"}}")
    labels: dict[str, int] = {}
    for value, name in raw_labels.items():
        try:
            labels[str(name)] = int(value)
        except (TypeError, ValueError):
            raise DatasetError(
                f"{source}: MSD 'labels' keys must be integer values, got {value!r}; "
                "for name -> value labels use the nnU-Net v2 style with 'channel_names'"
            ) from None
    if 0 not in labels.values():
        labels = {"background": 0, **labels}
    if not isinstance(data.get("training", []), list):
        raise DatasetError(f"{source}: 'training' must be a list of {{\"image\": ..., \"label\": ...}}")
    return DatasetDescription(
        name=str(data.get("name", "dataset")),
        channel_names=channel_names,
        labels=labels,
        file_ending=str(data.get("file_ending", ".nii.gz")),
        layout="msd",
        num_training=_optional_int(data.get("numTraining")),
        extra={k: data[k] for k in ("description", "reference", "licence", "release", "tensorImageSize") if k in data},
    )


def _parse_nnunet_v2(data: dict[str, Any], source: str) -> DatasetDescription:
    channel_names = _indexed_names(data.get("channel_names"), "channel_names", source)
    raw_labels = data.get("labels")
    if not isinstance(raw_labels, dict) or not raw_labels:
        raise DatasetError(f"{source}: 'labels' must map names to values, e.g. {{\"background\": 0, \"tumor\": 1}}")
    labels: dict[str, int] = {}
    regions: dict[str, tuple[int, ...]] = {}
    for name, value in raw_labels.items():
        if isinstance(value, (list, tuple)):
            values = tuple(int(v) for v in value)
            if len(values) == 1:
                labels[str(name)] = values[0]
            else:
                regions[str(name)] = values
        else:
            try:
                labels[str(name)] = int(value)
            except (TypeError, ValueError):
                raise DatasetError(f"{source}: label {name!r} has value {value!r}; use an integer or a list of integers") from None
    if "file_ending" not in data:
        raise DatasetError(f"{source}: nnU-Net v2 style needs 'file_ending', e.g. \".nii.gz\"")
    return DatasetDescription(
        name=str(data.get("name", "dataset")),
        channel_names=channel_names,
        labels=labels,
        regions=regions,
        file_ending=str(data["file_ending"]),
        layout="nnunet_v2",
        num_training=_optional_int(data.get("numTraining")),
        extra={k: data[k] for k in ("dataset", "regions_class_order", "description", "reference", "licence") if k in data},
    )


def _optional_int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
