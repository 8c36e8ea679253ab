"""File extensions autounet reads and writes, and which library handles each."""

from __future__ import annotations

import os
from pathlib import Path

from autounet.typing import PathType

#: Volumes read through SimpleITK, keeping spacing, origin and direction.
SITK_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
#: Flat images read through Pillow as single-slice volumes (multi-page TIFF becomes a stack).
PIL_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp", ".gif", ".jpg", ".jpeg")
SUPPORTED_EXTENSIONS = SITK_EXTENSIONS + PIL_EXTENSIONS


def file_extension(path: PathType) -> str:
    """Return the lower-case extension of ``path``, treating ``.nii.gz`` as one extension.

    Examples
    --------
    >>> file_extension("case_001_0000.nii.gz")
    '.nii.gz'
    >>> file_extension("IMG.PNG")
    '.png'
    """
    name = Path(path).name.lower()
    for ext in SUPPORTED_EXTENSIONS:
        if name.endswith(ext):
            return ext
    return Path(name).suffix


def strip_extension(path: PathType) -> str:
    """File name without its (possibly double) extension.

    Examples
    --------
    >>> strip_extension("/data/hippocampus_001.nii.gz")
    'hippocampus_001'
    """
    name = Path(path).name
    ext = file_extension(name)
    return name[: len(name) - len(ext)] if ext and name.lower().endswith(ext) else name


def is_2d_extension(path_or_ext: PathType) -> bool:
    """True for formats that hold flat images (PNG, TIFF, BMP, GIF, JPEG)."""
    ext = str(path_or_ext) if str(path_or_ext).startswith(".") else file_extension(path_or_ext)
    return ext.lower() in PIL_EXTENSIONS


def check_supported(path: PathType) -> str:
    """Return the extension of ``path`` or raise ``ValueError`` listing the supported ones."""
    ext = file_extension(path)
    if ext not in SUPPORTED_EXTENSIONS:
        raise ValueError(
            f"{path}: unsupported file type {ext or '(none)'}; "
            f"use one of {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    return ext


def input_stat(path: PathType) -> tuple[int, int]:
    """``(size in bytes, modification time in ns)`` of an input: a file, or a folder (a DICOM series) whose files are
    summed and whose newest file counts; ``(-1, -1)`` when it does not exist. Signatures of cached results use it.
    """
    try:
        if os.path.isdir(path):
            stats = [os.stat(os.path.join(folder, name)) for folder, _, names in os.walk(path) for name in names]
            return sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)
        stat = os.stat(path)
    except OSError:
        return -1, -1
    return stat.st_size, stat.st_mtime_ns
