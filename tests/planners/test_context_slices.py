"""2.5D context slices: the neighbour rule, the plans field, the planning override and its refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from autounet.cli import main
from autounet.errors import PlansError
from autounet.planners import PlanOverrides, Plans, format_explanations, load_plans, network_input_channels, plan_experiment
from autounet.planners.context_slices import (
    check_context_slices,
    context_slice_indices,
    expand_channel_indices,
    stack_context_slices,
)

SPACINGS_3D = [[1.0, 1.0, 1.0]] * 20
SHAPES_3D = [[40, 64, 64]] * 20


@pytest.fixture
def fingerprint_3d(make_fp):
    return make_fp(SPACINGS_3D, SHAPES_3D, channel_names=("T1", "T2"))


@pytest.mark.parametrize(
    "index, num_slices, k, expected",
    [(5, 10, 0, [5]), (5, 10, 2, [3, 4, 5, 6, 7]), (0, 10, 2, [0, 0, 0, 1, 2]), (9, 10, 2, [7, 8, 9, 9, 9]),
     (0, 1, 1, [0, 0, 0]), (1, 3, 3, [0, 0, 0, 1, 2, 2, 2])],
)
def test_neighbour_indices_are_clamped_at_the_edges(index, num_slices, k, expected):
    assert context_slice_indices(index, num_slices, k).tolist() == expected


@pytest.mark.parametrize("as_tensor", [False, True])
def test_stack_orders_channels_image_channel_first(as_tensor):
    # value = 100 * channel + slice, constant in-plane
    volume = (100 * np.arange(2)[:, None, None, None] + np.arange(5)[None, :, None, None]) * np.ones((2, 5, 3, 4))
    volume = torch.tensor(volume) if as_tensor else volume
    stacked = stack_context_slices(volume, 1, 2)
    assert tuple(stacked.shape) == (10, 3, 4)
    assert [float(v) for v in stacked[:, 0, 0]] == [0, 0, 1, 2, 3, 100, 100, 101, 102, 103]
    assert tuple(stack_context_slices(volume, 1, 0).shape) == (2, 3, 4)


def test_mask_channels_expand_to_every_stacked_slice():
    assert expand_channel_indices((0, 2), 1) == (0, 1, 2, 6, 7, 8)


@pytest.mark.parametrize(
    "value, ndim, match",
    [(-1, 2, "whole number >= 0"), (1.5, 2, "whole number >= 0"), (True, 2, "whole number >= 0"),
     (1, 3, "only extra channels of the 2d configuration")],
)
def test_bad_context_slices_are_refused(value, ndim, match):
    with pytest.raises(PlansError, match=match):
        check_context_slices(value, ndim)


def test_override_reaches_the_2d_configuration_and_round_trips(fingerprint_3d, no_gpu, tmp_path):
    plans = plan_experiment(fingerprint_3d, overrides=PlanOverrides(context_slices=2), device=no_gpu)
    conf = plans.configurations["2d"]
    assert conf.context_slices == 2 and plans.configurations["3d_fullres"].context_slices == 0
    assert network_input_channels(plans, conf) == 2 * 5
    assert network_input_channels(plans, plans.configurations["3d_fullres"]) == 2
    assert "override: context_slices=2" in plans.notes
    assert any("z-2..z+2 stacked as channels" in line for line in plans.explanations["2d"])
    assert "2.5D" in format_explanations(plans)
    plans.save(tmp_path / "plans.json")
    data = json.loads((tmp_path / "plans.json").read_text())
    assert data["configurations"]["2d"]["context_slices"] == 2
    assert load_plans(tmp_path / "plans.json") == plans


def test_plans_without_the_field_load_as_plain_2d(fingerprint_3d, no_gpu):
    data = plan_experiment(fingerprint_3d, device=no_gpu).to_dict()
    for conf in data["configurations"].values():
        del conf["context_slices"]
    assert all(c.context_slices == 0 for c in Plans.from_dict(data).configurations.values())


def test_hand_edited_context_on_a_3d_configuration_is_refused(fingerprint_3d, no_gpu, tmp_path):
    data = plan_experiment(fingerprint_3d, device=no_gpu).to_dict()
    data["configurations"]["3d_fullres"]["context_slices"] = 1
    (tmp_path / "plans.json").write_text(json.dumps(data))
    with pytest.raises(PlansError, match="plans.json: context_slices=1 was given for 3d_fullres"):
        load_plans(tmp_path / "plans.json")


def test_override_is_refused_where_it_cannot_work(make_fp, fingerprint_3d, no_gpu):
    flat = make_fp([[999.0, 0.5, 0.5]] * 10, [[1, 256, 256]] * 10, is_2d=True)
    with pytest.raises(PlansError, match="needs 3D data"):
        plan_experiment(flat, overrides=PlanOverrides(context_slices=1), device=no_gpu)
    with pytest.raises(PlansError, match="add 2d to --configurations"):
        plan_experiment(fingerprint_3d, overrides=PlanOverrides(context_slices=1, configurations=("3d_fullres",)),
                        device=no_gpu)
    with pytest.raises(PlansError, match=">= 0"):
        plan_experiment(fingerprint_3d, overrides=PlanOverrides(context_slices=-2), device=no_gpu)
    # 0 is plain 2D and allowed everywhere
    assert plan_experiment(flat, overrides=PlanOverrides(context_slices=0), device=no_gpu).configurations["2d"].context_slices == 0


def test_cli_plan_context_slices(fingerprint_3d, tmp_path, capsys):
    fingerprint_3d.save(tmp_path / "fingerprint.json")
    out = tmp_path / "plans.json"
    assert main(["plan", "--fingerprint", str(tmp_path / "fingerprint.json"), "-o", str(out), "--context-slices", "1"]) == 0
    assert load_plans(out).configurations["2d"].context_slices == 1
    assert "context slices 1" in capsys.readouterr().out
