"""plan_experiment end to end on synthetic fingerprints: edge cases, determinism, JSON round trip, notes."""

from __future__ import annotations

import pytest

from autounet.errors import PlansError
from autounet.fingerprint import Fingerprint
from autounet.planners import DeviceInfo, load_plans, plan_experiment


def test_single_case_dataset(make_fp, no_gpu):
    plans = plan_experiment(make_fp([[1.0, 1.0, 1.0]], [[36, 50, 35]]), device=no_gpu)
    fullres = plans.configurations["3d_fullres"]
    assert fullres.patch_size == (40, 56, 40) and fullres.batch_size == 2  # the 5% cap is below the minimum
    assert plans.configurations["2d"].batch_size == 2


def test_2d_only_data(make_fp, no_gpu):
    fp = make_fp([[999.0, 0.5, 0.5]] * 6, [[1, 300, 400]] * 6, channel_names=("rgb_to_0_1",), is_2d=True)
    plans = plan_experiment(fp, device=no_gpu)
    assert list(plans.configurations) == ["2d"]
    conf = plans.configurations["2d"]
    assert conf.spacing == (0.5, 0.5) and conf.patch_size == (320, 448) and conf.ndim == 2
    assert conf.normalization[0].scheme == "rgb_to_0_1" and plans.transpose_forward == (0, 1, 2)


def test_2d_data_without_the_flag_is_recognised_by_its_shape(make_fp, no_gpu):
    plans = plan_experiment(make_fp([[999.0, 1.0, 1.0]] * 3, [[1, 64, 64]] * 3), device=no_gpu)
    assert list(plans.configurations) == ["2d"]


def test_extreme_anisotropy_along_the_last_axis_is_transposed_first(make_fp, no_gpu):
    fp = make_fp([[0.5, 0.5, 10.0]] * 30, [[400, 400, 16]] * 30)
    plans = plan_experiment(fp, device=no_gpu)
    assert plans.transpose_forward == (2, 0, 1) and plans.transpose_backward == (1, 2, 0)
    fullres = plans.configurations["3d_fullres"]
    assert fullres.spacing == (10.0, 0.5, 0.5)
    assert fullres.kernel_sizes[0] == (1, 3, 3) and fullres.strides[1] == (1, 2, 2)
    assert plans.configurations["2d"].spacing == (0.5, 0.5)
    assert plans.original_median_shape_after_transp == (16.0, 400.0, 400.0)


def test_tiny_images_smaller_than_a_patch(make_fp, no_gpu):
    plans = plan_experiment(make_fp([[1.0, 1.0, 1.0]] * 4, [[5, 6, 6]] * 4), device=no_gpu)
    fullres = plans.configurations["3d_fullres"]
    assert fullres.patch_size == (8, 8, 8) and fullres.n_stages == 2
    assert plans.configurations["2d"].patch_size == (8, 8) and plans.configurations["2d"].n_stages == 2
    assert any("grown to 8x8x8" in line for line in plans.explanations["3d_fullres"])


def test_large_ct_dataset_gets_a_cascade(make_fp, no_gpu):
    fp = make_fp([[1.0, 0.8, 0.8]] * 50, [[400, 512, 512]] * 50, channel_names=("CT",))
    plans = plan_experiment(fp, device=no_gpu)
    assert list(plans.configurations) == ["2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres"]
    assert plans.configurations["3d_fullres"].batch_dice and not plans.configurations["3d_lowres"].batch_dice
    assert plans.configurations["3d_lowres"].data_identifier == "3d_lowres"
    ct = plans.configurations["3d_fullres"].normalization[0]
    assert ct.scheme == "ct" and ct.clip_range == (-17.0, 201.0)


@pytest.mark.parametrize(
    "names, relative, schemes, masks",
    [
        (("CT",), 1.0, ["ct"], [False]),
        (("MRI",), 1.0, ["zscore"], [False]),
        (("T2", "ADC"), 1.0, ["zscore", "zscore"], [False, False]),
        (("FLAIR", "T1"), 0.4, ["zscore", "zscore"], [True, True]),
        (("noNorm",), 0.4, ["none"], [False]),
        (("rescale_to_0_1",), 1.0, ["rescale_to_0_1"], [False]),
        (("CT", "MRI"), 0.5, ["ct", "zscore"], [False, True]),
    ],
)
def test_channel_names_pick_the_normalisation(make_fp, no_gpu, names, relative, schemes, masks):
    plans = plan_experiment(make_fp([[1.0, 1.0, 1.0]] * 3, [[40, 40, 40]] * 3, channel_names=names,
                                    relative_size=relative), device=no_gpu)
    for conf in plans.configurations.values():
        assert [n.scheme for n in conf.normalization] == schemes
        assert [n.use_mask for n in conf.normalization] == masks


def test_gpu_memory_scales_patch_and_batch(make_fp, no_gpu):
    fp = make_fp([[1.0, 1.0, 1.0]] * 200, [[300, 300, 300]] * 200)
    small, default, large = (
        plan_experiment(fp, gb, device=no_gpu).configurations["3d_fullres"] for gb in (4.0, None, 24.0)
    )
    volume = [c.patch_size[0] * c.patch_size[1] * c.patch_size[2] for c in (small, default, large)]
    assert volume[0] < volume[1] < volume[2]
    assert plan_experiment(fp, device=no_gpu).memory_budget_gb == 8.0
    assert plan_experiment(fp, 24.0, device=no_gpu).memory_budget_gb == 24.0


def test_deterministic_and_json_round_trip(make_fp, no_gpu, tmp_path):
    fp = make_fp([[2.5, 0.8, 0.8], [3.0, 0.7, 0.7], [2.0, 0.8, 0.8]], [[80, 400, 400], [90, 512, 512], [70, 380, 380]],
                 channel_names=("CT",))
    first, second = plan_experiment(fp, device=no_gpu), plan_experiment(fp, device=no_gpu)
    assert first.to_dict() == second.to_dict()
    first.save(tmp_path / "plans.json")
    loaded = load_plans(tmp_path / "plans.json")
    assert loaded.to_dict() == first.to_dict()
    assert loaded.configurations == first.configurations


def test_plans_record_signature_explanations_and_notes(make_fp, no_gpu):
    plans = plan_experiment(make_fp([[1.0, 1.0, 1.0]] * 3, [[64, 64, 64]] * 3), device=no_gpu)
    assert plans.fingerprint_signature == "sig" and plans.plans_version >= 1
    assert set(plans.explanations) == {"dataset", *plans.configurations}
    assert all(plans.explanations[name] for name in plans.explanations)
    assert any("no CUDA GPU on this machine" in note for note in plans.notes)


def test_gpu_machine_notes(make_fp):
    fp = make_fp([[1.0, 1.0, 1.0]] * 3, [[64, 64, 64]] * 3)
    assert any("--gpu-memory 24" in n for n in plan_experiment(fp, device=DeviceInfo("RTX", 24.0)).notes)
    assert not plan_experiment(fp, 24.0, device=DeviceInfo("RTX", 24.0)).notes


def test_empty_fingerprint_is_refused(no_gpu):
    empty = Fingerprint("empty", ("MRI",), {"background": 0, "a": 1}, (), ())
    with pytest.raises(PlansError, match="no training cases"):
        plan_experiment(empty, device=no_gpu)


def test_non_positive_gpu_memory_is_refused(make_fp, no_gpu):
    with pytest.raises(PlansError, match="GPU memory must be positive"):
        plan_experiment(make_fp([[1.0, 1.0, 1.0]], [[64, 64, 64]]), 0.0, device=no_gpu)


def test_device_is_detected_when_not_given(make_fp):
    plans = plan_experiment(make_fp([[1.0, 1.0, 1.0]], [[64, 64, 64]]))
    assert plans.configurations["3d_fullres"].patch_size == (64, 64, 64)
