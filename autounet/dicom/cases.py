"""Turn a folder of DICOM series into cases to predict: one sub-folder per case, or loose files grouped by series
(or by study when series are mapped to channels with patterns such as ``T2=*T2*,ADC=*ADC*``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from autounet.dicom.discovery import DicomSeries, discover
from autounet.dicom.headers import looks_like_dicom
from autounet.errors import DatasetError
from autounet.safe_names import name_problem
from autounet.typing import PathType

logger = logging.getLogger(__name__)

ChannelMap = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class DicomCase:
    """One case of DICOM input: its id, its image series in channel order, and a problem if it cannot be read."""

    case_id: str
    series: tuple[DicomSeries, ...]
    problem: str = ""
    folder: Path = Path(".")


def parse_channel_map(text: str | dict | None) -> list[tuple[str, str]] | None:
    """``"T2=*T2*,ADC=*ADC*"`` (or a dict from dataset.json) -> ``[("T2", "*T2*"), ("ADC", "*ADC*")]``.

    Patterns are globs matched against each series' SeriesDescription (or number or UID), ignoring case.

    Examples
    --------
    >>> parse_channel_map("T2=*t2*, ADC=*ADC*")
    [('T2', '*t2*'), ('ADC', '*ADC*')]
    >>> parse_channel_map({"CT": "*"})
    [('CT', '*')]
    """
    if text is None or text == "":
        return None
    if isinstance(text, dict):
        return [(str(k), str(v)) for k, v in text.items()]
    pairs = []
    for item in str(text).split(","):
        name, sep, pattern = item.partition("=")
        if not sep or not name.strip() or not pattern.strip():
            raise DatasetError(f"--dicom-channels {text!r}: each item must be NAME=PATTERN, e.g. T2=*T2*,ADC=*ADC*")
        pairs.append((name.strip(), pattern.strip()))
    return pairs


def contains_dicom(folder: PathType) -> bool:
    """True if ``folder`` (or a sub-folder) holds a file that looks like DICOM; stops at the first one."""
    for path in _walk(Path(folder)):
        if looks_like_dicom(path):
            return True
    return False


def _walk(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            yield from _walk(path)
        elif path.is_file():
            yield path


def find_dicom_cases(input_dir: PathType, num_channels: int, channels: ChannelMap | None = None,
                     skip_files: Sequence[Path] = ()) -> list[DicomCase]:
    """The DICOM cases of a folder, sorted by case id.

    Parameters
    ----------
    input_dir : str or Path
        Each sub-folder is one case (its name is the case id); DICOM files directly in the folder are grouped by
        SeriesInstanceUID, one case per series (case id: the UID), or by StudyInstanceUID when ``channels`` is given.
    num_channels : int
        Channels the model expects.
    channels : sequence of (name, pattern), optional
        Which series is which channel, by a glob on SeriesDescription; needed when the model takes several channels.
    skip_files : sequence of Path
        Files of the folder already taken as images of another format.

    Returns
    -------
    list of DicomCase
        A case that cannot be formed (several series and no way to pick, a channel pattern that matches none or
        several) carries a ``problem`` and fails alone when predicted.
    """
    input_dir = Path(input_dir)
    if channels is not None and len(channels) != num_channels:
        raise DatasetError(f"--dicom-channels names {len(channels)} channel(s) ({', '.join(n for n, _ in channels)}) but "
                           f"the model takes {num_channels}; give one NAME=PATTERN per channel")
    cases: list[DicomCase] = []
    skipped = set(skip_files)
    loose = [p for p in sorted(input_dir.iterdir()) if p.is_file() and not p.name.startswith(".") and p not in skipped]
    if loose:
        found = discover(loose)
        images = found.of_kind("image")
        if channels is None:
            cases.extend(_case(series.uid, [series], num_channels, None, str(input_dir)) for series in images)
        else:
            studies: dict[str, list[DicomSeries]] = {}
            for series in images:
                studies.setdefault(series.study_uid or series.uid, []).append(series)
            cases.extend(_case(study, members, num_channels, channels, str(input_dir)) for study, members in studies.items())
    for folder in sorted(p for p in input_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not contains_dicom(folder):
            continue
        images = discover(folder).of_kind("image")
        case_id = folder.name if name_problem(folder.name) is None else (images[0].uid if images else folder.name)
        if not images:  # only Segmentations, RTSTRUCTs, reports (e.g. an earlier output folder): not a case
            logger.info("%s: no DICOM image series (only other objects); not a case", folder)
            continue
        cases.append(_case(case_id, images, num_channels, channels, str(folder)))
    return sorted(cases, key=lambda c: c.case_id)


def _case(case_id: str, images: list[DicomSeries], num_channels: int, channels: ChannelMap | None, where: str) -> DicomCase:
    if channels is None:
        if num_channels != 1:
            return DicomCase(case_id, tuple(images), f"{where}: the model takes {num_channels} channels; say which series "
                             "is which with --dicom-channels NAME=PATTERN,... (patterns match the SeriesDescription)")
        if len(images) > 1:
            listing = "; ".join(s.describe() for s in images[:5])
            return DicomCase(case_id, tuple(images), f"{where}: {len(images)} image series and no way to pick one "
                             f"({listing}); put each series in its own folder, or choose with --dicom-channels NAME=PATTERN")
        return DicomCase(case_id, tuple(images))
    chosen = []
    for name, pattern in channels:
        matches = [s for s in images if s.matches(pattern)]
        if len(matches) != 1:
            found = "; ".join(f'"{s.description}" ({s.uid})' for s in images[:6]) or "none"
            return DicomCase(case_id, tuple(images), f"{where}: channel {name} pattern {pattern!r} matches "
                             f"{len(matches)} series (needs exactly one); series descriptions: {found}; adjust "
                             "--dicom-channels")
        chosen.append(matches[0])
    return DicomCase(case_id, tuple(chosen))


#: Channels of one case must share the grid within this (mm) and direction cosines within 1e-3 (as the check does).
_GRID_ATOL_MM = 1e-2


def read_dicom_channels(series: Sequence[DicomSeries], resample: bool = False):
    """Read a case's series as one multi-channel image; the first series is the reference a Segmentation follows.

    Parameters
    ----------
    series : sequence of DicomSeries
        One image series per channel, in channel order.
    resample : bool
        Passed to :func:`~autounet.dicom.series.read_dicom_series`.

    Returns
    -------
    image : Image
        ``(C, z, y, x)`` with the first series' geometry.
    reference : DicomVolume
        The first series, for writing the Segmentation.

    Raises
    ------
    DatasetError
        If the series are not on one grid (the model needs co-registered channels).
    """
    import numpy as np

    from autounet.dicom.series import read_dicom_series
    from autounet.io import Image

    volumes = [read_dicom_series(s, resample=resample) for s in series]
    reference = volumes[0]
    for other in volumes[1:]:
        a, b = reference.image.geometry, other.image.geometry
        same = (other.image.spatial_shape == reference.image.spatial_shape
                and np.allclose(a.origin, b.origin, atol=_GRID_ATOL_MM) and np.allclose(a.spacing, b.spacing, atol=_GRID_ATOL_MM)
                and np.allclose(a.direction, b.direction, atol=1e-3))
        if not same:
            raise DatasetError(
                f"{other.series.describe()} is not on the grid of {reference.series.describe()} (shape "
                f"{other.image.spatial_shape} vs {reference.image.spatial_shape}, origin {b.origin} vs {a.origin}); the "
                "channels of a case must be co-registered: resample them onto one grid first"
            )
    data = reference.image.data if len(volumes) == 1 else np.concatenate(
        [v.image.data.astype(np.float32, copy=False) for v in volumes], axis=0)
    source = ", ".join(str(v.series.folder) for v in volumes)
    return Image(data=data, geometry=reference.image.geometry, source=source), reference
