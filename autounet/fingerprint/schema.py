"""The fingerprint as plain data: frozen dataclasses that round-trip through JSON.

:func:`load_fingerprint` also reads nnU-Net v2 ``dataset_fingerprint.json`` files (and the ``fingerprint``
section of the reference plan files) so users moving over keep what they have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autounet.errors import AutounetError, DatasetError, PlansError
from autounet.jsonio import read_json, write_json
from autounet.typing import PathType, Shape, Spacing

#: Bump when the meaning or content of a fingerprint changes; older files are recomputed.
FINGERPRINT_VERSION = 1


@dataclass(frozen=True)
class IntensityStats:
    """Foreground intensity statistics of one channel over the whole dataset (from a seeded sample)."""

    mean: float
    median: float
    std: float
    min: float
    max: float
    percentile_00_5: float
    percentile_99_5: float
    num_samples: int = 0

    @classmethod
    def from_samples(cls, samples: np.ndarray) -> "IntensityStats":
        """Statistics of a 1D sample; an empty sample (no foreground anywhere) gives zeros."""
        samples = np.asarray(samples, dtype=np.float64)
        if samples.size == 0:
            return cls(0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0)
        low, median, high = np.percentile(samples, [0.5, 50.0, 99.5])
        return cls(
            mean=float(samples.mean()),
            median=float(median),
            std=float(samples.std()),
            min=float(samples.min()),
            max=float(samples.max()),
            percentile_00_5=float(low),
            percentile_99_5=float(high),
            num_samples=int(samples.size),
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IntensityStats":
        return cls(
            mean=float(data["mean"]),
            median=float(data["median"]),
            std=float(data["std"]),
            min=float(data["min"]),
            max=float(data["max"]),
            percentile_00_5=float(data["percentile_00_5"]),
            percentile_99_5=float(data["percentile_99_5"]),
            num_samples=int(data.get("num_samples", 0)),
        )


@dataclass(frozen=True)
class CaseFingerprint:
    """What one training case contributes: geometry, crop size and label voxel counts."""

    case_id: str
    spacing: Spacing
    shape: Shape
    shape_after_crop: Shape
    relative_size_after_crop: float
    label_voxels: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "spacing": list(self.spacing),
            "shape": list(self.shape),
            "shape_after_crop": list(self.shape_after_crop),
            "relative_size_after_crop": self.relative_size_after_crop,
            "label_voxels": {str(k): v for k, v in self.label_voxels.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CaseFingerprint":
        return cls(
            case_id=str(data["case_id"]),
            spacing=tuple(float(s) for s in data["spacing"]),
            shape=tuple(int(s) for s in data["shape"]),
            shape_after_crop=tuple(int(s) for s in data["shape_after_crop"]),
            relative_size_after_crop=float(data["relative_size_after_crop"]),
            label_voxels={int(k): int(v) for k, v in data.get("label_voxels", {}).items()},
        )


@dataclass(frozen=True)
class Fingerprint:
    """Everything the planner needs to know about a dataset, and nothing it must re-read images for.

    Attributes
    ----------
    channel_names : tuple of str
        Modality per channel (drives the normalisation rule).
    labels : dict of str to int
        Declared labels, background included.
    cases : tuple of CaseFingerprint
        Per training case geometry in array axis order (z, y, x).
    intensity : tuple of IntensityStats
        Per channel foreground intensity statistics.
    signature : str
        Hash of the inputs (files, sizes, times, dataset.json, settings) for reuse detection.
    """

    dataset_name: str
    channel_names: tuple[str, ...]
    labels: dict[str, int]
    cases: tuple[CaseFingerprint, ...]
    intensity: tuple[IntensityStats, ...]
    is_2d: bool = False
    signature: str = ""
    fingerprint_version: int = FINGERPRINT_VERSION
    source_format: str = "autounet"

    # Derived views -------------------------------------------------------------------------------------
    @property
    def spacings(self) -> np.ndarray:
        """``(num_cases, 3)`` spacings in mm, array axis order."""
        return np.array([c.spacing for c in self.cases], dtype=float)

    @property
    def shapes_after_crop(self) -> np.ndarray:
        """``(num_cases, 3)`` shapes after cropping to the non-zero region."""
        return np.array([c.shape_after_crop for c in self.cases], dtype=float)

    @property
    def median_relative_size_after_crop(self) -> float:
        return float(np.median([c.relative_size_after_crop for c in self.cases])) if self.cases else 1.0

    @property
    def num_cases(self) -> int:
        return len(self.cases)

    @property
    def label_stats(self) -> dict[int, dict[str, float]]:
        """Per label value: total voxel count and the fraction of cases that contain it."""
        values = sorted(set(self.labels.values()) | {v for c in self.cases for v in c.label_voxels})
        stats = {}
        for value in values:
            counts = [c.label_voxels.get(value, 0) for c in self.cases]
            stats[value] = {
                "voxels": int(sum(counts)),
                "case_fraction": float(np.mean([n > 0 for n in counts])) if counts else 0.0,
            }
        return stats

    # JSON ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        spacings = self.spacings
        shapes = self.shapes_after_crop
        return {
            "fingerprint_version": self.fingerprint_version,
            "dataset_name": self.dataset_name,
            "channel_names": list(self.channel_names),
            "labels": dict(self.labels),
            "is_2d": self.is_2d,
            "num_cases": self.num_cases,
            "summary": {
                "median_spacing": np.median(spacings, axis=0).tolist() if len(spacings) else [],
                "median_shape": np.median([c.shape for c in self.cases], axis=0).tolist() if self.cases else [],
                "median_shape_after_crop": np.median(shapes, axis=0).tolist() if len(shapes) else [],
                "median_relative_size_after_crop": self.median_relative_size_after_crop,
            },
            "intensity_per_channel": {str(i): s.to_dict() for i, s in enumerate(self.intensity)},
            "label_stats": {str(k): v for k, v in self.label_stats.items()},
            "signature": self.signature,
            "source_format": self.source_format,
            "cases": [c.to_dict() for c in self.cases],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], dataset_json: dict[str, Any] | None = None) -> "Fingerprint":
        """Read autounet's own format or nnU-Net v2's ``dataset_fingerprint.json`` content.

        nnU-Net fingerprints carry no channel names or labels: pass the parsed ``dataset.json``
        (MSD or nnU-Net v2 style) as ``dataset_json`` to supply them.
        """
        if "cases" in data and "fingerprint_version" in data:
            return _from_autounet(data)
        if "spacings" in data and "shapes_after_crop" in data:
            return _from_nnunet(data, dataset_json)
        raise PlansError(
            "not a fingerprint: expected autounet's format (keys 'cases', 'fingerprint_version') or nnU-Net v2's "
            "dataset_fingerprint.json (keys 'spacings', 'shapes_after_crop'); run \"autounet fingerprint\" to make one"
        )

    def save(self, path: PathType) -> None:
        write_json(path, self.to_dict())


def _from_autounet(data: dict[str, Any]) -> Fingerprint:
    version = int(data["fingerprint_version"])
    if version > FINGERPRINT_VERSION:
        raise PlansError(
            f"fingerprint version {version} is newer than this autounet understands ({FINGERPRINT_VERSION}); "
            "upgrade autounet or recompute the fingerprint"
        )
    channels = data["intensity_per_channel"]
    return Fingerprint(
        dataset_name=str(data.get("dataset_name", "dataset")),
        channel_names=tuple(data["channel_names"]),
        labels={str(k): int(v) for k, v in data["labels"].items()},
        cases=tuple(CaseFingerprint.from_dict(c) for c in data["cases"]),
        intensity=tuple(IntensityStats.from_dict(channels[str(i)]) for i in range(len(channels))),
        is_2d=bool(data.get("is_2d", False)),
        signature=str(data.get("signature", "")),
        fingerprint_version=version,
        source_format=str(data.get("source_format", "autounet")),
    )


def _from_nnunet(data: dict[str, Any], dataset_json: dict[str, Any] | None) -> Fingerprint:
    from autounet.dataset.description import parse_dataset_json

    if dataset_json is None:
        raise PlansError(
            "an nnU-Net fingerprint has no channel names or labels; pass the dataset's dataset.json too "
            "(--dataset-json DATASET.json)"
        )
    description = parse_dataset_json(dataset_json)
    spacings = data["spacings"]
    shapes = data["shapes_after_crop"]
    if len(spacings) != len(shapes):
        raise PlansError(f"fingerprint has {len(spacings)} spacings but {len(shapes)} shapes; they must pair up per case")
    relative = float(data.get("median_relative_size_after_cropping", 1.0))
    cases = tuple(
        CaseFingerprint(
            case_id=f"case_{i:04d}",
            spacing=tuple(float(s) for s in spacing),
            shape=tuple(int(s) for s in shape),
            shape_after_crop=tuple(int(s) for s in shape),
            relative_size_after_crop=relative,
        )
        for i, (spacing, shape) in enumerate(zip(spacings, shapes))
    )
    properties = data.get("foreground_intensity_properties_per_channel", {})
    intensity = tuple(
        IntensityStats.from_dict(properties[str(i)]) if str(i) in properties else IntensityStats.from_samples(np.empty(0))
        for i in range(description.num_channels)
    )
    is_2d = all(int(c.shape[0]) == 1 for c in cases) if cases else False
    return Fingerprint(
        dataset_name=description.name,
        channel_names=description.channel_names,
        labels=dict(description.labels),
        cases=cases,
        intensity=intensity,
        is_2d=is_2d,
        source_format="nnunet_v2",
    )


def load_fingerprint(path: PathType, dataset_json: PathType | dict[str, Any] | None = None) -> Fingerprint:
    """Load a fingerprint file (autounet or nnU-Net v2 format).

    Parameters
    ----------
    path : str or Path
        ``fingerprint.json`` written by autounet, nnU-Net's ``dataset_fingerprint.json``, or a reference
        plan file holding a ``fingerprint`` (and ``dataset_json``) section.
    dataset_json : str, Path or dict, optional
        Needed for nnU-Net fingerprints, which do not record channel names and labels.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: no fingerprint file; run "autounet fingerprint DATASET -o {path}" first')
    data = read_json(path)
    if isinstance(dataset_json, (str, Path)):
        dataset_json = read_json(dataset_json)
    if "fingerprint" in data and "dataset_json" in data and dataset_json is None:
        dataset_json, data = data["dataset_json"], data["fingerprint"]
    elif "fingerprint" in data:
        data = data["fingerprint"]
    try:
        fingerprint = Fingerprint.from_dict(data, dataset_json)
    except AutounetError as err:
        raise type(err)(f"{path}: {err}") from None
    except (KeyError, TypeError, ValueError, IndexError) as err:  # a hand-edited or damaged file
        detail = f"missing entry {err}" if isinstance(err, KeyError) else str(err)
        raise DatasetError(
            f"{path}: not a usable fingerprint ({detail}); recompute it with \"autounet fingerprint\""
        ) from None
    if not fingerprint.cases:
        raise DatasetError(f"{path}: the fingerprint has no training cases; check the dataset and recompute it")
    for case in fingerprint.cases:
        if not all(np.isfinite(s) and s > 0 for s in case.spacing):
            raise DatasetError(
                f"{path}: case {case.case_id} has spacing {list(case.spacing)} mm (must be positive); fix the image "
                'header and recompute the fingerprint with "autounet fingerprint"'
            )
    return fingerprint
