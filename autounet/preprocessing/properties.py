"""What preprocessing did to one case, as plain JSON data: enough to map a prediction back onto the original image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from autounet.io import Geometry

#: Bump when preprocessing changes its results for the same plans: stored cases are then recomputed.
PREPROCESSING_VERSION = 1


@dataclass(frozen=True)
class CaseProperties:
    """Per-case record of preprocessing, stored as ``<case_id>.json`` beside the arrays.

    Shapes and boxes after ``original_shape`` are in the *transposed* axis order (the order of the stored
    arrays); ``original_shape``, ``spacing``, ``origin`` and ``direction`` describe the input file in its own
    array order (z, y, x), ready for :func:`autounet.io.write_image`.

    Parameters
    ----------
    case_id : str
    original_shape : tuple of int
        Spatial shape of the input image, file array order.
    spacing, origin, direction, is_2d
        Geometry of the input image (array order; see :class:`autounet.io.Geometry`).
    transpose_forward, transpose_backward : tuple of int
        Axis permutation applied before cropping, and its inverse.
    shape_before_cropping : tuple of int
        Spatial shape after transposition.
    crop_box : tuple of (start, stop)
        Half-open box of the non-zero region per (transposed) axis.
    shape_before_resampling : tuple of int
        Spatial shape after cropping.
    spacing_before_resampling : tuple of float
        Input spacing in transposed order.
    shape_after_resampling, spacing_after_resampling
        Shape and spacing of the stored arrays. For a ``2d`` configuration the first spacing is the
        input's (the slice axis is never resampled).
    separate_z_axis : int or None
        Axis resampled separately (nearest-neighbour by default) because the data is anisotropic.
    resampling_backend : str
        ``"reference"``, ``"separable"`` or ``"none"`` (shape unchanged).
    normalization : tuple of dict
        Per channel: the scheme and the statistics it used (e.g. ``mean``, ``std``).
    data_identifier : str
        Folder the arrays are stored in (shared by configurations with identical preprocessing).
    foreground_file : str or None
        Name of the ``.npz`` file with sampled foreground locations (None at inference).
    source : str
        Input file(s), for messages.
    """

    case_id: str
    original_shape: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]
    is_2d: bool
    transpose_forward: tuple[int, ...]
    transpose_backward: tuple[int, ...]
    shape_before_cropping: tuple[int, ...]
    crop_box: tuple[tuple[int, int], ...]
    shape_before_resampling: tuple[int, ...]
    spacing_before_resampling: tuple[float, ...]
    shape_after_resampling: tuple[int, ...]
    spacing_after_resampling: tuple[float, ...]
    separate_z_axis: int | None = None
    resampling_backend: str = "none"
    normalization: tuple[dict[str, Any], ...] = ()
    data_identifier: str = ""
    foreground_file: str | None = None
    source: str = ""
    preprocessing_version: int = PREPROCESSING_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def geometry(self) -> Geometry:
        """Geometry of the original image, for writing a restored prediction with :func:`autounet.io.write_image`."""
        return Geometry(spacing=self.spacing, origin=self.origin, direction=self.direction, is_2d=self.is_2d)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (lists for tuples)."""
        data: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, dict) else v for v in value]
            elif isinstance(value, dict):
                value = dict(value)
            data[name] = value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CaseProperties":
        """Build from a parsed ``<case_id>.json``; keys that are not fields (e.g. ``signature``) are ignored."""
        ints = lambda values: tuple(int(v) for v in values)  # noqa: E731
        floats = lambda values: tuple(float(v) for v in values)  # noqa: E731
        try:
            return cls(
                case_id=str(data["case_id"]),
                original_shape=ints(data["original_shape"]),
                spacing=floats(data["spacing"]),
                origin=floats(data["origin"]),
                direction=floats(data["direction"]),
                is_2d=bool(data["is_2d"]),
                transpose_forward=ints(data["transpose_forward"]),
                transpose_backward=ints(data["transpose_backward"]),
                shape_before_cropping=ints(data["shape_before_cropping"]),
                crop_box=tuple((int(a), int(b)) for a, b in data["crop_box"]),
                shape_before_resampling=ints(data["shape_before_resampling"]),
                spacing_before_resampling=floats(data["spacing_before_resampling"]),
                shape_after_resampling=ints(data["shape_after_resampling"]),
                spacing_after_resampling=floats(data["spacing_after_resampling"]),
                separate_z_axis=None if data.get("separate_z_axis") is None else int(data["separate_z_axis"]),
                resampling_backend=str(data.get("resampling_backend", "none")),
                normalization=tuple(dict(n) for n in data.get("normalization", ())),
                data_identifier=str(data.get("data_identifier", "")),
                foreground_file=data.get("foreground_file"),
                source=str(data.get("source", "")),
                preprocessing_version=int(data.get("preprocessing_version", PREPROCESSING_VERSION)),
                extra=dict(data.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"case properties lack or garble {err}; re-run \"autounet preprocess\" for this case"
            ) from None
