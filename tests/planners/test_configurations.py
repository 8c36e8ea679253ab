"""Which configurations exist: 2D geometry, and the 3D low-resolution search and its drop rule."""

from __future__ import annotations

import pytest

from autounet.planners.configurations import (
    grow_lowres_spacing,
    is_3d_dataset,
    needs_lowres,
    patch_coverage,
    plan_2d_geometry,
    plan_lowres,
    scaled_median_shape,
)
from autounet.planners.patch_size import plan_patch_size


def test_2d_data_has_no_3d_configurations():
    assert not is_3d_dataset((1.0, 512.0, 512.0))
    assert not is_3d_dataset((20.0, 64.0, 64.0), is_2d=True)
    assert is_3d_dataset((2.0, 64.0, 64.0))


def test_2d_geometry_is_the_in_plane_axes():
    assert plan_2d_geometry((10.0, 0.5, 0.5), (16.0, 400.0, 400.0)) == ((0.5, 0.5), (400.0, 400.0))


def test_coverage_threshold_is_a_quarter():
    assert patch_coverage((64, 64, 64), (128, 128, 128)) == 0.125
    assert needs_lowres((64, 64, 64), (128, 128, 128))
    assert not needs_lowres((64, 128, 128), (128, 128, 128))  # exactly 25%


def test_lowres_spacing_grows_fine_axes_first():
    assert grow_lowres_spacing((3.0, 1.0, 1.0)) == pytest.approx((3.0, 1.03, 1.03))
    assert grow_lowres_spacing((2.0, 1.0, 1.0)) == pytest.approx((2.06, 1.03, 1.03))  # within 2x: all axes
    assert scaled_median_shape((1.0, 1.0, 1.0), (2.0, 4.0, 4.0), (100, 400, 400)) == (50.0, 100.0, 100.0)


def test_lowres_for_a_large_isotropic_dataset():
    search = plan_lowres((1.0, 1.0, 1.0), (400.0, 400.0, 400.0), (128, 128, 128), plan_patch_size)
    assert search.patch_plan is not None and search.steps > 0
    # the search stops as soon as the low-resolution patch covers 25% of the (smaller) median image
    assert search.patch_plan.patch_size[0] * search.patch_plan.patch_size[1] * search.patch_plan.patch_size[2] \
        >= 0.25 * search.median_voxels
    assert all(s > 1.0 for s in search.spacing)
    assert "covers only" in search.reason


def test_no_lowres_when_the_patch_covers_a_quarter():
    search = plan_lowres((1.0, 1.0, 1.0), (36.0, 50.0, 35.0), (40, 56, 40), plan_patch_size)
    assert search.patch_plan is None and search.steps == 0 and "no low-resolution stage is needed" in search.reason


def test_lowres_is_dropped_when_not_at_least_twice_smaller():
    # a fixed-size patch of 60% of the median image in-plane: one or two 3% steps suffice, far from 2x smaller
    def fixed(spacing, median):
        return plan_patch_size((1.0, 1.0, 1.0), (16, 256, 256))

    search = plan_lowres((1.0, 1.0, 1.0), (70.0, 256.0, 256.0), (16, 256, 256), fixed)
    assert search.patch_plan is None and search.steps >= 1
    assert "too similar to 3d_fullres" in search.reason
