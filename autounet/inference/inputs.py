"""Find the cases of an input folder (MSD single files, nnU-Net v2 ``_0000`` channel files, 2D images) and name
their outputs."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autounet.dicom.cases import contains_dicom, find_dicom_cases
from autounet.dicom.headers import looks_like_dicom
from autounet.errors import DatasetError
from autounet.io.formats import SUPPORTED_EXTENSIONS, file_extension, strip_extension
from autounet.typing import PathType

_CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")

#: Output format for an input format that cannot hold a segmentation faithfully or atomically: JPEG is lossy, and
#: the header+data pairs (.mhd/.raw, .nhdr/.raw) cannot be renamed into place as one file.
OUTPUT_EXTENSION = {".jpg": ".png", ".jpeg": ".png", ".mhd": ".mha", ".nhdr": ".nrrd"}
#: Image-file output (``--output-format nifti``) of a case read from DICOM series.
DICOM_IMAGE_OUTPUT_EXTENSION = ".nii.gz"


@dataclass(frozen=True)
class InputCase:
    """One case to predict: its identifier, its channel files in channel order, and the extension of its outputs."""

    case_id: str
    files: tuple[Path, ...]
    problem: str = ""
    #: DICOM input: one :class:`~autounet.dicom.discovery.DicomSeries` per channel (``files`` then holds their folders).
    dicom: tuple[Any, ...] = ()

    @property
    def output_extension(self) -> str:
        if self.dicom:
            return DICOM_IMAGE_OUTPUT_EXTENSION
        ext = file_extension(self.files[0])
        return OUTPUT_EXTENSION.get(ext, ext)

    def describe(self) -> str:
        if self.dicom:
            return "; ".join(s.describe() for s in self.dicom)
        return ", ".join(str(f) for f in self.files)


def find_input_cases(
    input_dir: PathType, num_channels: int, file_ending: str | None = None, dicom_channels: Sequence[tuple[str, str]] | None = None
) -> list[InputCase]:
    """The cases of a folder of images, sorted by case id.

    Parameters
    ----------
    input_dir : str or Path
        Folder of image files. Hidden files, sub-folders and unsupported files are ignored.
    num_channels : int
        Channels the model expects.
    file_ending : str, optional
        Only consider files ending with this (e.g. ``".nii.gz"``).
    dicom_channels : sequence of (name, pattern), optional
        Which DICOM series is which channel (glob on SeriesDescription); see
        :func:`~autounet.dicom.cases.find_dicom_cases`.

    Returns
    -------
    list of InputCase

    Notes
    -----
    The folder is in the nnU-Net v2 layout when every file is named ``CASE_XXXX.ext``, every case has ``_0000`` and
    at least half of the cases have exactly the channels ``0 .. num_channels - 1``: the files are grouped by ``CASE``
    and ordered by channel (outputs are ``CASE.ext``); a case with a missing or an extra channel file carries a
    ``problem`` and fails alone when predicted. Otherwise every file is one case holding all its channels (MSD
    ``imagesTs``: 4D NIfTI; RGB or grey 2D images; numbered 2D series) and outputs keep the input's name.

    DICOM series are found too (unless ``file_ending`` is given): each sub-folder holding DICOM files is one case,
    and DICOM files directly in the folder are grouped by series (see :func:`~autounet.dicom.cases.find_dicom_cases`).

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
    dicom_cases = _dicom_cases(input_dir, num_channels, files, dicom_channels) if file_ending is None else []
    if not files and not dicom_cases:
        raise DatasetError(
            f"{input_dir}: no image files ({file_ending or ', '.join(SUPPORTED_EXTENSIONS)}) and no DICOM series; pass "
            "the folder of the images to segment"
        )
    grouped = _group_channel_files(files, num_channels) if files else None
    if not files:
        cases = []
    elif grouped is not None:
        cases = [
            InputCase(case_id, tuple(channels[k] for k in sorted(channels)), _channel_problem(case_id, channels, num_channels))
            for case_id, channels in grouped.items()
        ]
    else:
        cases = [InputCase(strip_extension(p), (p,)) for p in files]
    cases.extend(dicom_cases)
    seen: dict[str, InputCase] = {}
    for case in cases:
        if case.case_id in seen:
            raise DatasetError(
                f"{input_dir}: case {case.case_id} is there twice ({seen[case.case_id].describe()} and "
                f"{case.describe()}); keep one format, or pass file_ending (--file-ending)"
            )
        seen[case.case_id] = case
    return sorted(cases, key=lambda c: c.case_id)


def _dicom_cases(input_dir: Path, num_channels: int, image_files: Sequence[Path],
                 channels: Sequence[tuple[str, str]] | None) -> list[InputCase]:
    """DICOM cases of the folder (sub-folders and loose DICOM files), or none when nothing looks like DICOM."""
    taken = set(image_files)
    loose = [p for p in input_dir.iterdir() if p.is_file() and p not in taken and not p.name.startswith(".")]
    folders = [p for p in input_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if not any(looks_like_dicom(p) for p in loose) and not any(contains_dicom(f) for f in folders):
        return []
    found = find_dicom_cases(input_dir, num_channels, channels, skip_files=list(taken))
    return [InputCase(c.case_id, tuple(s.folder for s in c.series) or (c.folder,), c.problem, dicom=c.series) for c in found]


def _group_channel_files(files: Sequence[Path], num_channels: int) -> dict[str, dict[int, Path]] | None:
    """Channel files by case if the folder is in the nnU-Net v2 layout, else None.

    The layout holds when every file is named ``CASE_XXXX``, every case has a ``_0000`` file and at least half of the
    cases have exactly the channels ``0 .. num_channels - 1`` (so one case with a missing or extra channel file is
    reported as such, while a numbered series of 2D images, ``slice_0000`` to ``slice_0099``, stays one case per file).
    """
    grouped: dict[str, dict[int, Path]] = {}
    for path in files:
        match = _CHANNEL_FILE.match(strip_extension(path))
        if not match:
            return None
        grouped.setdefault(match["case"], {})[int(match["channel"])] = path
    expected = list(range(num_channels))
    complete = sum(1 for channels in grouped.values() if sorted(channels) == expected)
    if any(0 not in channels for channels in grouped.values()) or 2 * complete < len(grouped):
        return None
    return grouped


def _channel_problem(case_id: str, channels: dict[int, Path], num_channels: int) -> str:
    """What is wrong with a case's channel files ("" when nothing is)."""
    ending = file_extension(channels[0])
    missing = [f"{case_id}_{c:04d}{ending}" for c in range(num_channels) if c not in channels]
    extra = [channels[c].name for c in sorted(channels) if c >= num_channels]
    parts = []
    if missing:
        parts.append(f"channel file(s) {', '.join(missing)} missing")
    if extra:
        parts.append(f"unexpected channel file(s) {', '.join(extra)}")
    if not parts:
        return ""
    return (
        f"{channels[0].parent}: case {case_id}: {'; '.join(parts)}; the model takes {num_channels} channel(s), "
        f"{case_id}_0000{ending} to {case_id}_{num_channels - 1:04d}{ending}"
    )


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
