"""DICOM test helpers: synthetic series with known geometry (one per geometry variant) and the real series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autounet.io import Geometry

pytest.importorskip("pydicom", reason="DICOM tests need the dicom extra: pip install -e '.[dicom]'")
pytest.importorskip("highdicom", reason="DICOM tests need the dicom extra: pip install -e '.[dicom]'")

#: ../shared/datasets beside the repository (as tests/conftest.py has it).
SHARED_DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def rotation(axis: int, degrees: float) -> np.ndarray:
    """A 3x3 rotation about world axis ``axis`` (0 = x, 1 = y, 2 = z)."""
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    m = np.eye(3)
    i, j = [a for a in range(3) if a != axis]
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def geometry_from_axes(columns_xyz: np.ndarray, spacing_zyx, origin_xyz) -> Geometry:
    """Array-order Geometry from the world (x, y, z) directions of the array axes x, y, z (columns)."""
    return Geometry(spacing=tuple(spacing_zyx), origin=tuple(np.asarray(origin_xyz, float)[::-1]),
                    direction=tuple(np.asarray(columns_xyz, float)[::-1, ::-1].ravel()))


#: The geometry variants the issue names. Columns are the world (LPS x, y, z) directions of array axes x, y, z.
GEOMETRY_VARIANTS = {
    "axial": geometry_from_axes(np.eye(3), (2.0, 0.8, 0.8), (-40.0, -30.0, 100.0)),
    # column direction (0, -1, 0): rows run towards anterior, the mirror bug's case; normal (0, 0, -1)
    "negative_column_direction": geometry_from_axes(np.diag([1.0, -1.0, -1.0]), (2.0, 0.8, 0.8), (-40.0, 30.0, 100.0)),
    # files stacked against the normal: slice k+1 lies below slice k (left-handed array axes)
    "reversed_slice_order": geometry_from_axes(np.diag([1.0, 1.0, -1.0]), (2.0, 0.8, 0.8), (-40.0, -30.0, 100.0)),
    "oblique": geometry_from_axes(rotation(0, 25) @ rotation(2, 15), (2.0, 0.8, 0.8), (-40.0, -30.0, 100.0)),
    "non_square_pixels": geometry_from_axes(np.eye(3), (2.0, 0.6, 1.1), (-40.0, -30.0, 100.0)),
    "sagittal": geometry_from_axes(np.array([[0, 0, 1.0], [1.0, 0, 0], [0, -1.0, 0]]).T, (1.5, 0.9, 0.9), (0.0, 50.0, 80.0)),
}


def blob_label_map(shape, seed: int = 0) -> np.ndarray:
    """Three labels in asymmetric boxes (a mirror along any axis moves every centroid), one of them absent on
    some slices."""
    label = np.zeros(shape, np.uint8)
    z, y, x = shape
    label[1 : z // 2, 2 : y // 3, 1 : x // 4] = 1
    label[z // 3 : z - 1, y // 2 : y - 2, x // 2 : x - 3] = 2
    label[z - 2, 1:3, x - 4 : x - 1] = 3
    return label


def world_voxels(geometry: Geometry, shape) -> np.ndarray:
    """World (z, y, x) of every voxel centre, shape (*shape, 3)."""
    index = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).reshape(-1, 3)
    return geometry.index_to_world(index).reshape(*shape, 3)


def resample_by_world(values: np.ndarray, source: Geometry, target: Geometry, target_shape) -> np.ndarray:
    """``values`` (on ``source``) looked up at the voxel centres of ``target`` by world position (nearest voxel);
    independent arithmetic used to compare grids that order their axes differently. Points must hit voxel centres."""
    world = world_voxels(target, target_shape).reshape(-1, 3)
    to_index = np.linalg.inv(source.direction_matrix * np.asarray(source.spacing))
    index = (world - np.asarray(source.origin)) @ to_index.T
    rounded = np.round(index).astype(int)
    assert np.max(np.abs(index - rounded)) < 1e-3, "grids do not share voxel centres"
    return values[tuple(rounded.T)].reshape(target_shape)


@pytest.fixture(scope="session")
def dicom_data() -> Path:
    path = SHARED_DATASETS / "dicom"
    if not path.is_dir():
        pytest.skip(f"real DICOM data not found at {path}; these tests need ../shared/datasets/dicom")
    return path
