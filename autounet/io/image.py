"""The one internal image type: channel-first array plus geometry in array axis order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Spacing given to the missing first axis of a flat 2D image (nnU-Net uses the same value), so that
#: the planner recognises it as "not a real axis" and never pools or resamples along it.
PLACEHOLDER_2D_SPACING = 999.0


@dataclass(frozen=True)
class Geometry:
    """Where an image's voxels are in the world, in array axis order (z, y, x).

    Parameters
    ----------
    spacing : tuple of float
        Voxel size in mm per array axis.
    origin : tuple of float
        World position (mm) of voxel (0, 0, 0), components in (z, y, x) order.
    direction : tuple of float
        Row-major 3x3 direction cosines in array order: column ``j`` is the world direction of array axis ``j``.
    is_2d : bool
        True when the file holds a flat image; the first axis then has length 1 and a placeholder spacing.
    """

    spacing: tuple[float, ...]
    origin: tuple[float, ...] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    is_2d: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(s) for s in self.origin))
        object.__setattr__(self, "direction", tuple(float(s) for s in self.direction))
        ndim = len(self.spacing)
        if len(self.origin) != ndim or len(self.direction) != ndim * ndim:
            raise ValueError(
                f"geometry needs {ndim} origin values and {ndim * ndim} direction values, "
                f"got {len(self.origin)} and {len(self.direction)}"
            )

    @property
    def direction_matrix(self) -> np.ndarray:
        n = len(self.spacing)
        return np.asarray(self.direction, dtype=float).reshape(n, n)

    def index_to_world(self, index: np.ndarray) -> np.ndarray:
        """Map voxel indices ``(..., 3)`` in array order to world coordinates (mm) in (z, y, x) order."""
        index = np.asarray(index, dtype=float)
        return np.asarray(self.origin) + (index * np.asarray(self.spacing)) @ self.direction_matrix.T

    def to_dict(self) -> dict[str, Any]:
        return {
            "spacing": list(self.spacing),
            "origin": list(self.origin),
            "direction": list(self.direction),
            "is_2d": self.is_2d,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Geometry":
        return cls(
            spacing=tuple(data["spacing"]),
            origin=tuple(data["origin"]),
            direction=tuple(data["direction"]),
            is_2d=bool(data.get("is_2d", False)),
        )


@dataclass
class Image:
    """An image in memory.

    Parameters
    ----------
    data : ndarray of shape (C, z, y, x)
        Voxel values in the file's dtype, channel first.
    geometry : Geometry
        Spacing, origin and direction in (z, y, x) order.
    source : str
        File(s) the image came from, for error messages.
    """

    data: np.ndarray
    geometry: Geometry
    source: str = field(default="")

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.data.shape[1:])

    @property
    def num_channels(self) -> int:
        return int(self.data.shape[0])
