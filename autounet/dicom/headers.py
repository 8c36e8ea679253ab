"""Recognise DICOM files and read their headers with pydicom; the one place that knows the optional dependency."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from autounet.errors import ImageReadError
from autounet.typing import PathType

logger = logging.getLogger(__name__)

#: What to install for DICOM support (the ``dicom`` extra of setup.cfg).
DICOM_EXTRA_HINT = "DICOM support needs pydicom and highdicom: pip install 'autounet[dicom]' (or pip install pydicom highdicom)"

#: Bytes 128..131 of a DICOM Part 10 file (after the 128-byte preamble).
_DICM_MAGIC = b"DICM"
_PREAMBLE_BYTES = 128

#: SOP classes autounet treats specially; every other class with pixel data and a plane position is an image.
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LABEL_MAP_SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
SEG_CLASSES = frozenset({SEG_STORAGE, LABEL_MAP_SEG_STORAGE})
#: Objects without an image grid of their own (reports, presentation states, key objects, raw data, directories).
_NON_IMAGE_MODALITIES = frozenset({"SR", "PR", "KO", "REG", "RAW", "DOC", "PLAN", "RTPLAN", "RTDOSE", "RTRECORD"})


def import_pydicom() -> Any:
    """The ``pydicom`` module, or an :class:`ImageReadError` naming the extra to install."""
    try:
        import pydicom
    except ImportError:
        raise ImageReadError(DICOM_EXTRA_HINT) from None
    return pydicom


def has_dicom_magic(path: PathType) -> bool:
    """True if ``path`` is a DICOM Part 10 file (``DICM`` after the 128-byte preamble).

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile(delete=False) as f:
    ...     _ = f.write(b"\\0" * 128 + b"DICM")
    >>> has_dicom_magic(f.name)
    True
    >>> os.unlink(f.name)
    """
    try:
        with open(path, "rb") as stream:
            stream.seek(_PREAMBLE_BYTES)
            return stream.read(4) == _DICM_MAGIC
    except OSError:
        return False


def looks_like_dicom(path: Path) -> bool:
    """A DICOM Part 10 file, or a ``.dcm``/``.ima`` file (some exporters omit the preamble)."""
    if path.name.upper() == "DICOMDIR":
        return False  # a directory listing, never an image
    return has_dicom_magic(path) or path.suffix.lower() in (".dcm", ".ima", ".dicom")


def read_header(path: PathType) -> Any | None:
    """The header of a DICOM file (no pixel data), or None when the file is not DICOM."""
    pydicom = import_pydicom()
    path = Path(path)
    if not looks_like_dicom(path):
        return None
    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True, force=not has_dicom_magic(path))
    except Exception as err:  # pydicom raises many types for a damaged or foreign file
        logger.debug("%s: not readable as DICOM (%s)", path, err)
        return None


def read_full(path: PathType) -> Any:
    """The whole DICOM file with pixel data; an :class:`ImageReadError` naming the file if it cannot be parsed."""
    pydicom = import_pydicom()
    try:
        return pydicom.dcmread(str(path), force=not has_dicom_magic(path))
    except Exception as err:
        raise ImageReadError(f"{path}: cannot be read as DICOM ({err}); re-export the series from the PACS") from None


def object_kind(header: Any) -> str:
    """``"seg"``, ``"rtstruct"``, ``"image"`` or ``"other"`` for a DICOM header."""
    sop_class = str(header.get("SOPClassUID", ""))
    if sop_class in SEG_CLASSES:
        return "seg"
    if sop_class == RTSTRUCT_STORAGE:
        return "rtstruct"
    if str(header.get("Modality", "")).upper() in _NON_IMAGE_MODALITIES:
        return "other"
    if "Rows" in header and "Columns" in header and (
        "ImagePositionPatient" in header or "PerFrameFunctionalGroupsSequence" in header
    ):
        return "image"
    return "other"


def text(header: Any, keyword: str, default: str = "") -> str:
    """A header value as plain text (``""`` when absent)."""
    value = header.get(keyword, default)
    return default if value is None else str(value)


def functional_group_value(per_frame: Any, shared: Any, sequence: str, keyword: str) -> Any:
    """A frame's attribute from its per-frame functional group, else from the shared one (None when in neither).

    Parameters
    ----------
    per_frame, shared : pydicom.Dataset or None
        An item of PerFrameFunctionalGroupsSequence and of SharedFunctionalGroupsSequence.
    sequence, keyword : str
        The functional group macro (``"PlanePositionSequence"``) and the attribute in it (``"ImagePositionPatient"``).
    """
    for group in (per_frame, shared):
        if group is not None and sequence in group and len(group[sequence].value) and keyword in group[sequence][0]:
            return group[sequence][0].get(keyword)
    return None
