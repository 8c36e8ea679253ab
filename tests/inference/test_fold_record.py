"""A fold is loaded as its record (fold.json) says it was trained; plans.json is the default only. Folds trained
before records existed still load; records that were damaged, edited or do not fit their checkpoint are refused."""

from __future__ import annotations

import json

import pytest

from autounet.inference import Predictor
from autounet.inference.model_folder import load_trained_fold
from autounet.layout import ResultsLayout
from autounet.planners.plans import load_plans
from autounet.trained_fold.checkpoint import CheckpointError
from autounet.trained_fold.record import make_fold_record, read_fold_record, write_fold_record

from .conftest import tiny_configuration, tiny_plans, write_case, write_checkpoint

#: The fold was trained with a larger patch and one more stage than the plans say (``--patch-size 32 32 32``).
TRAINED = dict(patch_size=(32, 32, 32), features_per_stage=(4, 8, 16), kernel_sizes=((3, 3, 3),) * 3,
               strides=((1, 1, 1), (2, 2, 2), (2, 2, 2)), n_conv_per_stage=(1, 1, 1), n_conv_per_stage_decoder=(1, 1))


def _trained_with_override(folder, record: bool = True, configuration_plan: bool = True):
    """A model folder whose fold 0 was trained with TRAINED instead of the plans' two-stage 16**3 network."""
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres")})
    folder.mkdir(parents=True, exist_ok=True)
    plans.save(folder / "plans.json")
    effective = plans.configuration("3d_fullres").replace(**TRAINED)
    as_trained = tiny_plans({"3d_fullres": effective})
    extra = {"training_config": {"patch_size": [32, 32, 32]}, "context_slices": 0}
    if configuration_plan:
        extra["configuration_plan"] = effective.to_dict()
    write_checkpoint(folder, as_trained, "3d_fullres", 0, overrides=extra)
    if record:
        write_fold_record(ResultsLayout(folder).fold_record("3d_fullres", 0),
                          make_fold_record(plans, effective, 0, {"patch_size": (32, 32, 32)}))
    return folder, plans


@pytest.mark.parametrize("record, configuration_plan", [(True, True), (False, True)])
def test_the_fold_is_built_as_it_was_trained(tmp_path, record, configuration_plan):
    folder, plans = _trained_with_override(tmp_path / "results", record, configuration_plan)
    trained = load_trained_fold(folder, plans, "3d_fullres", 0)
    assert trained.patch_size == (32, 32, 32) and len(trained.network.encoder.stages) == 3
    assert trained.record.plans_values["patch_size"] == [16, 16, 16]
    write_case(tmp_path / "in" / "a.nii.gz")
    model = Predictor.from_model_folder(folder, device="cpu", postprocessing=None, mirroring=False)
    assert model.predict_folder(tmp_path / "in", tmp_path / "out", progress=False).ok


def test_the_record_is_plain_json_a_person_can_read(tmp_path):
    folder, _ = _trained_with_override(tmp_path / "results")
    data = json.loads((folder / "3d_fullres" / "fold_0" / "fold.json").read_text())
    assert data["configuration_name"] == "3d_fullres" and data["fold"] == "0"
    assert data["configuration"]["patch_size"] == [32, 32, 32] and data["overrides"] == {"patch_size": [32, 32, 32]}
    assert data["in_channels"] == 1 and data["label_values"] == [0, 1, 2] and data["resampling_backend"] == "auto"
    assert read_fold_record(folder / "3d_fullres" / "fold_0" / "fold.json").to_dict() == data


def test_a_record_edited_to_another_network_is_refused(tmp_path):
    folder, plans = _trained_with_override(tmp_path / "results", configuration_plan=False)
    path = folder / "3d_fullres" / "fold_0" / "fold.json"
    data = json.loads(path.read_text())
    data["configuration"]["features_per_stage"] = [6, 12, 24]
    path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="do not fit the network that fold.json describes"):
        load_trained_fold(folder, plans, "3d_fullres", 0)


def test_a_damaged_record_is_refused(tmp_path):
    folder, plans = _trained_with_override(tmp_path / "results")
    (folder / "3d_fullres" / "fold_0" / "fold.json").write_text('{"fold": 0}')
    with pytest.raises(CheckpointError, match="fold.json: not a usable fold record .*configuration_name"):
        load_trained_fold(folder, plans, "3d_fullres", 0)


def test_a_record_that_does_not_belong_to_the_checkpoint_is_refused(tmp_path):
    """A fold trained again with other overrides: the new record is written at the start, the old final checkpoint
    is still there until the new one replaces it."""
    folder, plans = _trained_with_override(tmp_path / "results")
    other = plans.configuration("3d_fullres").replace(**{**TRAINED, "patch_size": (24, 24, 24)})
    write_fold_record(folder / "3d_fullres" / "fold_0" / "fold.json", make_fold_record(plans, other, 0, {"patch_size": (24, 24, 24)}))
    with pytest.raises(CheckpointError, match=r"fold.json and checkpoint_final.pt do not belong together \(patch_size"):
        load_trained_fold(folder, plans, "3d_fullres", 0)


def test_plans_edited_after_training_are_refused_where_the_fold_took_them_from(tmp_path):
    folder, plans = _trained_with_override(tmp_path / "results")
    conf = plans.configuration("3d_fullres")
    # The plans' patch was overridden by the run: a new default there does not concern this fold.
    plans.__class__(**{**plans.__dict__, "configurations": {"3d_fullres": conf.replace(patch_size=(20, 20, 20))}}).save(
        folder / "plans.json")
    assert load_trained_fold(folder, load_plans(folder / "plans.json"), "3d_fullres", 0).patch_size == (32, 32, 32)
    # The spacing came from the plans: preprocessing new images with another one would feed the network other data.
    plans.__class__(**{**plans.__dict__, "configurations": {"3d_fullres": conf.replace(spacing=(2.0, 2.0, 2.0))}}).save(
        folder / "plans.json")
    with pytest.raises(CheckpointError, match=r"trained with spacing=\[1.0, 1.0, 1.0\] but the model folder's plans.json says spacing=\[2.0"):
        load_trained_fold(folder, load_plans(folder / "plans.json"), "3d_fullres", 0)


def test_mirror_axes_come_from_the_record_then_the_plans(tmp_path):
    folder, plans = _trained_with_override(tmp_path / "results")
    assert load_trained_fold(folder, plans, "3d_fullres", 0).mirror_axes is None
    data = plans.to_dict()
    data["configurations"]["3d_fullres"]["training"] = {"inference_mirror_axes": [1, 2]}
    (folder / "plans.json").write_text(json.dumps(data))
    assert load_trained_fold(folder, load_plans(folder / "plans.json"), "3d_fullres", 0).mirror_axes == (1, 2)
    path = folder / "3d_fullres" / "fold_0" / "fold.json"
    record = json.loads(path.read_text())
    record["inference_mirror_axes"] = [2]
    path.write_text(json.dumps(record))
    assert load_trained_fold(folder, load_plans(folder / "plans.json"), "3d_fullres", 0).mirror_axes == (2,)
