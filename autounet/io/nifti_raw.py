"""Scan the raw voxel block of a NIfTI file for NaN/Inf.

ITK's NIfTI reader replaces NaN and Inf by 0 while reading, so a file full of NaNs looks valid through
SimpleITK. Checks that must see them (``autounet check``) read the floating-point voxels directly.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from autounet.typing import PathType

#: NIfTI datatype codes of the floating-point types that can hold NaN/Inf.
_FLOAT_CODES = {16: "f4", 64: "f8"}
#: Voxels decoded per chunk, to bound memory on large volumes.
_CHUNK_VOXELS = 1 << 22


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def count_nonfinite_nifti(path: PathType) -> int | None:
    """Number of NaN/Inf voxels in a NIfTI-1/2 file, or None if the file is not a floating-point NIfTI.

    Examples
    --------
    >>> import tempfile, SimpleITK as sitk
    >>> a = np.ones((2, 3, 4), np.float32); a[0, 0, 0] = np.nan
    >>> path = tempfile.mkdtemp() + "/x.nii.gz"
    >>> sitk.WriteImage(sitk.GetImageFromArray(a), path)
    >>> count_nonfinite_nifti(path)
    1
    """
    path = Path(path)
    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        return None
    with _open(path) as stream:
        header = stream.read(540)
        for endian in ("<", ">"):
            size = int(np.frombuffer(header[:4], dtype=f"{endian}i4")[0])
            if size in (348, 540):
                break
        else:
            return None
        if size == 348:
            datatype = int(np.frombuffer(header[70:72], dtype=f"{endian}i2")[0])
            dims = np.frombuffer(header[40:56], dtype=f"{endian}i2").astype(np.int64)
            offset = int(np.frombuffer(header[108:112], dtype=f"{endian}f4")[0])
        else:
            datatype = int(np.frombuffer(header[12:14], dtype=f"{endian}i2")[0])
            dims = np.frombuffer(header[16:80], dtype=f"{endian}i8")
            offset = int(np.frombuffer(header[168:176], dtype=f"{endian}i8")[0])
        if datatype not in _FLOAT_CODES:
            return None
        dtype = np.dtype(f"{endian}{_FLOAT_CODES[datatype]}")
        total = int(np.prod(np.maximum(dims[1 : 1 + int(dims[0])], 1)))
        stream.seek(offset) if offset >= len(header) else None
        pending = header[offset:] if offset < len(header) else b""
        count = 0
        remaining = total * dtype.itemsize
        while remaining > 0:
            chunk = pending + stream.read(min(remaining, _CHUNK_VOXELS * dtype.itemsize) - len(pending))
            pending = b""
            if not chunk:
                break
            usable = len(chunk) - len(chunk) % dtype.itemsize
            count += int(np.count_nonzero(~np.isfinite(np.frombuffer(chunk[:usable], dtype=dtype))))
            remaining -= len(chunk)
        return count
