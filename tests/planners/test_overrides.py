"""Overrides: what the user fixes stays fixed, the rest is re-derived, impossible values are refused."""

from __future__ import annotations

import pytest

from autounet.errors import PlansError
from autounet.planners import PlanOverrides, plan_experiment
from autounet.planners.batch_size import plan_batch_size
from autounet.planners.memory import fits_memory, unet_feature_map_size
from autounet.planners.overrides import check_batch_size, check_configurations, check_patch_size, check_spacing

ISO = ([[1.0, 1.0, 1.0]] * 260, [[36, 50, 35]] * 260)
LARGE = ([[1.0, 0.8, 0.8]] * 50, [[400, 512, 512]] * 50)


def _plan(make_fp, no_gpu, data=ISO, gb=None, **overrides):
    return plan_experiment(make_fp(*data, labels={"background": 0, "a": 1, "b": 2}), gb,
                           PlanOverrides(**overrides), device=no_gpu)


def test_patch_override_re_derives_topology_and_batch(make_fp, no_gpu):
    plans = _plan(make_fp, no_gpu, patch_size=(32, 64, 64))
    conf = plans.configurations["3d_fullres"]
    assert conf.patch_size == (32, 64, 64)
    assert conf.strides == ((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2), (1, 2, 2))  # z stops at 4 voxels
    assert conf.features_per_stage == (32, 64, 128, 256, 320)
    estimate = unet_feature_map_size(conf.patch_size, conf.features_per_stage, conf.strides, conf.n_conv_per_stage,
                                     conf.n_conv_per_stage_decoder, 3)
    assert conf.batch_size == plan_batch_size(estimate, conf.patch_size, 36 * 50 * 35 * 260)
    assert plans.configurations["2d"].patch_size == (56, 40)  # a 3-axis patch leaves 2d alone
    assert "override: patch_size=[32, 64, 64]" in plans.notes


def test_patch_not_divisible_is_rounded_up_with_a_note(make_fp, no_gpu):
    plans = _plan(make_fp, no_gpu, patch_size=(30, 60, 60))
    assert plans.configurations["3d_fullres"].patch_size == (32, 64, 64)
    assert any("rounded up to [32, 64, 64]" in note for note in plans.notes)


def test_2d_patch_override_applies_to_2d_only(make_fp, no_gpu):
    plans = _plan(make_fp, no_gpu, patch_size=(64, 48))
    assert plans.configurations["2d"].patch_size == (64, 48)
    assert plans.configurations["3d_fullres"].patch_size == (40, 56, 40)


def test_large_patch_override_on_a_cascade_dataset_keeps_the_patch_in_every_3d_stage(make_fp, no_gpu):
    plans = _plan(make_fp, no_gpu, data=LARGE, patch_size=(64, 96, 96))
    assert {plans.configurations[n].patch_size for n in ("3d_fullres", "3d_lowres", "3d_cascade_fullres")} == {(64, 96, 96)}


def test_batch_override_shrinks_the_patch_until_it_fits(make_fp, no_gpu):
    default = _plan(make_fp, no_gpu, data=LARGE).configurations["3d_fullres"]
    plans = _plan(make_fp, no_gpu, data=LARGE, batch_size=6)
    conf = plans.configurations["3d_fullres"]
    assert conf.batch_size == 6 and plans.configurations["2d"].batch_size == 6
    assert conf.patch_size[0] * conf.patch_size[1] * conf.patch_size[2] < \
        default.patch_size[0] * default.patch_size[1] * default.patch_size[2]
    estimate = unet_feature_map_size(conf.patch_size, conf.features_per_stage, conf.strides, conf.n_conv_per_stage,
                                     conf.n_conv_per_stage_decoder, 3)
    assert fits_memory(estimate, 6, 3)


def test_batch_and_patch_both_fixed_beyond_memory_gives_a_note(make_fp, no_gpu):
    plans = _plan(make_fp, no_gpu, data=LARGE, patch_size=(128, 192, 192), batch_size=8)
    conf = plans.configurations["3d_fullres"]
    assert conf.patch_size == (128, 192, 192) and conf.batch_size == 8
    assert any("exceeds the 8 GB budget" in note for note in plans.notes)


def test_spacing_override_in_input_order_drives_transpose_and_2d(make_fp, no_gpu):
    plans = _plan(make_fp, no_gpu, spacing=(1.0, 1.0, 3.0))
    assert plans.transpose_forward == (2, 0, 1)
    assert plans.configurations["3d_fullres"].spacing == (3.0, 1.0, 1.0)
    assert plans.configurations["3d_fullres"].median_image_size_in_voxels == (12.0, 36.0, 50.0)
    assert plans.configurations["2d"].spacing == (1.0, 1.0)
    assert any("set by the user" in line for line in plans.explanations["dataset"])


def test_spacing_override_for_2d_data_accepts_two_values(make_fp, no_gpu):
    fp = make_fp([[999.0, 1.0, 1.0]] * 4, [[1, 128, 128]] * 4, is_2d=True)
    plans = plan_experiment(fp, overrides=PlanOverrides(spacing=(2.0, 2.0)), device=no_gpu)
    assert plans.configurations["2d"].spacing == (2.0, 2.0)
    assert plans.configurations["2d"].median_image_size_in_voxels == (64.0, 64.0)


def test_configuration_subset(make_fp, no_gpu):
    plans = _plan(make_fp, no_gpu, data=LARGE, configurations=("3d_lowres", "3d_cascade_fullres"))
    assert list(plans.configurations) == ["3d_lowres", "3d_cascade_fullres"]
    assert plans.configurations["3d_lowres"].next_stage == "3d_cascade_fullres"
    only_lowres = _plan(make_fp, no_gpu, data=LARGE, configurations=("3d_lowres",))
    assert only_lowres.configurations["3d_lowres"].next_stage is None
    assert list(_plan(make_fp, no_gpu, configurations=("2d",)).configurations) == ["2d"]


def test_network_family_is_stored_and_used_for_memory(make_fp, no_gpu):
    plans = _plan(make_fp, no_gpu, data=LARGE, network="resenc")
    conf = plans.configurations["3d_fullres"]
    assert conf.network == "resenc"
    assert conf.patch_size != _plan(make_fp, no_gpu, data=LARGE).configurations["3d_fullres"].patch_size


def test_known_family_without_estimate_falls_back_with_a_note(make_fp, no_gpu, monkeypatch):
    import autounet.networks

    monkeypatch.setattr(autounet.networks, "list_networks", lambda: ["resenc", "test_attention", "unet"])
    plans = _plan(make_fp, no_gpu, network="test_attention")
    assert plans.configurations["3d_fullres"].patch_size == (40, 56, 40)
    assert any("no memory estimate of its own" in note for note in plans.notes)


@pytest.mark.parametrize(
    "data, overrides, match",
    [
        (ISO, dict(patch_size=(2, 64, 64)), "smaller than the minimum feature-map size of 4"),
        (ISO, dict(patch_size=(4, 6, 7)), "too small for even one pooling"),
        (ISO, dict(patch_size=(64, 64, 64, 64)), "patch_size has 4 axes"),
        (ISO, dict(patch_size=(64, 64, 64), configurations=("2d",)), "patch_size has 3 axes"),
        (ISO, dict(batch_size=0), "batch size must be at least 1"),
        (ISO, dict(spacing=(1.0, 1.0)), "spacing has 2 values but this 3D dataset needs 3"),
        (ISO, dict(spacing=(1.0, -1.0, 1.0)), "spacing must be positive"),
        (ISO, dict(configurations=("3d_fulres",)), "Did you mean '3d_fullres'"),
        (ISO, dict(configurations=()), "no configurations requested"),
        (ISO, dict(configurations=("3d_lowres",)), "3d_lowres was requested but the 3d_fullres patch covers"),
        (ISO, dict(network="unte"), 'unknown network family "unte".*Did you mean "unet"'),
    ],
)
def test_impossible_overrides_are_refused(make_fp, no_gpu, data, overrides, match):
    with pytest.raises(PlansError, match=match):
        _plan(make_fp, no_gpu, data=data, **overrides)


def test_3d_configurations_for_2d_data_are_refused(make_fp, no_gpu):
    fp = make_fp([[999.0, 1.0, 1.0]] * 4, [[1, 128, 128]] * 4, is_2d=True)
    with pytest.raises(PlansError, match="not available for this dataset"):
        plan_experiment(fp, overrides=PlanOverrides(configurations=("3d_fullres",)), device=no_gpu)
    with pytest.raises(PlansError, match="patch_size has 3 axes"):
        plan_experiment(fp, overrides=PlanOverrides(patch_size=(8, 64, 64)), device=no_gpu)


def test_check_helpers():
    assert check_batch_size(1) == 1
    with pytest.raises(PlansError, match="at least 1"):
        check_batch_size(1.5)
    assert check_spacing((2.0, 2.0), is_2d=True) == (999.0, 2.0, 2.0)
    with pytest.raises(PlansError, match="needs 2 \\(y, x\\) or 3"):
        check_spacing((1.0,), is_2d=True)
    assert check_configurations(["2d", "2d"], ["2d"]) == ("2d",)
    with pytest.raises(PlansError, match="whole voxels"):
        check_patch_size((32.5, 64, 64), (1.0, 1.0, 1.0))
    assert PlanOverrides(network="resenc", network_kwargs={"n_blocks_per_stage": 1}).describe() == [
        "network=resenc", "network_kwargs={'n_blocks_per_stage': 1}"
    ]
