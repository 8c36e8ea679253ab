"""A model folder from elsewhere (issue 9): `autounet predict` refuses a hand-edited or mismatched plans.json and a
checkpoint that is not plain tensors with one message naming the file (exit code 2, no traceback), and writes
nothing."""

from __future__ import annotations

import json
import os

import pytest
import torch

from autounet.cli import main

from .conftest import make_results, tiny_configuration, tiny_plans, write_case

CHECKPOINT = "3d_fullres/fold_0/checkpoint_final.pt"


@pytest.fixture
def model(tmp_path):
    plans = tiny_plans({"3d_fullres": tiny_configuration("3d_fullres")})
    return make_results(tmp_path / "model from elsewhere", plans, {"3d_fullres": (0,)})


def _edit_plans(model, change) -> None:
    data = json.loads((model / "plans.json").read_text())
    change(data)
    (model / "plans.json").write_text(json.dumps(data))


def _edit_checkpoint(model, change) -> None:
    state = torch.load(model / CHECKPOINT, weights_only=True)
    change(state)
    torch.save(state, model / CHECKPOINT)


def _configuration(data) -> dict:
    return data["configurations"]["3d_fullres"]


class _Payload:
    """Unpickling this would run ``os.system``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# (id, change to the model folder, the file the message names, words it must hold)
CASES = [
    ("plans_not_json", lambda m: (m / "plans.json").write_text("{nope"), "plans.json", ["not valid JSON"]),
    ("plans_without_version", lambda m: _edit_plans(m, lambda d: d.pop("plans_version")), "plans.json",
     ["not an autounet plans file"]),
    ("plans_version_newer", lambda m: _edit_plans(m, lambda d: d.update(plans_version=99)), "plans.json",
     ["plans version 99 is newer", "upgrade autounet"]),
    ("plans_version_not_a_number", lambda m: _edit_plans(m, lambda d: d.update(plans_version="one")), "plans.json",
     ["wrong type or value", "re-run \"autounet plan\""]),
    ("patch_size_wrong_type", lambda m: _edit_plans(m, lambda d: _configuration(d).update(patch_size="abc")),
     "plans.json", ["wrong type or value"]),
    ("plans_key_missing", lambda m: _edit_plans(m, lambda d: _configuration(d).pop("kernel_sizes")), "plans.json",
     ["lacks the key 'kernel_sizes'"]),
    ("plans_other_network_family", lambda m: _edit_plans(m, lambda d: _configuration(d).update(network="resenc")),
     CHECKPOINT, ["network 'unet' but the model folder's plans.json says 'resenc'"]),
    ("architecture_kernels_differ",
     lambda m: _edit_plans(m, lambda d: _configuration(d).update(kernel_sizes=[[1, 1, 1]] * 2)),
     CHECKPOINT, ["do not fit the network", "shapes differ", "(4, 1, 3, 3, 3)", "(4, 1, 1, 1, 1)"]),
    ("architecture_more_labels", lambda m: _edit_plans(m, lambda d: d["labels"].update(extra=3)), CHECKPOINT,
     ["decoder.heads.0.weight: checkpoint (3, 4, 1, 1, 1), plans (4, 4, 1, 1, 1)"]),
    ("checkpoint_of_older_plans", lambda m: _edit_checkpoint(m, lambda s: s.update(plans_version=0)), CHECKPOINT,
     ["plans_version 0"]),
    ("checkpoint_holds_a_module",
     lambda m: _edit_checkpoint(m, lambda s: s.update(network_weights=torch.nn.Conv3d(1, 1, 1))), CHECKPOINT,
     ["refused to load", "Unsupported global: GLOBAL torch.nn.modules.conv.Conv3d", "source you trust"]),
    ("checkpoint_weight_not_a_tensor",
     lambda m: _edit_checkpoint(m, lambda s: s["network_weights"].update({next(iter(s["network_weights"])): [1]})),
     CHECKPOINT, ["holds list instead of a tensor"]),
    # issue 20, item 7: hand-edited values are refused up front, naming the field (before: per-case Python errors or
    # silently wrong labels)
    ("patch_size_huge", lambda m: _edit_plans(m, lambda d: _configuration(d).update(patch_size=[100000] * 3)),
     "plans.json", ["configurations.3d_fullres.patch_size [100000, 100000, 100000]", "at most 8192 per axis"]),
    ("patch_size_zero", lambda m: _edit_plans(m, lambda d: _configuration(d).update(patch_size=[0, 16, 16])),
     "plans.json", ["configurations.3d_fullres.patch_size [0, 16, 16]: every axis needs at least 1 voxel"]),
    ("spacing_zero", lambda m: _edit_plans(m, lambda d: _configuration(d).update(spacing=[0, 1, 1])),
     "plans.json", ["configurations.3d_fullres.spacing [0.0, 1.0, 1.0]: every spacing must be a positive number"]),
    ("label_value_too_large", lambda m: _edit_plans(m, lambda d: d["labels"].update(lesion=2**40)), "plans.json",
     ["label values must be whole numbers 0..2147483647 (lesion=1099511627776)"]),
    ("data_identifier_unsafe", lambda m: _edit_plans(m, lambda d: _configuration(d).update(data_identifier="../../x")),
     "plans.json", ["configurations.3d_fullres.data_identifier '../../x': contains a path separator"]),
    ("checkpoint_truncated", lambda m: (m / CHECKPOINT).write_bytes((m / CHECKPOINT).read_bytes()[:500]), CHECKPOINT,
     ["damaged or not a torch checkpoint"]),
]


@pytest.mark.parametrize("change, named, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_mismatched_or_unsafe_model_folder_is_refused(tmp_path, model, capsys, change, named, words):
    write_case(tmp_path / "in" / "case_0000.nii.gz")
    change(model)
    code = main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(model),
                 "--device", "cpu", "--no-mirroring"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("autounet predict: error: ") and err.count("error:") == 1 and "Traceback" not in err, err
    assert str(model / named) in err, err
    for word in words:
        assert word in err, err
    assert not list(tmp_path.glob("out/*.nii.gz"))


def test_a_pickle_payload_in_the_checkpoint_never_runs(tmp_path, model, capsys):
    marker = tmp_path / "pwned"
    _edit_checkpoint(model, lambda state: state.update(training_config=_Payload(marker)))
    write_case(tmp_path / "in" / "case_0000.nii.gz")
    code = main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(model), "--device", "cpu"])
    assert code == 2 and "refused to load" in capsys.readouterr().err
    assert not marker.exists()
