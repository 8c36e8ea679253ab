"""Bad uploads built from a real Hippocampus case, each broken in one known way, with the answer the server must give."""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk


#: The kinds :func:`bad_uploads` returns, in order (test ids).
BAD_KINDS = (
    'not an image',
    'text named .nii.gz',
    'truncated gzip',
    'zero bytes',
    'random bytes as .nii',
    '4D for a 3D one-channel model',
    'one file per channel, one too many',
    'NaN voxels',
    'NIfTI header declaring a gigantic image',
    'NRRD header declaring a gigantic image',
    'PNG header declaring a gigantic image',
    'zero-length axis in the header',
    '2D image for a 3D model',
    'detached .mhd header',
    'unknown model',
    'no file field',
    'not multipart',
    'malformed multipart',
    'fold that is not loaded',
    'step size out of range',
    'unknown form field',
    'too many files',
)


@dataclass(frozen=True)
class BadUpload:
    """One kind of bad request: multipart ``files`` (name, bytes) and ``data`` fields, the model, and the expected
    status, error code and words of the message."""

    kind: str
    files: list[tuple[str, bytes]]
    status: int
    code: str
    words: tuple[str, ...] = ()
    data: dict[str, str] = field(default_factory=dict)
    model: str = "hippo"
    raw_body: tuple[str, bytes] | None = None  # (content type, body) instead of multipart


def _nifti_bytes(image: sitk.Image, path: Path) -> bytes:
    sitk.WriteImage(image, str(path))
    return path.read_bytes()


def _patched_nifti_dims(case: bytes, dims: tuple[int, ...]) -> bytes:
    """The case's NIfTI-1 header with other axis lengths (the voxel data is left as it is)."""
    raw = bytearray(gzip.decompress(case))
    raw[40:56] = struct.pack("<8h", len(dims), *dims, *([1] * (7 - len(dims))))
    return gzip.compress(bytes(raw))


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels and holds none."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


def bad_uploads(case_file: Path, folder: Path) -> list[BadUpload]:
    """At least fifteen kinds of bad upload made from ``case_file`` (a real .nii.gz)."""
    folder.mkdir(parents=True, exist_ok=True)
    case = case_file.read_bytes()
    image = sitk.ReadImage(str(case_file))
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    nan = array.copy()
    nan[5, 10, 10:16] = np.nan
    nan_image = sitk.GetImageFromArray(nan)
    nan_image.CopyInformation(image)
    four_d = sitk.JoinSeries([sitk.Cast(image, sitk.sitkFloat32), sitk.Cast(image, sitk.sitkFloat32)])
    png = folder / "slice.png"
    sitk.WriteImage(sitk.Cast(sitk.RescaleIntensity(image[:, :, 10]), sitk.sitkUInt8), str(png))
    nrrd_bomb = b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 100000 100000 100000\nencoding: raw\n\n" + b"\0" * 64
    mhd = b"ObjectType = Image\nNDims = 3\nDimSize = 10 10 10\nElementType = MET_UCHAR\nElementDataFile = scan.raw\n"
    return [
        BadUpload("not an image", [("notes.txt", b"patient notes, not an image\n")], 415, "unsupported_type", ("notes.txt",)),
        BadUpload("text named .nii.gz", [("scan.nii.gz", b"hello, I am text\n" * 20)], 422, "not_gzip", ("scan.nii.gz",)),
        BadUpload("truncated gzip", [("scan.nii.gz", case[: len(case) // 3])], 422, "unreadable_image", ("scan.nii.gz", "truncated")),
        BadUpload("zero bytes", [("scan.nii.gz", b"")], 422, "empty_file", ("0 bytes",)),
        BadUpload("random bytes as .nii", [("scan.nii", np.random.default_rng(0).bytes(2000))], 422, "unreadable_image", ("scan.nii",)),
        BadUpload("4D for a 3D one-channel model", [("scan.nii.gz", _nifti_bytes(four_d, folder / "4d.nii.gz"))], 422,
                  "wrong_channels", ("4D image with 2 volumes", "takes 1")),
        BadUpload("one file per channel, one too many", [("a_0000.nii.gz", case), ("a_0001.nii.gz", case)], 422,
                  "wrong_channels", ("2 channel(s)", "takes 1")),
        BadUpload("NaN voxels", [("scan.nii.gz", _nifti_bytes(nan_image, folder / "nan.nii.gz"))], 422, "non_finite_voxels",
                  ("6 NaN/Inf",)),
        # The NIfTI reader compares the declared size with the file's before anything else (autounet.io, issue 20):
        # a small file declaring a gigantic image is a wrong header, named as such, before the server's voxel limit.
        BadUpload("NIfTI header declaring a gigantic image", [("scan.nii.gz", _patched_nifti_dims(case, (30000, 30000, 30000)))],
                  422, "unreadable_image", ("30000 x 30000 x 30000", "cut short")),
        BadUpload("NRRD header declaring a gigantic image", [("scan.nrrd", nrrd_bomb)], 413, "image_too_large", ("100000",)),
        BadUpload("PNG header declaring a gigantic image", [("slice.png", _png_header(100_000, 100_000))], 413,
                  "image_too_large", ("gigantic",)),
        BadUpload("zero-length axis in the header", [("scan.nii.gz", _patched_nifti_dims(case, (0, 50, 35)))], 422,
                  "unreadable_image", ("zero-size",)),
        BadUpload("2D image for a 3D model", [("slice.png", png.read_bytes())], 422, "wrong_dimensionality", ("2D image",)),
        BadUpload("detached .mhd header", [("scan.mhd", mhd)], 415, "detached_header", (".mha",)),
        BadUpload("unknown model", [("scan.nii.gz", case)], 404, "unknown_model", ("hippo",), model="liver"),
        BadUpload("no file field", [], 422, "no_file", ("'file'",), data={"folds": "0"}),
        BadUpload("not multipart", [], 415, "not_multipart", ("multipart/form-data",),
                  raw_body=("application/json", b'{"image": "scan.nii.gz"}')),
        BadUpload("malformed multipart", [], 400, "", raw_body=("multipart/form-data; boundary=XyZ", b"--nope\r\n\r\ngarbage")),
        BadUpload("fold that is not loaded", [("scan.nii.gz", case)], 422, "invalid_option", ("folds", "has folds 0"),
                  data={"folds": "3"}),
        BadUpload("step size out of range", [("scan.nii.gz", case)], 422, "invalid_option", ("step_size",),
                  data={"step_size": "7"}),
        BadUpload("unknown form field", [("scan.nii.gz", case)], 422, "unknown_field", ("colour",), data={"colour": "red"}),
        BadUpload("too many files", [(f"c{i}.nii.gz", b"x") for i in range(17)], 422, "too_many_files", ("more than 16",)),
    ]
