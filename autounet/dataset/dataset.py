"""One interface over both dataset layouts: list cases, their files, and read them as arrays."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from autounet.dataset.description import DatasetDescription, dataset_name_from_folder, has_name, parse_dataset_json
from autounet.errors import DatasetError
from autounet.io import Image, read_image
from autounet.io.formats import file_extension, strip_extension
from autounet.jsonio import read_json
from autounet.typing import PathType

_CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


@dataclass(frozen=True)
class Case:
    """One case: its identifier, the image file(s) and the label file.

    ``image_files`` holds one file per channel (nnU-Net v2 layout) or a single file whose fourth axis
    holds all channels (MSD layout). ``label_file`` is None for test cases.
    """

    case_id: str
    image_files: tuple[Path, ...]
    label_file: Path | None = None

    def describe(self) -> str:
        return f"case {self.case_id} ({', '.join(p.name for p in self.image_files)})"


class Dataset:
    """A dataset folder: description, training cases and test cases.

    Use :func:`load_dataset` to create one. Reading is lazy; nothing is decoded until
    :meth:`read_images` or :meth:`read_label` is called.
    """

    def __init__(self, root: Path, description: DatasetDescription, training: list[Case], test: list[Case]) -> None:
        self.root = root
        self.description = description
        self.training = tuple(training)
        self.test = tuple(test)

    def __repr__(self) -> str:
        d = self.description
        return (
            f"Dataset({d.name!r}, layout={d.layout}, {len(self.training)} training cases, "
            f"channels={list(d.channel_names)}, labels={d.labels})"
        )

    @property
    def name(self) -> str:
        return self.description.name

    @property
    def num_channels(self) -> int:
        return self.description.num_channels

    @property
    def case_ids(self) -> list[str]:
        return [case.case_id for case in self.training]

    def case(self, case_id: str) -> Case:
        for case in self.training + self.test:
            if case.case_id == case_id:
                return case
        raise KeyError(f"no case {case_id!r} in {self.root}")

    def read_images(self, case: Case) -> Image:
        """Read all channels of ``case`` as one :class:`Image` of shape ``(C, z, y, x)``."""
        return read_case_images(case.image_files, self.num_channels)

    def read_label(self, case: Case) -> Image:
        """Read the label map of ``case`` as an :class:`Image` of shape ``(1, z, y, x)``."""
        if case.label_file is None:
            raise DatasetError(f"{case.describe()} has no label file")
        label = read_image(case.label_file)
        if label.num_channels != 1:
            raise DatasetError(
                f"{case.label_file}: a label map must have one channel, found {label.num_channels}; "
                "save it as a single-channel integer image"
            )
        return label


def read_case_images(files: tuple[Path, ...] | list[Path], num_channels: int | None = None) -> Image:
    """Read and stack the channel files of one case.

    Parameters
    ----------
    files : sequence of Path
        One file per channel, or a single file holding all channels (4D NIfTI, RGB image).
    num_channels : int, optional
        Expected number of channels; a different count raises :class:`DatasetError`.
    """
    images = [read_image(f) for f in files]
    first = images[0]
    for other in images[1:]:
        if other.spatial_shape != first.spatial_shape:
            raise DatasetError(
                f"{other.source}: shape {other.spatial_shape} differs from {first.source} {first.spatial_shape}; "
                "all channel files of a case must be co-registered on the same grid"
            )
    data = first.data if len(images) == 1 else np.concatenate([im.data for im in images], axis=0)
    if num_channels is not None and data.shape[0] != num_channels:
        raise DatasetError(
            f"{', '.join(str(f) for f in files)}: found {data.shape[0]} channel(s) but dataset.json declares "
            f"{num_channels}; fix the image or the channel list in dataset.json"
        )
    return Image(data=data, geometry=first.geometry, source=", ".join(str(f) for f in files))


def load_dataset(root: PathType) -> Dataset:
    """Open a dataset folder in the MSD or nnU-Net v2 layout.

    Parameters
    ----------
    root : str or Path
        Folder holding ``dataset.json``, ``imagesTr/``, ``labelsTr/`` and optionally ``imagesTs/``. When
        ``dataset.json`` has no ``name``, the folder names the dataset as in nnU-Net: ``Dataset900_BraTS`` (or
        ``Task04_Hippocampus``) is called ``BraTS`` (``Hippocampus``), any other folder by its own name.

    Raises
    ------
    DatasetError
        If the folder or its ``dataset.json`` is missing or unusable. Problems with individual cases are
        not raised here; ``autounet check`` lists them.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found; pass the folder that holds dataset.json")
    json_path = root / "dataset.json"
    if not json_path.is_file():
        raise DatasetError(
            f"{root}: no dataset.json; an MSD or nnU-Net v2 dataset needs one. For a folder of images and "
            'masks, run "autounet import" first'
        )
    try:
        raw = read_json(json_path)
    except ValueError as err:
        raise DatasetError(str(err)) from None
    description = parse_dataset_json(raw, str(json_path))
    if not has_name(raw):  # nnU-Net v2 makes "name" optional: the folder names the dataset (Dataset900_X -> X)
        description = replace(description, name=dataset_name_from_folder(root.resolve().name))
    if description.layout == "msd":
        training, test = _msd_cases(root, raw)
    else:
        training, test = _nnunet_v2_cases(root, raw, description)
    return Dataset(root, description, training, test)


def _resolve(root: Path, relative: str) -> Path:
    return (root / relative).resolve() if not Path(relative).is_absolute() else Path(relative)


def _visible_files(folder: Path, ending: str) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name.endswith(ending))


def _msd_cases(root: Path, raw: dict) -> tuple[list[Case], list[Case]]:
    training = []
    for index, entry in enumerate(raw.get("training", [])):
        if not isinstance(entry, dict) or "image" not in entry:
            raise DatasetError(
                f"{root / 'dataset.json'}: training entry {index} must be {{\"image\": ..., \"label\": ...}}, got {entry!r}"
            )
        image = _resolve(root, entry["image"])
        label = _resolve(root, entry["label"]) if entry.get("label") else None
        training.append(Case(strip_extension(image), (image,), label))
    test_entries = raw.get("test", [])
    if test_entries:
        test = [
            Case(strip_extension(p), (_resolve(root, p if isinstance(p, str) else p["image"]),))
            for p in test_entries
        ]
    else:
        test = [Case(strip_extension(p), (p,)) for p in _visible_files(root / "imagesTs", ".nii.gz")]
    return training, test


def _group_channel_files(folder: Path, ending: str) -> dict[str, dict[int, Path]]:
    cases: dict[str, dict[int, Path]] = {}
    for path in _visible_files(folder, ending):
        match = _CHANNEL_FILE.match(path.name[: -len(ending)])
        if match:
            cases.setdefault(match["case"], {})[int(match["channel"])] = path
    return cases


def _nnunet_v2_cases(root: Path, raw: dict, description: DatasetDescription) -> tuple[list[Case], list[Case]]:
    ending = description.file_ending
    channels = description.num_channels
    explicit = raw.get("dataset")
    if isinstance(explicit, dict):
        training = [
            Case(case_id, tuple(_resolve(root, p) for p in entry["images"]), _resolve(root, entry["label"]) if entry.get("label") else None)
            for case_id, entry in sorted(explicit.items())
        ]
    else:
        grouped = _group_channel_files(root / "imagesTr", ending)
        training = [
            Case(
                case_id,
                tuple(root / "imagesTr" / f"{case_id}_{c:04d}{ending}" for c in range(channels)),
                root / "labelsTr" / f"{case_id}{ending}",
            )
            for case_id in sorted(grouped)
        ]
    test = [
        Case(case_id, tuple(root / "imagesTs" / f"{case_id}_{c:04d}{ending}" for c in range(channels)))
        for case_id in sorted(_group_channel_files(root / "imagesTs", ending))
    ]
    return training, test


def infer_file_ending(paths: list[Path]) -> str:
    """Most common extension among ``paths`` (used when ``dataset.json`` does not say)."""
    endings = [file_extension(p) for p in paths]
    return max(set(endings), key=endings.count) if endings else ".nii.gz"
