"""Turn uploaded files into one :class:`~autounet.io.Image` for a served model, refusing what it cannot take.

Checks run cheapest first: the file type (from the client's file name, else from the first bytes), the header (a
declared size over the server's voxel limit is refused before any voxel is read or memory allocated), then the
voxels (NaN/Inf), and finally the fit to the model (2D or 3D, number of channels). Every refusal is a
:class:`~autounet.serve.errors.ServeError` naming the upload and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autounet.dataset.dataset import read_case_images
from autounet.errors import ImageReadError
from autounet.inference.inputs import OUTPUT_EXTENSION
from autounet.io import Image, is_2d_extension, read_image_geometry
from autounet.io.formats import file_extension
from autounet.io.nifti_raw import count_nonfinite_nifti
from autounet.packaging.export import SINGLE_FILE_EXTENSIONS
from autounet.serve.errors import ServeError
from autounet.serve.upload import UploadedFile

#: First bytes of each format, for uploads without a usable file name.
_MAGIC = (
    (b"\x1f\x8b", ".nii.gz"),  # gzip: NIfTI is the only gzip-wrapped format autounet reads as one file
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"BM", ".bmp"),
    (b"GIF8", ".gif"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"NRRD", ".nrrd"),
)
_NIFTI_MAGIC_OFFSET = 344
_MHA_KEYS = (b"ObjectType", b"NDims")


@dataclass(frozen=True)
class ModelInput:
    """What a served model accepts: dimensionality, channel names and file types."""

    name: str
    three_d: bool
    channel_names: tuple[str, ...]
    formats: tuple[str, ...]


def stored_with_extension(upload: UploadedFile) -> Path:
    """Give the stored file the extension its reader needs (from the client's name, else its first bytes).

    Parameters
    ----------
    upload : UploadedFile
        The stored upload; its path gets the extension (the stored name stays server-made).

    Raises
    ------
    ServeError
        422 for an empty file, 415 for a file type autounet does not read as one file.
    """
    if upload.size == 0:
        raise ServeError(422, "empty_file", f"{upload.label} is empty (0 bytes); send the image file itself")
    from_name = file_extension(upload.client_name) if upload.client_name else ""
    if from_name in (".mhd", ".nhdr"):
        raise ServeError(415, "detached_header", f"{upload.label} is a header whose voxels are in a separate file; "
                         "convert it to one file (.mha, .nrrd or .nii.gz) and send that")
    extension = from_name if from_name in SINGLE_FILE_EXTENSIONS else _sniff(upload.path)
    if extension is None:
        shown = f" ({from_name})" if from_name else ""
        raise ServeError(415, "unsupported_type", f"{upload.label}{shown} is not an image file autounet reads; send "
                         f"one of {', '.join(SINGLE_FILE_EXTENSIONS)}")
    if extension == ".nii.gz" and not _starts_with(upload.path, b"\x1f\x8b"):
        raise ServeError(422, "not_gzip", f"{upload.label} is named .nii.gz but is not gzip-compressed; send the "
                         "original file (or name it .nii if it is uncompressed)")
    target = upload.path.with_name(upload.path.name + extension)
    upload.path.rename(target)
    upload.path = target
    return target


def check_header(upload: UploadedFile, max_voxels: int) -> tuple[tuple[int, ...], int, bool]:
    """Read only the header of a stored upload and refuse an image over ``max_voxels`` (voxels times channels).

    Parameters
    ----------
    upload : UploadedFile
        Stored with its extension (:func:`stored_with_extension`).
    max_voxels : int
        The server's limit.

    Returns
    -------
    tuple
        ``(spatial shape (z, y, x), channels, is_2d)``.
    """
    try:
        if is_2d_extension(upload.path):
            shape, channels = _flat_header(upload)
            is_2d = shape[0] == 1
        else:
            shape, channels, geometry = read_image_geometry(upload.path)
            is_2d = geometry.is_2d
    except ImageReadError as err:
        raise ServeError(422, "unreadable_image", _named(str(err), upload)) from None
    except (ValueError, RuntimeError) as err:
        raise ServeError(422, "unreadable_image", f"{upload.label}: the header cannot be read ({err})") from None
    voxels = int(np.prod([int(s) for s in shape], dtype=np.float64)) * max(int(channels), 1)
    if voxels > max_voxels or any(int(s) <= 0 for s in shape):
        size = " x ".join(str(s) for s in shape)
        raise ServeError(413 if voxels > max_voxels else 422, "image_too_large" if voxels > max_voxels else "empty_image",
                         f"{upload.label}: the header declares {size} voxels x {channels} channel(s) = {voxels:,}, more "
                         f"than this server's limit of {max_voxels:,} (autounet serve --max-voxels); crop or downsample "
                         "the image, or ask the administrator to raise the limit")
    return tuple(int(s) for s in shape), int(channels), bool(is_2d)


def decode_case(uploads: list[UploadedFile], model: ModelInput, max_voxels: int) -> Image:
    """Read the uploaded channel files of one case and check that they fit ``model``.

    Parameters
    ----------
    uploads : list of UploadedFile
        One file holding every channel, or one file per channel in channel order.
    model : ModelInput
        What the model accepts.
    max_voxels : int
        The server's size limit (checked on every header before reading voxels).

    Returns
    -------
    Image
        As :func:`autounet.io.read_image` returns it; ``source`` names the uploads, not server paths.
    """
    headers = [check_header(upload, max_voxels) for upload in uploads]
    _check_fit(uploads, headers, model)
    try:
        image = read_case_images([u.path for u in uploads])
    except (ImageReadError, ValueError) as err:
        raise ServeError(422, "unreadable_image", _named(str(err), *uploads)) from None
    for upload in uploads:
        count = count_nonfinite_nifti(upload.path)  # ITK reads NaN/Inf in NIfTI as 0: look at the bytes
        if count:
            raise ServeError(422, "non_finite_voxels", f"{upload.label}: {count} NaN/Inf voxel(s); replace them (e.g. "
                             "with the minimum intensity) and send the image again")
    if image.data.dtype.kind in "fc" and not np.isfinite(image.data).all():
        count = int(np.count_nonzero(~np.isfinite(image.data)))
        raise ServeError(422, "non_finite_voxels", f"{_labels(uploads)}: {count} NaN/Inf voxel(s); replace them (e.g. "
                         "with the minimum intensity) and send the image again")
    if image.data.dtype.kind == "c":
        raise ServeError(422, "complex_voxels", f"{_labels(uploads)}: complex-valued voxels; send magnitude images")
    _check_spacing(image, uploads)
    return Image(image.data, image.geometry, source=_labels(uploads))


def output_extension(upload: UploadedFile) -> str:
    """The label map's file type: the input's, except formats that cannot hold labels faithfully (JPEG -> PNG).

    Parameters
    ----------
    upload : UploadedFile
        The first uploaded file (stored with its extension).
    """
    extension = file_extension(upload.path)
    return OUTPUT_EXTENSION.get(extension, extension)


def _check_fit(uploads: list[UploadedFile], headers: list[tuple[tuple[int, ...], int, bool]], model: ModelInput) -> None:
    expected = len(model.channel_names)
    channels = sum(h[1] for h in headers)
    for upload, (shape, count, is_2d) in zip(uploads, headers):
        if model.three_d and is_2d:
            raise ServeError(422, "wrong_dimensionality", f"{upload.label} is a 2D image but model {model.name!r} "
                             "segments 3D volumes; send the volume (.nii.gz, .nrrd, .mha)")
        if not model.three_d and not is_2d and shape[0] > 1:
            raise ServeError(422, "wrong_dimensionality", f"{upload.label} is a 3D volume ({' x '.join(map(str, shape))}) "
                             f"but model {model.name!r} segments 2D images; send one slice per request")
        if len(uploads) > 1 and count != 1:
            raise ServeError(422, "wrong_channels", f"{upload.label} holds {count} channels; with one file per channel "
                             "each file holds one")
    if channels != expected:
        four_d = len(uploads) == 1 and headers[0][1] > 1 and not headers[0][2]
        what = f"a 4D image with {channels} volumes" if four_d else f"{channels} channel(s)"
        raise ServeError(422, "wrong_channels", f"{_labels(uploads)}: {what}, but model {model.name!r} takes {expected} "
                         f"({', '.join(model.channel_names)}); send one file holding these channels, or one 'file' "
                         "field per channel in this order")
    shapes = {h[0] for h in headers}
    if len(shapes) > 1:
        raise ServeError(422, "shape_mismatch", f"the channel files differ in shape ({', '.join(' x '.join(map(str, s)) for s in shapes)}); "
                         "all channels of a case must be on the same grid")


def _check_spacing(image: Image, uploads: list[UploadedFile]) -> None:
    spacing = np.asarray(image.geometry.spacing, dtype=np.float64)
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise ServeError(422, "invalid_spacing", f"{_labels(uploads)}: voxel spacing {tuple(spacing.tolist())} in the "
                         "header is not positive; fix the header")


def _flat_header(upload: UploadedFile) -> tuple[tuple[int, ...], int]:
    """Size of a PNG/TIFF/... from its header only: ``((pages, height, width), channels)``."""
    from PIL import Image as PILImage, UnidentifiedImageError

    try:
        with PILImage.open(upload.path) as pil:
            width, height = pil.size
            pages = 1 if file_extension(upload.path) == ".gif" else int(getattr(pil, "n_frames", 1))
            channels = 3 if pil.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV") else 1
    except PILImage.DecompressionBombError:
        raise ServeError(413, "image_too_large", f"{upload.label}: the header declares a gigantic image; crop or "
                         "downsample it") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ServeError(422, "unreadable_image", f"{upload.label}: cannot be read ({err}); the file is truncated, "
                         "corrupt or not an image") from None
    return (pages, int(height), int(width)), channels


def _sniff(path: Path) -> str | None:
    with open(path, "rb") as stream:
        head = stream.read(_NIFTI_MAGIC_OFFSET + 4)
    for magic, extension in _MAGIC:
        if head.startswith(magic):
            return extension
    if head[_NIFTI_MAGIC_OFFSET:_NIFTI_MAGIC_OFFSET + 4] in (b"n+1\x00", b"n+2\x00"):
        return ".nii"
    if any(key in head[:200] for key in _MHA_KEYS):
        return ".mha"
    return None


def _starts_with(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as stream:
        return stream.read(len(magic)) == magic


def _labels(uploads: list[UploadedFile]) -> str:
    return ", ".join(u.label for u in uploads)


def _named(message: str, *uploads: UploadedFile) -> str:
    """A library message with the server's stored paths replaced by the uploads' names."""
    for upload in uploads:
        message = message.replace(str(upload.path), upload.label)
    return message
