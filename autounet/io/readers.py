"""Read any supported image file into an :class:`~autounet.io.image.Image` (array axis order)."""

from __future__ import annotations

import gzip
import logging
import os
import re
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from autounet.errors import ImageReadError
from autounet.io.formats import PIL_EXTENSIONS, check_supported
from autounet.io.image import PLACEHOLDER_2D_SPACING, Geometry, Image
from autounet.typing import PathType

logger = logging.getLogger(__name__)

_CORRUPT_HINT = "the file is truncated or corrupt; re-export or re-download it"


def read_image(path: PathType) -> Image:
    """Read an image file as a channel-first array with its geometry.

    Parameters
    ----------
    path : str or Path
        A NIfTI, NRRD, MHA/MHD file (3D, 4D multi-channel or 2D), a PNG, TIFF, BMP, GIF or JPEG image, or a folder
        holding one DICOM series (read with :func:`autounet.dicom.read_dicom_series`; needs the ``dicom`` extra).

    Returns
    -------
    Image
        ``data`` has shape ``(C, z, y, x)``: 4D NIfTI volumes are split along their fourth axis into
        channels, vector pixels (RGB) become channels, and flat images get ``z = 1``. A DICOM series has one
        channel in modality units (rescale slope and intercept applied) and its slices sorted along the normal.

    Raises
    ------
    ImageReadError
        If the file is missing, unreadable, truncated or of an unsupported type.
    """
    path = Path(path)
    if path.is_dir():
        from autounet.dicom.series import read_dicom_series  # optional dependency, and dicom builds on io

        return read_dicom_series(path).image
    if not path.is_file():
        raise ImageReadError(f"{path}: file not found; check the path or the dataset.json entry")
    try:
        ext = check_supported(path)
    except ValueError as err:
        raise ImageReadError(str(err)) from None
    if ext in PIL_EXTENSIONS:
        return _read_flat_image(path)
    return _read_sitk(path)


def read_image_geometry(path: PathType) -> tuple[tuple[int, ...], int, Geometry]:
    """Read only the header: ``(spatial_shape, num_channels, geometry)``, without decoding voxels.

    Flat image formats are decoded (they are small); SimpleITK formats and DICOM series folders read just the headers.
    """
    path = Path(path)
    if path.is_dir():
        from autounet.dicom.series import read_dicom_series_geometry

        return read_dicom_series_geometry(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: file not found; check the path or the dataset.json entry")
    try:
        ext = check_supported(path)
    except ValueError as err:
        raise ImageReadError(str(err)) from None
    if ext in PIL_EXTENSIONS:
        image = _read_flat_image(path)
        return image.spatial_shape, image.num_channels, image.geometry
    _check_not_empty(path)
    _check_nifti_dimensions(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise ImageReadError(f"{path}: cannot read the header ({_first_line(err)}); {_CORRUPT_HINT}") from None
    size = reader.GetSize()
    geometry, spatial_ndim = _geometry_from_sitk(
        reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection(), len(size)
    )
    if len(size) == 4:
        shape, channels = tuple(reversed(size[:3])), int(size[3])
    elif spatial_ndim == 2:
        shape, channels = (1,) + tuple(reversed(size)), 1
    else:
        shape, channels = tuple(reversed(size)), 1
    channels *= int(reader.GetNumberOfComponents())
    return tuple(int(s) for s in shape), channels, geometry


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    meaningful = [line for line in lines if "ERROR" in line or "rror" in line]
    return (meaningful or lines or ["unknown error"])[-1][:200]


def _geometry_from_sitk(
    spacing: tuple[float, ...], origin: tuple[float, ...], direction: tuple[float, ...], ndim: int
) -> tuple[Geometry, int]:
    """Convert SimpleITK (x, y, z[, t]) geometry to array-order 3D geometry."""
    if ndim == 4:  # 4D: keep the spatial 3x3 block, the fourth axis holds channels
        matrix = np.asarray(direction, dtype=float).reshape(4, 4)[:3, :3]
        spacing, origin = spacing[:3], origin[:3]
        ndim = 3
    else:
        matrix = np.asarray(direction, dtype=float).reshape(ndim, ndim)
    if ndim == 2:
        full = np.eye(3)
        full[1:, 1:] = matrix[::-1, ::-1]
        return (
            Geometry(
                spacing=(PLACEHOLDER_2D_SPACING,) + tuple(reversed(spacing)),
                origin=(0.0,) + tuple(reversed(origin)),
                direction=tuple(full.ravel()),
                is_2d=True,
            ),
            2,
        )
    if ndim != 3:
        raise ValueError(f"{ndim}D images are not supported; expected 2D, 3D or 4D (channels last)")
    return (
        Geometry(
            spacing=tuple(reversed(spacing)),
            origin=tuple(reversed(origin)),
            direction=tuple(matrix[::-1, ::-1].ravel()),
        ),
        3,
    )


def _check_not_empty(path: Path) -> None:
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: the file is empty (0 bytes); re-export or re-download it, or remove the case")


#: NIfTI-1 and NIfTI-2 header sizes; ``sizeof_hdr`` opens the header, so it also tells the byte order.
_NIFTI1_HEADER_BYTES = 348
_NIFTI2_HEADER_BYTES = 540


def _nifti_header(path: Path) -> tuple[tuple[int, ...], int, int] | None:
    """``(dim, bitpix, vox_offset)`` of a NIfTI header (``dim[0]`` = number of axes), or None for other files."""
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        return None
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as stream:
            header = stream.read(_NIFTI2_HEADER_BYTES)
    except (EOFError, OSError, zlib.error):
        return None  # SimpleITK reports the damage with its own message
    if len(header) < _NIFTI1_HEADER_BYTES:
        return None
    for order in ("<", ">"):
        sizeof_hdr = int(np.frombuffer(header[:4], dtype=f"{order}i4")[0])
        if sizeof_hdr == _NIFTI1_HEADER_BYTES:  # dim: 8 x int16 at byte 40, bitpix at 72, vox_offset float at 108
            dims = tuple(int(d) for d in np.frombuffer(header[40:56], dtype=f"{order}i2"))
            bitpix = int(np.frombuffer(header[72:74], dtype=f"{order}i2")[0])
            offset = float(np.frombuffer(header[108:112], dtype=f"{order}f4")[0])
            return dims, bitpix, int(offset) if np.isfinite(offset) and offset >= 0 else _NIFTI1_HEADER_BYTES
        if sizeof_hdr == _NIFTI2_HEADER_BYTES and len(header) >= _NIFTI2_HEADER_BYTES:  # dim: 8 x int64 at 16
            dims = tuple(int(d) for d in np.frombuffer(header[16:80], dtype=f"{order}i8"))
            bitpix = int(np.frombuffer(header[14:16], dtype=f"{order}i2")[0])
            offset = int(np.frombuffer(header[168:176], dtype=f"{order}i8")[0])
            return dims, bitpix, max(offset, 0)
    return None


#: Most bytes one byte of deflate data can unpack to (zlib's documented limit is 1032:1).
_MAX_DEFLATE_RATIO = 1032


def _check_nifti_dimensions(path: Path) -> None:
    """Raise for a NIfTI header with a zero or negative axis length (ITK silently reads such files as one slice),
    or one declaring more voxel bytes than the file can hold (ITK would allocate them all before failing)."""
    header = _nifti_header(path)
    if header is None or not 1 <= header[0][0] <= 7:
        return
    dims, bitpix, offset = header
    sizes = dims[1 : dims[0] + 1]
    if any(size <= 0 for size in sizes):
        raise ImageReadError(
            f"{path}: zero-size image (header axis lengths {list(sizes)}); the file holds no voxels. "
            "Re-export it or remove the case"
        )
    voxel_bytes = int(np.prod([float(size) for size in sizes])) * max(bitpix, 8) // 8
    file_bytes = path.stat().st_size
    compressed = path.name.lower().endswith(".gz")
    room = file_bytes * _MAX_DEFLATE_RATIO if compressed else file_bytes - offset
    if voxel_bytes > room:
        shape = " x ".join(str(size) for size in sizes)
        what = " even compressed" if compressed else ""
        raise ImageReadError(
            f"{path}: the header declares {shape} voxels of {bitpix} bits ({voxel_bytes / 1e9:,.3g} GB) but the file "
            f"has {file_bytes:,} bytes, which cannot hold them{what}: the header's image size is wrong or the file "
            "was cut short. Re-export the image (or fix its header) and re-run"
        )


def _check_gzip_complete(path: Path, itk_image: sitk.Image) -> None:
    """Raise if a ``.gz`` file is truncated: ITK silently zero-fills the missing part of such files.

    The gzip trailer stores the uncompressed size modulo 2**32. For NIfTI it must equal the voxel
    offset plus the voxel bytes; only when it does not (or the format is not NIfTI) is the whole stream
    decompressed to check its integrity, so intact files cost just a few header bytes.
    """
    with open(path, "rb") as raw:
        raw.seek(-4, os.SEEK_END)
        stored_size = int.from_bytes(raw.read(4), "little")
    with gzip.open(path, "rb") as stream:
        header = stream.read(352)
    if len(header) >= 348 and int.from_bytes(header[:4], "little") == 348:  # NIfTI-1, little endian
        vox_offset = int(np.frombuffer(header[108:112], dtype="<f4")[0])
        voxel_bytes = itk_image.GetNumberOfPixels() * itk_image.GetNumberOfComponentsPerPixel()
        voxel_bytes *= np.dtype(sitk.GetArrayViewFromImage(itk_image).dtype).itemsize
        if (vox_offset + voxel_bytes) % 2**32 == stored_size:
            return
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 24):
                pass
    except (EOFError, OSError, zlib.error) as err:
        raise ImageReadError(f"{path}: compressed data ends early or is damaged ({err}); {_CORRUPT_HINT}") from None


def _read_sitk(path: Path) -> Image:
    _check_not_empty(path)
    _check_nifti_dimensions(path)
    try:
        itk_image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise ImageReadError(f"{path}: cannot be read ({_first_line(err)}); {_CORRUPT_HINT}") from None
    if path.name.lower().endswith(".gz"):
        _check_gzip_complete(path, itk_image)
    ndim = itk_image.GetDimension()
    try:
        geometry, spatial_ndim = _geometry_from_sitk(
            itk_image.GetSpacing(), itk_image.GetOrigin(), itk_image.GetDirection(), ndim
        )
    except ValueError as err:
        raise ImageReadError(f"{path}: {err}") from None
    try:
        array = sitk.GetArrayFromImage(itk_image)
    except RuntimeError as err:
        raise ImageReadError(f"{path}: voxel data cannot be decoded ({_first_line(err)}); {_CORRUPT_HINT}") from None
    if itk_image.GetNumberOfComponentsPerPixel() > 1:
        array = np.moveaxis(array, -1, 0)  # vector pixels (RGB) -> channels
        if ndim == 4:
            raise ImageReadError(f"{path}: 4D images with vector pixels are not supported; save one channel per file")
    elif ndim == 4:
        pass  # (t, z, y, x): the fourth axis holds the channels
    else:
        array = array[None]
    if spatial_ndim == 2:
        array = array[:, None]
    return Image(data=np.ascontiguousarray(array), geometry=geometry, source=str(path))


def _read_flat_image(path: Path) -> Image:
    from PIL import Image as PILImage, UnidentifiedImageError

    _check_not_empty(path)
    try:
        with PILImage.open(path) as pil:
            frames = [_pil_frame_to_array(pil, i) for i in range(getattr(pil, "n_frames", 1))]
    except PILImage.DecompressionBombError as err:
        sizes = re.findall(r"\((\d+) pixels\)", str(err))
        found = f" has {int(sizes[0]):,} pixels," if sizes else " is"
        limit = int(sizes[1]) if len(sizes) > 1 else 2 * (PILImage.MAX_IMAGE_PIXELS or 0)
        raise ImageReadError(
            f"{path}{found} above the decompression-bomb limit of {limit:,} pixels that protects against crafted "
            "files (Pillow's); if the image is genuine, cut it into smaller tiles or downsample it and use those"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(f"{path}: cannot be read ({err}); {_CORRUPT_HINT}") from None
    if path.suffix.lower() == ".gif":
        frames = frames[:1]  # GIF frames are animation, not slices
    if len({f.shape for f in frames}) != 1:
        raise ImageReadError(f"{path}: pages of this multi-page image differ in size; save one slice per file")
    stack = np.stack(frames, axis=1)  # (C, z, y, x)
    is_2d = stack.shape[1] == 1
    spacing = (PLACEHOLDER_2D_SPACING if is_2d else 1.0, 1.0, 1.0)
    return Image(data=np.ascontiguousarray(stack), geometry=Geometry(spacing=spacing, is_2d=is_2d), source=str(path))


def _pil_frame_to_array(pil, index: int) -> np.ndarray:
    """One frame as ``(C, y, x)``. Alpha is dropped; grey palettes become grey, colour palettes keep indices."""
    pil.seek(index)
    mode = pil.mode
    if mode == "P":
        palette = np.asarray(pil.getpalette() or [], dtype=np.int64).reshape(-1, 3)
        used = np.unique(np.asarray(pil))
        used = used[used < len(palette)]
        grey = palette.size == 0 or np.all(palette[used] == palette[used][:, :1])
        pil = pil.convert("L") if grey else pil  # colour palettes: the indices are the label values
        mode = pil.mode
    if mode in ("RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
        pil = pil.convert("RGB")
    elif mode == "LA":
        pil = pil.convert("L")
    elif mode == "1":
        pil = pil.convert("L")
    array = np.asarray(pil)
    if array.ndim == 2:
        return array[None]
    return np.moveaxis(array, -1, 0)
