"""Generate small synthetic datasets in the MSD layout, for the demo command and for tests.

Each case shows a "body" (non-zero region, so cropping has work to do) holding an ellipsoid organ
(label 1) with a smaller lesion inside it (label 2, and label 3 when ``num_labels`` is 3). Intensities
differ per label and per channel, with smooth bias and noise, so a small network can learn them in
minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from scipy import ndimage

from autounet.io import Geometry, write_image
from autounet.io.image import PLACEHOLDER_2D_SPACING
from autounet.jsonio import write_json
from autounet.typing import PathType

DemoKind = Literal["3d", "3d_aniso", "2d"]


@dataclass(frozen=True)
class DemoSpec:
    """Shape of a synthetic dataset: what :func:`make_demo_dataset` generates."""

    kind: DemoKind = "3d"
    num_cases: int = 12
    num_channels: int = 1
    num_labels: int = 2
    modality: str = "MRI"
    shape: tuple[int, ...] | None = None
    seed: int = 0

    def base_shape(self) -> tuple[int, ...]:
        if self.shape is not None:
            return tuple(self.shape)
        return {"3d": (32, 40, 36), "3d_aniso": (14, 64, 60), "2d": (1, 96, 88)}[self.kind]

    def spacing(self) -> tuple[float, float, float]:
        return {"3d": (1.0, 1.0, 1.0), "3d_aniso": (4.0, 0.8, 0.8), "2d": (PLACEHOLDER_2D_SPACING, 1.0, 1.0)}[self.kind]


def _ellipsoid(shape: tuple[int, ...], center: np.ndarray, radii: np.ndarray) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    dist = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, center, radii))
    return dist <= 1.0


def _make_case(spec: DemoSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    base = np.array(spec.base_shape())
    jitter = np.where(base > 1, rng.integers(-3, 4, size=3), 0)
    shape = tuple(int(s) for s in np.maximum(base + jitter, 1))
    spacing = np.array(spec.spacing())
    if spec.kind == "3d_aniso":
        spacing = spacing * np.array([rng.uniform(0.9, 1.1), 1.0, 1.0])
    spatial = np.array(shape, dtype=float)
    # Physical radii so that objects look round in mm whatever the spacing.
    mm_extent = spatial * np.where(spatial > 1, spacing, 1.0)
    body = _ellipsoid(shape, (spatial - 1) / 2, np.maximum(spatial * 0.5, 1) * np.array([1.3, 0.92, 0.92]))
    if spec.kind == "2d":
        body = _ellipsoid(shape, (spatial - 1) / 2, np.maximum(spatial * 0.5, 1) * np.array([1e9, 0.92, 0.92]))
    organ_radius_mm = mm_extent.min() * rng.uniform(0.16, 0.24) if spec.kind != "2d" else mm_extent[1:].min() * rng.uniform(0.16, 0.24)
    organ_radii = np.maximum(organ_radius_mm * rng.uniform(0.8, 1.25, size=3) / np.where(spatial > 1, spacing, 1.0), 0.6)
    margin = np.minimum(organ_radii + 1, (spatial - 1) / 2)
    organ_center = np.array([rng.uniform(m, s - 1 - m) if s > 1 else 0.0 for m, s in zip(margin, spatial)])
    organ = _ellipsoid(shape, organ_center, organ_radii) & body
    lesion_radii = np.maximum(organ_radii * rng.uniform(0.5, 0.65), 0.6)
    lesion_center = organ_center + np.where(spatial > 1, rng.uniform(-0.3, 0.3, size=3) * organ_radii, 0.0)
    lesion = _ellipsoid(shape, lesion_center, lesion_radii) & organ
    label = np.zeros(shape, dtype=np.uint8)
    label[organ] = 1
    if spec.num_labels >= 2:
        label[lesion] = 2
    if spec.num_labels >= 3:
        second_center = organ_center - np.where(spatial > 1, 0.55 * organ_radii, 0.0)
        second = _ellipsoid(shape, second_center, lesion_radii * 0.8) & organ & ~lesion
        label[second] = 3

    channels = []
    for c in range(spec.num_channels):
        # Each channel gives each label a different mean intensity (tissue contrast differs by modality).
        means = np.array([100.0, 170.0, 240.0, 60.0]) if c % 2 == 0 else np.array([150.0, 90.0, 40.0, 210.0])
        if spec.modality == "CT":
            means = np.array([40.0, 120.0, 200.0, -60.0])
        image = means[label].astype(np.float32)
        bias = ndimage.gaussian_filter(rng.normal(0, 1, size=shape), sigma=6) * 60.0
        noise = rng.normal(0, 12.0, size=shape)
        image = image + bias + noise
        image = ndimage.gaussian_filter(image, sigma=[0 if s == 1 else 0.6 for s in shape])
        if spec.modality == "CT":
            image = np.where(body, image, -1000.0)  # air outside the body
        else:
            image = np.where(body, np.clip(image, 1, None), 0.0)
        channels.append(image.astype(np.float32 if spec.modality != "CT" else np.int16))
    return np.stack(channels), label, tuple(float(s) for s in spacing)


def make_demo_dataset(output: PathType, spec: DemoSpec | None = None, name: str | None = None) -> Path:
    """Write a synthetic dataset in the MSD layout and return its folder.

    Parameters
    ----------
    output : str or Path
        Folder to create; it gets ``dataset.json``, ``imagesTr/``, ``labelsTr/`` and ``imagesTs/``
        (two unlabelled test cases).
    spec : DemoSpec, optional
        What to generate; defaults to 12 isotropic single-channel 3D cases with two labels.
    name : str, optional
        Dataset name in ``dataset.json``.

    Examples
    --------
    >>> import tempfile
    >>> from autounet.dataset import load_dataset
    >>> folder = make_demo_dataset(tempfile.mkdtemp(), DemoSpec(kind="2d", num_cases=3))
    >>> dataset = load_dataset(folder)
    >>> len(dataset.training), dataset.read_images(dataset.training[0]).data.shape[:2]
    (3, (1, 1))
    """
    spec = spec or DemoSpec()
    output = Path(output)
    rng = np.random.default_rng(spec.seed)
    ending = ".png" if spec.kind == "2d" and spec.num_channels in (1, 3) and spec.modality != "CT" else ".nii.gz"
    training = []
    test = []
    total = spec.num_cases + 2
    for index in range(total):
        data, label, spacing = _make_case(spec, rng)
        case_id = f"demo_{index:03d}"
        is_test = index >= spec.num_cases
        folder = "imagesTs" if is_test else "imagesTr"
        geometry = Geometry(
            spacing=spacing,
            origin=tuple(float(v) for v in rng.uniform(-50, 50, size=3)) if spec.kind != "2d" else (0.0, 0.0, 0.0),
            is_2d=spec.kind == "2d",
        )
        if ending == ".png":
            data = np.clip(data, 0, 255).astype(np.uint8)
        write_image(output / folder / f"{case_id}{ending}", data, geometry)
        if is_test:
            test.append(f"./imagesTs/{case_id}{ending}")
            continue
        write_image(output / "labelsTr" / f"{case_id}{ending}", label[None], geometry)
        training.append({"image": f"./imagesTr/{case_id}{ending}", "label": f"./labelsTr/{case_id}{ending}"})
    label_names = {"0": "background", "1": "organ", "2": "lesion", "3": "cyst"}
    write_json(
        output / "dataset.json",
        {
            "name": name or f"Demo_{spec.kind}",
            "description": f"autounet synthetic demo data ({spec.kind}, seed {spec.seed})",
            "tensorImageSize": "4D" if spec.num_channels > 1 else "3D",
            "reference": "generated by autounet.dataset.demo",
            "licence": "CC0",
            "modality": {str(c): spec.modality for c in range(spec.num_channels)},
            "labels": {k: v for k, v in label_names.items() if int(k) <= spec.num_labels},
            "numTraining": spec.num_cases,
            "numTest": 2,
            "file_ending": ending,
            "training": training,
            "test": test,
        },
        indent=2,
    )
    return output
