"""One interface over both dataset layouts: list cases, their files, and read them as arrays."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from autounet.dataset.description import DatasetDescription, dataset_name_from_folder, has_name, parse_dataset_json
from autounet.errors import DatasetError
from autounet.io import Image, read_image
from autounet.io.formats import file_extension, strip_extension
from autounet.jsonio import read_json
from autounet.safe_names import ALLOWED_PUNCTUATION, UnsafeNameError, name_problem
from autounet.typing import PathType

_CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
#: Punctuation a case id may hold, as the message lists it.
SAFE_PUNCTUATION = "".join(sorted(ALLOWED_PUNCTUATION - {" "}))


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


def load_dataset(root: PathType, check_names: bool = True) -> Dataset:
    """Open a dataset folder in the MSD or nnU-Net v2 layout.

    Parameters
    ----------
    root : str or Path
        Folder holding ``dataset.json``, ``imagesTr/``, ``labelsTr/`` and optionally ``imagesTs/``. When
        ``dataset.json`` has no ``name``, the folder names the dataset as in nnU-Net: ``Dataset900_BraTS`` (or
        ``Task04_Hippocampus``) is called ``BraTS`` (``Hippocampus``), any other folder by its own name.
    check_names : bool
        Refuse case ids that cannot be file names (:func:`require_safe_case_ids`). ``autounet check`` passes False
        and reports each of them instead.

    Raises
    ------
    DatasetError
        If the folder or its ``dataset.json`` is missing or unusable (an entry of the wrong type is named with the
        expected one). Problems with individual cases' files are not raised here; ``autounet check`` lists them.
    UnsafeNameError
        If a case id would point outside the folders it is written to (``"../x"``, an absolute path), is not a
        usable file name, or repeats.
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
    dataset = Dataset(root, description, training, test)
    if check_names:
        require_safe_case_ids(dataset)
    return dataset


def case_id_problems(dataset: Dataset) -> list[tuple[str, str]]:
    """``(case id, why it cannot be a file name)`` for every unusable or repeated case id of ``dataset``.

    Parameters
    ----------
    dataset : Dataset
        From :func:`load_dataset`.

    Examples
    --------
    >>> from autounet.dataset.description import parse_dataset_json
    >>> description = parse_dataset_json({"modality": {"0": "MRI"}, "labels": {"0": "background"}})
    >>> cases = [Case("a", ()), Case("../../x", ()), Case("a", ())]
    >>> case_id_problems(Dataset(Path("d"), description, cases, []))
    [('../../x', "contains a path separator ('/')"), ('a', 'appears 2 times among the training cases')]
    """
    problems = [(case.case_id, problem) for case in dataset.training + dataset.test
                if (problem := name_problem(case.case_id)) is not None]
    for cases, what in ((dataset.training, "training"), (dataset.test, "test")):
        seen = Counter(case.case_id for case in cases)
        problems += [(case_id, f"appears {count} times among the {what} cases") for case_id, count in seen.items()
                     if count > 1]
    return problems


def require_safe_case_ids(dataset: Dataset) -> None:
    """Refuse a dataset whose case ids cannot become file names; every offending id is listed.

    Case ids become the names of preprocessed arrays and predictions, so ``"../../x"`` or ``"/tmp/x"`` would write
    (and delete) files outside the output folder.

    Parameters
    ----------
    dataset : Dataset
        From :func:`load_dataset`.

    Raises
    ------
    UnsafeNameError
        Naming ``dataset.json``, each id with its problem, and the fix.
    """
    problems = case_id_problems(dataset)
    if problems:
        listed = "; ".join(f"{case_id!r} {problem}" for case_id, problem in problems[:10])
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise UnsafeNameError(
            f"{dataset.root / 'dataset.json'}: case id(s) that cannot be used as file names: {listed}{more}. Rename "
            f"the cases (dataset.json entries or file names) to letters, digits and {SAFE_PUNCTUATION} without path "
            f'separators or "..", each id once; "autounet check" lists every problem'
        )


def _resolve(root: Path, relative: str) -> Path:
    return (root / relative).resolve() if not Path(relative).is_absolute() else Path(relative)


def _visible_files(folder: Path, ending: str) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name.endswith(ending))


def _entry_path(root: Path, value: Any, where: str, key: str) -> Path:
    """A file path from a ``dataset.json`` entry, or an error naming the entry and the expected type."""
    if not isinstance(value, str) or not value.strip():
        shown = repr(value) if len(repr(value)) < 60 else repr(value)[:57] + "..."
        raise DatasetError(
            f"{root / 'dataset.json'}: {where} has {key!r} {shown} ({type(value).__name__}); expected a file path "
            f'(text) relative to the dataset folder, e.g. "./imagesTr/case_001.nii.gz"'
        )
    return _resolve(root, value)


def _msd_cases(root: Path, raw: dict) -> tuple[list[Case], list[Case]]:
    training = []
    for index, entry in enumerate(raw.get("training", [])):
        if not isinstance(entry, dict) or "image" not in entry:
            raise DatasetError(
                f"{root / 'dataset.json'}: training entry {index} must be {{\"image\": ..., \"label\": ...}}, got {entry!r}"
            )
        image = _entry_path(root, entry["image"], f"training entry {index}", "image")
        label = _entry_path(root, entry["label"], f"training entry {index}", "label") if entry.get("label") not in (None, "") else None
        training.append(Case(strip_extension(image), (image,), label))
    test_entries = raw.get("test", [])
    if not isinstance(test_entries, list):
        raise DatasetError(f"{root / 'dataset.json'}: 'test' must be a list of image paths, got "
                           f"{type(test_entries).__name__}")
    if test_entries:
        test = []
        for index, entry in enumerate(test_entries):
            value = entry.get("image") if isinstance(entry, dict) else entry
            image = _entry_path(root, value, f"test entry {index}", "image")
            test.append(Case(strip_extension(image), (image,)))
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
    if explicit is not None and not isinstance(explicit, dict):
        raise DatasetError(f"{root / 'dataset.json'}: 'dataset' must map case ids to {{\"images\": [...], "
                           f"\"label\": ...}}, got {type(explicit).__name__}")
    if isinstance(explicit, dict):
        training = []
        for case_id, entry in sorted(explicit.items()):
            where = f"dataset entry {case_id!r}"
            images = entry.get("images") if isinstance(entry, dict) else None
            if not isinstance(images, list) or not images:
                raise DatasetError(
                    f"{root / 'dataset.json'}: {where} needs \"images\": a list of one file path per channel "
                    f'(and "label": a path), e.g. {{"images": ["imagesTr/{case_id}_0000{ending}"], '
                    f'"label": "labelsTr/{case_id}{ending}"}}; got {entry!r}'
                )
            label = entry.get("label")
            training.append(Case(case_id, tuple(_entry_path(root, p, where, "images") for p in images),
                                 _entry_path(root, label, where, "label") if label is not None else None))
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
