"""Preprocessing test helpers: hand-made plans and small synthetic images with known geometry."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pytest

from autounet.io import Geometry, Image
from autounet.planners.plans import ChannelNormalization, ConfigurationPlan, Plans, ResamplingPlan


def make_configuration(
    name: str,
    spacing: Sequence[float],
    normalization: Sequence[ChannelNormalization],
    data_identifier: str | None = None,
    resampling: ResamplingPlan | None = None,
) -> ConfigurationPlan:
    """A configuration with the fields preprocessing reads; network fields are placeholders."""
    ndim = len(spacing)
    return ConfigurationPlan(
        name=name,
        spacing=tuple(float(s) for s in spacing),
        patch_size=(32,) * ndim,
        batch_size=2,
        median_image_size_in_voxels=(32.0,) * ndim,
        normalization=tuple(normalization),
        features_per_stage=(8, 16),
        kernel_sizes=((3,) * ndim, (3,) * ndim),
        strides=((1,) * ndim, (2,) * ndim),
        n_conv_per_stage=(2, 2),
        n_conv_per_stage_decoder=(2,),
        resampling=resampling or ResamplingPlan(),
        data_identifier=data_identifier or name,
    )


def make_plans(
    spacing_3d: Sequence[float] | None = (1.0, 1.0, 1.0),
    spacing_2d: Sequence[float] | None = None,
    normalization: Sequence[ChannelNormalization] = (ChannelNormalization("zscore"),),
    labels: dict[str, int] | None = None,
    transpose_forward: Sequence[int] = (0, 1, 2),
    cascade: bool = False,
) -> Plans:
    """Plans with a ``3d_fullres`` (and optionally ``2d`` and ``3d_cascade_fullres``) configuration."""
    configurations = {}
    if spacing_3d is not None:
        configurations["3d_fullres"] = make_configuration("3d_fullres", spacing_3d, normalization)
        if cascade:
            configurations["3d_cascade_fullres"] = make_configuration(
                "3d_cascade_fullres", spacing_3d, normalization, data_identifier="3d_fullres"
            )
    if spacing_2d is not None:
        configurations["2d"] = make_configuration("2d", spacing_2d, normalization)
    forward = tuple(transpose_forward)
    return Plans(
        dataset_name="synthetic",
        channel_names=tuple(f"ch{i}" for i in range(len(normalization))),
        labels=labels or {"background": 0, "organ": 1, "lesion": 2},
        transpose_forward=forward,
        transpose_backward=tuple(int(a) for a in np.argsort(forward)),
        original_median_spacing_after_transp=(1.0, 1.0, 1.0),
        original_median_shape_after_transp=(32.0, 32.0, 32.0),
        configurations=configurations,
    )


def make_case(
    shape: Sequence[int] = (20, 40, 36),
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    channels: int = 1,
    body_margin: int = 3,
    seed: int = 0,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    direction: Sequence[float] = (1, 0, 0, 0, 1, 0, 0, 0, 1),
    is_2d: bool = False,
) -> tuple[Image, Image]:
    """A box-shaped non-zero "body" with a margin of zeros, holding an ellipsoid (label 1) and a core (label 2)."""
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    body = np.zeros(shape, bool)
    inner = tuple(slice(min(body_margin, s // 4), s - min(body_margin, s // 4)) if s > 1 else slice(None) for s in shape)
    body[inner] = True
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    centre = [(s - 1) / 2 for s in shape]
    radius = [max(s / 4, 0.5) if s > 1 else 1e9 for s in shape]
    distance = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radius))
    seg = np.zeros(shape, np.uint8)
    seg[distance < 1] = 1
    seg[distance < 0.3] = 2
    data = np.stack([
        np.where(body, 100.0 + 50 * seg + rng.normal(0, 5, shape) + 20 * c, 0.0).astype(np.float32) for c in range(channels)
    ])
    geometry = Geometry(spacing=tuple(spacing), origin=tuple(origin), direction=tuple(direction), is_2d=is_2d)
    return Image(data, geometry, source="synthetic_image.nii.gz"), Image(seg[None], geometry, source="synthetic_label.nii.gz")


@pytest.fixture
def plans_3d() -> Plans:
    return make_plans()
