"""Shared type aliases. Axis order is always the array order (z, y, x); 2D data is (1, y, x)."""

from __future__ import annotations

from os import PathLike
from typing import Union

Shape = tuple[int, ...]
"""Spatial shape in array axis order, e.g. ``(z, y, x)``."""

Spacing = tuple[float, ...]
"""Voxel spacing in millimetres, in array axis order."""

PathType = Union[str, "PathLike[str]"]
