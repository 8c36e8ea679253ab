"""The plans schema round-trips through JSON and refuses files it cannot read."""

from __future__ import annotations

import json

import pytest

from autounet.errors import PlansError
from autounet.planners import PLANS_VERSION, Plans, load_plans, plan_experiment


@pytest.fixture
def cascade_plans(make_fp, no_gpu) -> Plans:
    return plan_experiment(make_fp([[1.0, 0.8, 0.8]] * 50, [[400, 512, 512]] * 50, channel_names=("CT", "MRI")), device=no_gpu)


def test_every_key_round_trips(cascade_plans, tmp_path):
    cascade_plans.save(tmp_path / "plans.json")
    data = json.loads((tmp_path / "plans.json").read_text())
    assert data["plans_version"] == PLANS_VERSION
    conf = data["configurations"]["3d_cascade_fullres"]
    assert conf["previous_stage"] == "3d_lowres" and conf["data_identifier"] == "3d_fullres"
    assert conf["normalization"][0]["scheme"] == "ct" and conf["normalization"][0]["clip_range"] == [-17.0, 201.0]
    for key in ("spacing", "patch_size", "batch_size", "strides", "kernel_sizes", "features_per_stage", "normalization"):
        assert key in conf
    assert Plans.from_dict(data).to_dict() == data


def test_hand_edited_plans_load(cascade_plans, tmp_path):
    data = cascade_plans.to_dict()
    data["configurations"]["3d_fullres"]["batch_size"] = 4
    (tmp_path / "plans.json").write_text(json.dumps(data))
    assert load_plans(tmp_path / "plans.json").configurations["3d_fullres"].batch_size == 4


def test_unreadable_plans_are_refused(cascade_plans, tmp_path):
    with pytest.raises(FileNotFoundError, match="run \"autounet plan"):
        load_plans(tmp_path / "missing.json")
    newer = cascade_plans.to_dict() | {"plans_version": PLANS_VERSION + 1}
    with pytest.raises(PlansError, match="newer than this autounet understands"):
        Plans.from_dict(newer)
    broken = cascade_plans.to_dict()
    del broken["configurations"]["2d"]["patch_size"]
    with pytest.raises(PlansError, match="lacks the key 'patch_size'"):
        Plans.from_dict(broken)
