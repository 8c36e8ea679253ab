"""Small uint8 volumes of an image and its label map for the web page's slice viewer.

The image (first channel; the mean of RGB) is windowed to its 0.5-99.5 percentiles; labels become indices into the
sorted label values. Volumes above :data:`PREVIEW_MAX_VOXELS` are subsampled by a whole stride per axis, so a
browser never receives more than a few megabytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from autounet.io import Image
from autounet.jsonio import write_json

#: Largest preview volume (voxels): 128**3, about 2 MB per volume.
PREVIEW_MAX_VOXELS = 128**3
PREVIEW_IMAGE = "image.u8"
PREVIEW_LABELS = "labels.u8"
PREVIEW_META = "preview.json"
#: Window of the image intensities (percentiles).
WINDOW_PERCENTILES = (0.5, 99.5)


def preview_stride(shape: tuple[int, ...], max_voxels: int = PREVIEW_MAX_VOXELS) -> tuple[int, ...]:
    """Whole-number subsampling per axis so that ``shape`` fits ``max_voxels`` (largest axes reduced first).

    Parameters
    ----------
    shape : tuple of int
        ``(z, y, x)``.
    max_voxels : int
        Bound on the preview's voxels.

    Examples
    --------
    >>> preview_stride((35, 51, 36)), preview_stride((300, 512, 512))
    ((1, 1, 1), (3, 4, 4))
    """
    stride = [1] * len(shape)
    while math.prod(math.ceil(s / k) for s, k in zip(shape, stride)) > max_voxels:
        sizes = [math.ceil(s / k) for s, k in zip(shape, stride)]
        axis = int(np.argmax(sizes))
        stride[axis] += 1
    return tuple(stride)


def window_to_uint8(data: np.ndarray) -> np.ndarray:
    """Intensities scaled to 0..255 between their 0.5 and 99.5 percentiles.

    Parameters
    ----------
    data : ndarray
        Any real-valued array.

    Examples
    --------
    >>> window_to_uint8(np.array([0.0, 50.0, 100.0])).tolist()
    [0, 128, 255]
    """
    values = data.astype(np.float32, copy=False)
    low, high = np.percentile(values, WINDOW_PERCENTILES)
    if high <= low:
        high = low + 1.0
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0
    return np.rint(scaled).astype(np.uint8)


def write_preview(image: Image, segmentation: np.ndarray, labels: Mapping[str, int], folder: Path) -> dict[str, Any]:
    """Write the preview volumes and their description into ``folder``.

    Parameters
    ----------
    image : Image
        The input, ``(C, z, y, x)``.
    segmentation : ndarray of shape (z, y, x)
        The label map on the same grid.
    labels : mapping of str to int
        Label names to values (from the plans).
    folder : Path
        Receives ``image.u8``, ``labels.u8`` (C-order bytes of shape ``shape``) and ``preview.json``.

    Returns
    -------
    dict
        ``shape``, ``spacing`` (of the preview grid), ``stride``, ``is_2d`` and ``labels`` (index, value, name).
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stride = preview_stride(tuple(segmentation.shape))
    picks = tuple(slice(None, None, k) for k in stride)
    data = image.data.mean(axis=0) if image.geometry.is_2d and image.num_channels == 3 else image.data[0]
    grey = window_to_uint8(np.asarray(data[picks]))
    values = sorted(set(int(v) for v in labels.values()))
    names = {int(v): str(k) for k, v in labels.items()}
    lookup = np.searchsorted(np.asarray(values), segmentation[picks])
    indices = np.clip(lookup, 0, len(values) - 1).astype(np.uint8)
    (folder / PREVIEW_IMAGE).write_bytes(np.ascontiguousarray(grey).tobytes())
    (folder / PREVIEW_LABELS).write_bytes(np.ascontiguousarray(indices).tobytes())
    counts = np.bincount(indices.ravel(), minlength=len(values))
    meta = {
        "shape": [int(s) for s in grey.shape],
        "spacing": [float(s) * k for s, k in zip(image.geometry.spacing, stride)],
        "stride": list(stride),
        "is_2d": bool(image.geometry.is_2d),
        "labels": [{"index": i, "value": v, "name": names.get(v, str(v)), "voxels": int(counts[i])}
                   for i, v in enumerate(values)],
    }
    write_json(folder / PREVIEW_META, meta)
    return meta
