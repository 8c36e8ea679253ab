"""Write arrays with geometry back to image files in the requested format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from autounet.io.formats import PIL_EXTENSIONS, check_supported
from autounet.io.image import Geometry
from autounet.jsonio import atomic_path
from autounet.typing import PathType


def write_image(path: PathType, array: np.ndarray, geometry: Geometry, compress: bool = True) -> None:
    """Write ``array`` with ``geometry`` to ``path``; the extension picks the format. The write is atomic.

    Parameters
    ----------
    path : str or Path
        Target file; ``.nii.gz``, ``.nrrd``, ``.mha`` ... or ``.png``, ``.tif``, ``.bmp``, ``.gif``.
    array : ndarray of shape (z, y, x) or (C, z, y, x)
        Voxel values in array axis order; a channel axis is only allowed for flat RGB images or as
        vector pixels of SimpleITK formats.
    geometry : Geometry
        As returned by :func:`~autounet.io.read_image` for the image this array belongs to.
    """
    path = Path(path)
    ext = check_supported(path)
    if array.ndim not in (3, 4):
        raise ValueError(f"expected an array of shape (z, y, x) or (C, z, y, x), got shape {array.shape}")
    with atomic_path(path, expected_bytes=array.nbytes) as tmp:  # uncompressed size: an upper bound
        tmp_with_ext = tmp.with_name(tmp.name + ext)
        try:
            if ext in PIL_EXTENSIONS:
                _write_flat(tmp_with_ext, array, ext)
            else:
                _write_sitk(tmp_with_ext, array, geometry, compress)
            tmp_with_ext.replace(tmp)
        finally:
            if tmp_with_ext.exists():
                tmp_with_ext.unlink()


def _write_sitk(path: Path, array: np.ndarray, geometry: Geometry, compress: bool) -> None:
    vector = array.ndim == 4
    if vector and array.shape[0] == 1:
        array, vector = array[0], False
    spatial = array[..., :, :, :] if not vector else np.moveaxis(array, 0, -1)
    direction = geometry.direction_matrix[::-1, ::-1]
    if geometry.is_2d:
        plane = spatial[0] if not vector else spatial[0]
        image = sitk.GetImageFromArray(np.ascontiguousarray(plane), isVector=vector)
        image.SetSpacing(tuple(reversed(geometry.spacing[1:])))
        image.SetOrigin(tuple(reversed(geometry.origin[1:])))
        image.SetDirection(tuple(direction[:2, :2].ravel()))
    else:
        image = sitk.GetImageFromArray(np.ascontiguousarray(spatial), isVector=vector)
        image.SetSpacing(tuple(reversed(geometry.spacing)))
        image.SetOrigin(tuple(reversed(geometry.origin)))
        image.SetDirection(tuple(direction.ravel()))
    sitk.WriteImage(image, str(path), useCompression=compress)


def _write_flat(path: Path, array: np.ndarray, ext: str) -> None:
    from PIL import Image as PILImage

    if array.ndim == 3:
        array = array[None]
    channels, depth = array.shape[:2]
    if channels not in (1, 3):
        raise ValueError(f"{path.name}: flat images hold 1 or 3 channels, got {channels}; write a volume format instead")
    if depth != 1 and ext not in (".tif", ".tiff"):
        raise ValueError(f"{path.name}: {ext} holds one slice but the array has {depth}; use .tif or .nii.gz")
    frames = []
    for z in range(depth):
        plane = array[:, z]
        plane = plane[0] if channels == 1 else np.moveaxis(plane, 0, -1)
        if plane.dtype == bool:
            plane = plane.astype(np.uint8)
        if plane.dtype.kind in "iu" and plane.min() >= 0 and plane.max() <= 255:
            plane = plane.astype(np.uint8)
        elif plane.dtype.kind in "iu" and ext in (".png", ".tif", ".tiff") and channels == 1:
            plane = plane.astype(np.uint16 if plane.max() <= 65535 and plane.min() >= 0 else np.int32)
        elif ext in (".tif", ".tiff") and channels == 1:
            plane = plane.astype(np.float32)
        else:
            raise ValueError(
                f"{path.name}: values of dtype {plane.dtype} in [{plane.min()}, {plane.max()}] do not fit {ext}; "
                "use .tif (float) or .nii.gz"
            )
        frames.append(PILImage.fromarray(np.ascontiguousarray(plane)))
    format_name = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".gif": "GIF", ".jpg": "JPEG", ".jpeg": "JPEG"}[ext]
    if len(frames) == 1:
        frames[0].save(path, format=format_name)
    else:
        frames[0].save(path, format=format_name, save_all=True, append_images=frames[1:])
