"""The memory model: U-Net proxy (checked against every reference value), budget scaling, family registry."""

from __future__ import annotations

import json
import logging

import pytest

from autounet.errors import PlansError
from autounet.planners.memory import (
    MEMORY_ESTIMATORS,
    estimate_memory,
    fits_memory,
    has_memory_estimator,
    memory_budget,
    reference_batch_size,
    register_memory_estimator,
    register_memory_multiplier,
    resenc_feature_map_size,
    unet_feature_map_size,
)

from shared_data import REFERENCE_PLANS as REFERENCE_DIR
from shared_data import reference_plan_files, require

# Missing reference plans give one case that fails (pytest --skip-shared skips it), not zero cases.
CASES = [
    (path.name, name)
    for path in reference_plan_files()
    for name in ("2d", "3d_fullres", "3d_lowres")
    if not path.is_file() or name in json.loads(path.read_text())["expected"]
]
HIPPO = dict(features_per_stage=(32, 64, 128, 256), strides=[(1, 1, 1)] + [(2, 2, 2)] * 3,
             n_conv_per_stage=(2, 2, 2, 2), n_conv_per_stage_decoder=(2, 2, 2), num_classes=3)


@pytest.mark.parametrize("file_name, configuration", CASES)
def test_unet_proxy_equals_nnunet_vram_proxy(file_name, configuration):
    data = json.loads(require(REFERENCE_DIR / file_name, "nnU-Net reference plans").read_text())
    expected = data["expected"][configuration]
    proxy = unet_feature_map_size(
        expected["patch_size"], expected["features_per_stage"], expected["strides"], expected["n_conv_per_stage"],
        expected["n_conv_per_stage_decoder"], num_classes=len(data["dataset_json"]["labels"]),
    )
    assert proxy == expected["vram_proxy_conv_feature_map_size"]


def test_deep_supervision_adds_the_low_resolution_outputs():
    plain = unet_feature_map_size((40, 56, 40), **HIPPO)
    deep = unet_feature_map_size((40, 56, 40), **HIPPO, deep_supervision=True)
    assert deep - plain == 3 * (10 * 14 * 10 + 20 * 28 * 20)  # 3-class outputs at 1/4 and 1/2 resolution
    assert plain == 19174400


def test_budget_scales_linearly_with_gpu_memory():
    assert memory_budget(3) == 560e6 and memory_budget(2) == 85e6
    assert memory_budget(3, 4.0) == 280e6 and memory_budget(2, 24.0) == 255e6
    assert reference_batch_size(3) == 2 and reference_batch_size(2) == 12


@pytest.mark.parametrize("gb", [0, -1.0])
def test_non_positive_budget_is_refused(gb):
    with pytest.raises(PlansError, match="GPU memory must be positive"):
        memory_budget(3, gb)


def test_fits_memory_is_nnunets_batch_two_condition():
    assert fits_memory(560e6, 2, 3) and not fits_memory(560e6 + 1, 2, 3)
    assert fits_memory(510e6, 2, 2) and not fits_memory(510e6 + 1, 2, 2)  # 2D: 85e6 at batch 12 is 510e6 per sample at batch 2
    assert fits_memory(1120e6, 1, 3) and not fits_memory(300e6, 4, 3)


def test_registered_estimator_is_used():
    @register_memory_estimator("test_double_unet")
    def _double(patch_size, features_per_stage, strides, n_conv_per_stage, n_conv_per_stage_decoder, num_classes,
                network_kwargs):
        return 2 * unet_feature_map_size(patch_size, features_per_stage, strides, n_conv_per_stage,
                                         n_conv_per_stage_decoder, num_classes) + network_kwargs.get("extra", 0)

    assert estimate_memory("test_double_unet", (40, 56, 40), **HIPPO, network_kwargs={"extra": 1}) == 2 * 19174400 + 1


def test_multiplier_registration():
    register_memory_multiplier("test_wide_unet", 1.25)
    assert estimate_memory("test_wide_unet", (40, 56, 40), **HIPPO) == pytest.approx(1.25 * 19174400)
    with pytest.raises(PlansError, match="must be positive"):
        register_memory_multiplier("test_bad_multiplier", 0)


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_memory_estimator("unet")(lambda *args: 0.0)


def test_unknown_family_falls_back_to_unet_with_a_warning(caplog):
    assert not has_memory_estimator("test_unknown_family")
    with caplog.at_level(logging.WARNING, logger="autounet.planners.memory"):
        value = estimate_memory("test_unknown_family", (40, 56, 40), **HIPPO)
        estimate_memory("test_unknown_family", (40, 56, 40), **HIPPO)
    assert value == 19174400.0
    warnings = [r for r in caplog.records if "test_unknown_family" in r.getMessage()]
    assert len(warnings) == 1  # logged once per family, not once per candidate patch


def test_resenc_estimate_is_in_unet_units():
    assert has_memory_estimator("resenc") and "unet" in MEMORY_ESTIMATORS
    raw = resenc_feature_map_size((40, 56, 40), (32, 64, 128, 256), HIPPO["strides"], (1, 3, 4, 6), (2, 2, 2), 3)
    assert estimate_memory("resenc", (40, 56, 40), **HIPPO) == pytest.approx(raw * 560 / 680)
    explicit = estimate_memory("resenc", (40, 56, 40), **HIPPO, network_kwargs={"n_blocks_per_stage": 1})
    assert explicit < estimate_memory("resenc", (40, 56, 40), **HIPPO)
