"""Agreement with nnU-Net v2.8.1's default planner on the 12 reference fingerprints in ../shared/reference.

Every compared value matches; there are no deliberate differences on these files. (Our deliberate differences,
tiny images and overrides, are outside what the reference files exercise; see docs/planning.md.)
"""

from __future__ import annotations

import json

import pytest

from autounet.fingerprint import load_fingerprint
from autounet.planners import DeviceInfo, plan_experiment

from shared_data import reference_plan_files, require

FILES = reference_plan_files()

#: nnU-Net's normalisation class names and ours.
SCHEME_NAMES = {
    "ZScoreNormalization": "zscore",
    "CTNormalization": "ct",
    "NoNormalization": "none",
    "RescaleTo01Normalization": "rescale_to_0_1",
    "RGBTo0_1Normalization": "rgb_to_0_1",
}

@pytest.fixture(scope="module", params=FILES, ids=[f.stem for f in FILES])
def reference(request):
    data = json.loads(require(request.param, "nnU-Net reference plans").read_text())
    plans = plan_experiment(load_fingerprint(request.param), memory_budget_gb=8.0, device=DeviceInfo())
    return data["expected"], plans


def test_configurations_and_transpose(reference):
    expected, plans = reference
    assert sorted(plans.configurations) == sorted(expected["configurations_present"])
    assert ("3d_cascade_fullres" in plans.configurations) == expected["has_cascade"]
    assert list(plans.transpose_forward) == expected["transpose_forward"]
    assert list(plans.transpose_backward) == expected["transpose_backward"]
    assert list(plans.original_median_spacing_after_transp) == pytest.approx(expected["original_median_spacing_after_transp"])
    assert [int(s) for s in plans.original_median_shape_after_transp] == expected["original_median_shape_after_transp"]


@pytest.mark.parametrize("name", ["2d", "3d_fullres", "3d_lowres"])
def test_configuration_values(reference, name):
    expected_all, plans = reference
    if name not in expected_all:
        assert name not in plans.configurations
        return
    expected, planned = expected_all[name], plans.configurations[name]
    assert list(planned.patch_size) == expected["patch_size"]
    assert planned.batch_size == expected["batch_size"]
    assert planned.n_stages == expected["n_stages"]
    assert [list(s) for s in planned.strides] == expected["strides"]
    assert [list(k) for k in planned.kernel_sizes] == expected["kernel_sizes"]
    assert list(planned.features_per_stage) == expected["features_per_stage"]
    assert list(planned.n_conv_per_stage) == expected["n_conv_per_stage"]
    assert list(planned.n_conv_per_stage_decoder) == expected["n_conv_per_stage_decoder"]
    assert planned.batch_dice == expected["batch_dice"]
    assert [n.scheme for n in planned.normalization] == [SCHEME_NAMES[s] for s in expected["normalization_schemes"]]
    assert [n.use_mask for n in planned.normalization] == expected["use_mask_for_norm"]
    assert list(planned.spacing) == pytest.approx(expected["spacing"], rel=1e-6)
    assert list(planned.median_image_size_in_voxels) == pytest.approx(expected["median_image_size_in_voxels"], rel=1e-6)


def test_cascade_links(reference):
    expected, plans = reference
    if not expected["has_cascade"]:
        return
    cascade, lowres, fullres = (plans.configurations[n] for n in ("3d_cascade_fullres", "3d_lowres", "3d_fullres"))
    assert cascade.previous_stage == "3d_lowres" and lowres.next_stage == "3d_cascade_fullres"
    assert cascade.data_identifier == fullres.data_identifier == "3d_fullres"
    assert cascade.patch_size == fullres.patch_size and cascade.spacing == fullres.spacing
