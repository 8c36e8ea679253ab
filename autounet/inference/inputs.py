"""Find the cases of an input folder (MSD single files, nnU-Net v2 ``_0000`` channel files, 2D images) and name
their outputs."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autounet.errors import DatasetError
from autounet.io.formats import SUPPORTED_EXTENSIONS, file_extension, strip_extension
from autounet.typing import PathType

_CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")

#: Output format for an input format that cannot hold a segmentation faithfully or atomically: JPEG is lossy, and
#: the header+data pairs (.mhd/.raw, .nhdr/.raw) cannot be renamed into place as one file.
OUTPUT_EXTENSION = {".jpg": ".png", ".jpeg": ".png", ".mhd": ".mha", ".nhdr": ".nrrd"}


@dataclass(frozen=True)
class InputCase:
    """One case to predict: its identifier, its channel files in channel order, and the extension of its outputs."""

    case_id: str
    files: tuple[Path, ...]

    @property
    def output_extension(self) -> str:
        ext = file_extension(self.files[0])
        return OUTPUT_EXTENSION.get(ext, ext)

    def describe(self) -> str:
        return ", ".join(str(f) for f in self.files)


def find_input_cases(input_dir: PathType, num_channels: int, file_ending: str | None = None) -> list[InputCase]:
    """The cases of a folder of images, sorted by case id.

    Parameters
    ----------
    input_dir : str or Path
        Folder of image files. Hidden files, sub-folders and unsupported files are ignored.
    num_channels : int
        Channels the model expects.
    file_ending : str, optional
        Only consider files ending with this (e.g. ``".nii.gz"``).

    Returns
    -------
    list of InputCase

    Notes
    -----
    The folder is in the nnU-Net v2 layout when every file is named ``CASE_XXXX.ext`` with a channel index
    ``XXXX < num_channels``: the files are grouped by ``CASE`` and ordered by channel (outputs are ``CASE.ext``).
    Otherwise every file is one case holding all its channels (MSD ``imagesTs``: 4D NIfTI; RGB or grey 2D images)
    and outputs keep the input's name. Which channels a case lacks is checked when it is predicted, so one bad case
    does not stop the others.

    Raises
    ------
    FileNotFoundError
        If the folder does not exist.
    DatasetError
        If it holds no image files, or one case id occurs with two file types.
    """
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"{input_dir}: input folder not found; pass the folder that holds the images")
    files = [
        p
        for p in sorted(input_dir.iterdir())
        if p.is_file()
        and not p.name.startswith(".")
        and (p.name.endswith(file_ending) if file_ending else file_extension(p) in SUPPORTED_EXTENSIONS)
    ]
    if not files:
        raise DatasetError(
            f"{input_dir}: no image files ({file_ending or ', '.join(SUPPORTED_EXTENSIONS)}); pass the folder of the "
            "images to segment"
        )
    grouped = _group_channel_files(files, num_channels)
    if grouped is not None:
        cases = [InputCase(case_id, tuple(channels[k] for k in sorted(channels))) for case_id, channels in grouped.items()]
    else:
        cases = [InputCase(strip_extension(p), (p,)) for p in files]
    seen: dict[str, InputCase] = {}
    for case in cases:
        if case.case_id in seen:
            raise DatasetError(
                f"{input_dir}: case {case.case_id} is there twice ({seen[case.case_id].describe()} and "
                f"{case.describe()}); keep one format, or pass file_ending (--file-ending)"
            )
        seen[case.case_id] = case
    return sorted(cases, key=lambda c: c.case_id)


def _group_channel_files(files: Sequence[Path], num_channels: int) -> dict[str, dict[int, Path]] | None:
    """Channel files by case when every file looks like ``CASE_XXXX`` with ``XXXX < num_channels``, else None."""
    grouped: dict[str, dict[int, Path]] = {}
    for path in files:
        match = _CHANNEL_FILE.match(strip_extension(path))
        if not match or int(match["channel"]) >= num_channels:
            return None
        grouped.setdefault(match["case"], {})[int(match["channel"])] = path
    return grouped


def cases_from_files(files: Iterable[Sequence[PathType] | PathType], case_ids: Sequence[str] | None = None) -> list[InputCase]:
    """Cases from explicit file lists: each item is one file (all channels) or the channel files of one case.

    Case ids default to the first file's name without extension and without a ``_0000`` channel suffix when the
    case has several files or the suffix is there.
    """
    cases = []
    for index, item in enumerate(files):
        paths = (Path(item),) if isinstance(item, (str, os.PathLike)) else tuple(Path(p) for p in item)
        if not paths:
            raise ValueError(f"case {index} has no files; give one or more image files per case")
        if case_ids is not None:
            case_id = case_ids[index]
        else:
            stem = strip_extension(paths[0])
            match = _CHANNEL_FILE.match(stem)
            case_id = match["case"] if match else stem
        cases.append(InputCase(case_id, paths))
    return cases
