"""Read one DICOM series into an :class:`~autounet.io.Image`: choose and sort its slices, decode the pixels with
pydicom, apply the rescale slope and intercept, and keep what writing a Segmentation of it needs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from autounet.dicom.discovery import DicomSeries, discover, pick_image_series
from autounet.dicom.headers import import_pydicom, read_full, read_header
from autounet.dicom.resample import regularise
from autounet.dicom.slices import SliceRecord, SliceStack, build_stack, records_from_header
from autounet.errors import ImageReadError
from autounet.io import Geometry, Image
from autounet.typing import PathType

logger = logging.getLogger(__name__)

#: What to install to decode a compressed transfer syntax that pydicom cannot decode with what is installed.
_DECODER_PACKAGES = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg pylibjpeg-libjpeg",  # JPEG baseline
    "1.2.840.10008.1.2.4.51": "pylibjpeg pylibjpeg-libjpeg",  # JPEG extended
    "1.2.840.10008.1.2.4.57": "pylibjpeg pylibjpeg-libjpeg",  # JPEG lossless
    "1.2.840.10008.1.2.4.70": "pylibjpeg pylibjpeg-libjpeg",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80": "pyjpegls",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81": "pyjpegls",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90": "pylibjpeg pylibjpeg-openjpeg",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91": "pylibjpeg pylibjpeg-openjpeg",  # JPEG 2000
    "1.2.840.10008.1.2.4.201": "pylibjpeg pylibjpeg-openjpeg",  # HTJ2K lossless
    "1.2.840.10008.1.2.4.202": "pylibjpeg pylibjpeg-openjpeg",  # HTJ2K lossless RPCL
    "1.2.840.10008.1.2.4.203": "pylibjpeg pylibjpeg-openjpeg",  # HTJ2K
}
_ANY_DECODER = "python-gdcm"


@dataclass
class DicomVolume:
    """A DICOM series read as a volume, with what a Segmentation of it must reference.

    Parameters
    ----------
    image : Image
        Voxels ``(1, z, y, x)`` in modality units (rescale applied: HU for CT) with the geometry, LPS world.
    series : DicomSeries
        The files of the series.
    slices : list of SliceRecord
        The frames used, in volume order (along the slice normal).
    source_headers : list of pydicom.Dataset
        Headers (no pixel data) of the files used, in volume order; a Segmentation references them.
    resampled : bool
        True when irregular or sheared slices were resampled onto a regular grid (then the image's slices no
        longer coincide with the source frames).
    notes : list of str
        What was dropped or changed while reading (localizers, duplicates, files that are not DICOM).
    """

    image: Image
    series: DicomSeries
    slices: list[SliceRecord]
    source_headers: list[Any]
    resampled: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def geometry(self) -> Geometry:
        return self.image.geometry

    def without_voxels(self) -> "DicomVolume":
        """A copy whose image keeps its shape and geometry but no voxel memory (a zero-stride view), for keeping the
        reference of a Segmentation while the voxels are freed."""
        empty = np.broadcast_to(np.zeros((), dtype=self.image.data.dtype), self.image.data.shape)
        return replace(self, image=Image(data=empty, geometry=self.image.geometry, source=self.image.source))


def read_dicom_series(
    source: PathType | Sequence[PathType] | DicomSeries,
    series_uid: str | None = None,
    *,
    resample: bool = False,
) -> DicomVolume:
    """Read one DICOM image series (classic single-frame files or one enhanced multi-frame file).

    Parameters
    ----------
    source : str, Path, sequence of paths, or DicomSeries
        A folder holding the series (searched recursively; files that are not DICOM are ignored with a note), the
        series' files, or a series found by :func:`~autounet.dicom.discovery.discover`.
    series_uid : str, optional
        SeriesInstanceUID to read when the folder holds several series.
    resample : bool
        Resample unevenly spaced or sheared (gantry-tilted) slices onto a regular grid (linear interpolation)
        instead of refusing them.

    Returns
    -------
    DicomVolume
        ``volume.image`` is what :func:`autounet.io.read_image` returns for a series folder.

    Raises
    ------
    ImageReadError
        Naming the series and the fix: no or several image series, one slice, missing pixel data, a compressed
        transfer syntax without an installed decoder, inconsistent orientations, irregular gaps or gantry tilt
        (unless ``resample``), colour images.
    """
    notes: list[str] = []
    if isinstance(source, DicomSeries):
        series = source
    else:
        where = str(source) if isinstance(source, (str, Path)) else f"{len(list(source))} file(s)"
        found = discover(source)
        notes.extend(found.notes())
        series = pick_image_series(found, where, series_uid)
    where = series.describe()
    if series.kind != "image":
        raise ImageReadError(f"{where}: a {series.kind.upper()} object, not an image series; pass the image series it "
                             "belongs to (import-dicom pairs them)")
    headers = {path: read_header(path) for path in series.files}
    records = [record for path, header in headers.items() if header is not None for record in records_from_header(path, header)]
    stack = build_stack(records, where)
    notes.extend(stack.notes)
    if not stack.regular and not resample:
        raise ImageReadError(
            f"{where}: {stack.problem}; autounet does not guess a grid for such a series. Re-export it with regular "
            "slices, or ask for resampling onto a regular grid (resample=True, --dicom-resample)"
        )
    _check_pixel_format(headers[stack.slices[0].path], where)
    data = _decode(stack.slices, where)
    geometry = stack.geometry
    if not stack.regular:
        data, geometry = regularise(data, stack)
        notes.append(f"resampled onto a regular grid of {data.shape[0]} slices at {geometry.spacing[0]:.3f} mm: "
                     f"{stack.problem}")
    for note in notes:
        logger.info("%s: %s", where, note)
    used = list(dict.fromkeys(r.path for r in stack.slices))
    image = Image(data=data[None], geometry=geometry, source=str(series.folder))
    return DicomVolume(image, series, stack.slices, [headers[p] for p in used], resampled=not stack.regular, notes=notes)


def read_dicom_series_geometry(source: PathType, series_uid: str | None = None) -> tuple[tuple[int, ...], int, Geometry]:
    """``(spatial_shape, num_channels, geometry)`` of a series from its headers only (no pixel data decoded).

    Parameters
    ----------
    source : str or Path
        A folder holding the series.
    series_uid : str, optional
        As in :func:`read_dicom_series`.

    Raises
    ------
    ImageReadError
        As :func:`read_dicom_series` for everything the headers show (irregular series are refused: their shape
        depends on resampling).
    """
    series = pick_image_series(discover(source), str(source), series_uid)
    headers = [read_header(path) for path in series.files]
    records = [r for path, header in zip(series.files, headers) if header is not None for r in records_from_header(path, header)]
    stack = build_stack(records, series.describe())
    if not stack.regular:
        raise ImageReadError(f"{series.describe()}: {stack.problem}; re-export it with regular slices, or resample it")
    first = stack.slices[0]
    return (len(stack.slices), first.rows, first.columns), 1, stack.geometry


def _check_pixel_format(header: Any, where: str) -> None:
    samples = int(header.get("SamplesPerPixel", 1))
    if samples != 1:
        raise ImageReadError(f"{where}: {samples} samples per pixel ({header.get('PhotometricInterpretation')}); "
                             "only greyscale series (CT, MR, PET ...) are read; convert colour images to PNG/TIFF")


def _check_decoder(dataset: Any, path: Path, where: str) -> None:
    """Refuse a compressed transfer syntax no installed plugin decodes, naming the package to install."""
    pydicom = import_pydicom()
    syntax = dataset.file_meta.get("TransferSyntaxUID") if hasattr(dataset, "file_meta") else None
    if syntax is None or not syntax.is_compressed:
        return
    try:
        decoder = pydicom.pixels.get_decoder(syntax)
        available = decoder.is_available
    except NotImplementedError:
        available = False
    if available:
        return
    package = _DECODER_PACKAGES.get(str(syntax), _ANY_DECODER)
    raise ImageReadError(
        f"{where}: {path.name} is compressed as {syntax.name} ({syntax}) and no installed decoder reads it; install "
        f"one (pip install {package}, or pip install {_ANY_DECODER}) and read the series again, or export it "
        "uncompressed from the PACS"
    )


def _output_dtype(slices: Sequence[SliceRecord], header: Any) -> np.dtype:
    """int16/int32 when every slope and intercept is whole and the rescaled range fits, else float32."""
    whole = all(float(r.slope).is_integer() and float(r.intercept).is_integer() for r in slices)
    if not whole:
        return np.dtype(np.float32)
    bits = int(header.get("BitsStored", header.get("BitsAllocated", 16)))
    signed = int(header.get("PixelRepresentation", 0)) == 1
    stored = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    ends = [r.slope * v + r.intercept for r in slices for v in stored]
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= min(ends) and max(ends) <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.float32)


def _decode(slices: Sequence[SliceRecord], where: str) -> np.ndarray:
    """Pixel data of the slices ``(z, y, x)`` in modality units; each file is decoded once."""
    first = slices[0]
    out: np.ndarray | None = None
    by_file: dict[Path, list[tuple[int, SliceRecord]]] = {}
    for index, record in enumerate(slices):
        by_file.setdefault(record.path, []).append((index, record))
    for path, members in by_file.items():
        dataset = read_full(path)
        if not any(k in dataset for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
            raise ImageReadError(f"{where}: {path.name} has no pixel data (only a header); re-export the series from the "
                                 "PACS, or remove the file")
        _check_decoder(dataset, path, where)
        if out is None:
            out = np.empty((len(slices), first.rows, first.columns), dtype=_output_dtype(slices, dataset))
        try:
            pixels = dataset.pixel_array
        except Exception as err:  # decoders raise many types for damaged data
            raise ImageReadError(f"{where}: {path.name}: pixel data cannot be decoded ({err}); the file is damaged, "
                                 "re-export the series") from None
        if pixels.ndim == 2:
            pixels = pixels[None]
        for index, record in members:
            frame = pixels[record.frame or 0]
            if frame.shape != (first.rows, first.columns):
                raise ImageReadError(f"{where}: {path.name} holds {frame.shape} pixels but its header says "
                                     f"{(first.rows, first.columns)}; the file is damaged, re-export the series")
            if record.slope == 1.0 and record.intercept == 0.0:
                out[index] = frame
            else:
                out[index] = frame.astype(np.float64) * record.slope + record.intercept
        del dataset, pixels
    assert out is not None
    return out
