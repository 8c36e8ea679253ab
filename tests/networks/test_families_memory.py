"""The planner's memory model for the network families: counting rules, planning with them, real memory."""

from __future__ import annotations

import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from autounet.networks import build_network, denseunet, dilated, list_networks, multires, r2unet
from autounet.planners import PlanOverrides, estimate_memory, family_memory, plan_experiment
from autounet.planners.memory import fits_memory, has_memory_estimator, memory_budget, reference_batch_size

COUNTED_FAMILIES = [name for name in list_networks() if name != "resenc"]  # resenc: nnU-Net's own estimate

TOPOLOGIES = {
    "2d": ({"features_per_stage": [4, 8, 8], "kernel_sizes": [[3, 3]] * 3, "strides": [[1, 1], [2, 2], [2, 2]],
            "n_conv_per_stage": [2, 2, 2], "n_conv_per_stage_decoder": [2, 2]}, (32, 32)),
    "3d": ({"features_per_stage": [4, 8, 16, 16], "kernel_sizes": [[3, 3, 3]] * 4,
            "strides": [[1, 1, 1]] + [[2, 2, 2]] * 3, "n_conv_per_stage": [2, 2, 2, 2],
            "n_conv_per_stage_decoder": [1, 1, 1]}, (16, 16, 24)),
    "3d_anisotropic": ({"features_per_stage": [6, 8, 12], "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
                        "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2]], "n_conv_per_stage": [1, 2, 3],
                        "n_conv_per_stage_decoder": [1, 2]}, (8, 16, 16)),
}
FAMILY_OPTIONS = [
    ("r2unet", {"recurrent_steps": 1}),
    ("r2unet", {"recurrent_steps": 3}),
    ("denseunet", {"layers_per_block": 2, "growth_rate": 3}),
    ("denseunet", {"growth_rate": [1, 2, 3, 4]}),
    ("dilated", {"rates": [1, 2, 4, 8]}),
]


def _topology(configuration: dict, patch: tuple[int, ...]) -> tuple:
    return (patch, configuration["features_per_stage"], configuration["strides"], configuration["n_conv_per_stage"],
            configuration["n_conv_per_stage_decoder"])


def _saved_elements(model: torch.nn.Module, images: torch.Tensor) -> int:
    """Elements of the distinct storages autograd keeps for backward (weights, input and 1-element stats left out)."""
    excluded = {p.data_ptr() for p in model.parameters()} | {images.data_ptr()}
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.data_ptr() not in excluded and tensor.numel() > 1:
            storage = tensor.untyped_storage()
            kept[storage.data_ptr()] = storage.nbytes() // tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(images)
    return sum(kept.values())


class _PeakMemory(TorchDispatchMode):
    """Peak bytes of the tensor storages allocated while active (like ``torch.cuda.max_memory_allocated``)."""

    def __init__(self) -> None:
        super().__init__()
        self.current = self.peak = 0
        self._alive: dict[int, weakref.ref] = {}

    def _release(self, key: int, nbytes: int) -> None:
        self.current -= nbytes
        self._alive.pop(key, None)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(output)[0]:
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                key, nbytes = id(storage), storage.nbytes()
                if key not in self._alive and nbytes:
                    self._alive[key] = weakref.ref(storage, lambda _, key=key, nbytes=nbytes: self._release(key, nbytes))
                    self.current += nbytes
                    self.peak = max(self.peak, self.current)
        return output


def _peak_training_step_bytes(model: torch.nn.Module, images: torch.Tensor) -> int:
    with _PeakMemory() as tracker:
        loss = sum(output.float().mean() for output in model(images))
        loss.backward()
    return tracker.peak


def test_every_family_has_a_memory_estimate_and_every_new_one_a_counting_rule() -> None:
    assert all(has_memory_estimator(name) for name in list_networks())
    assert set(COUNTED_FAMILIES) <= set(family_memory.families_with_counts())


def test_family_defaults_in_the_planner_match_the_networks() -> None:
    # The planner does not import torch, so the networks' defaults are repeated there.
    assert family_memory.R2UNET_RECURRENT_STEPS == r2unet.RECURRENT_STEPS
    assert family_memory.DENSEUNET_LAYERS_PER_BLOCK == denseunet.LAYERS_PER_BLOCK
    assert family_memory.DENSEUNET_GROWTH_DIVISOR == denseunet.GROWTH_DIVISOR
    assert family_memory.DILATED_RATES == dilated.DILATION_RATES
    assert family_memory.DILATED_BRANCH_WIDTH_DIVISOR == dilated.BRANCH_WIDTH_DIVISOR
    assert family_memory.MULTIRES_ALPHA == multires.MULTIRES_ALPHA
    assert family_memory.MULTIRES_SPLIT == multires._SPLIT


@pytest.mark.parametrize("plan", sorted(TOPOLOGIES))
@pytest.mark.parametrize("network", COUNTED_FAMILIES)
def test_counting_rule_matches_what_autograd_keeps(network: str, plan: str) -> None:
    configuration, patch = TOPOLOGIES[plan]
    model = build_network({**configuration, "network": network}, in_channels=1, num_classes=3)
    measured = _saved_elements(model, torch.randn(1, 1, *patch))
    counted = family_memory.saved_activation_size(network, *_topology(configuration, patch))
    # The rules leave out per-channel norm statistics: a fraction of a percent.
    assert counted == pytest.approx(measured, rel=0.01)


@pytest.mark.parametrize(("network", "options"), FAMILY_OPTIONS)
def test_counting_rule_follows_family_options(network: str, options: dict) -> None:
    configuration, patch = TOPOLOGIES["3d"]
    model = build_network({**configuration, "network": network, "network_kwargs": options}, 1, 3)
    measured = _saved_elements(model, torch.randn(1, 1, *patch))
    counted = family_memory.saved_activation_size(network, *_topology(configuration, patch), network_kwargs=options)
    assert counted == pytest.approx(measured, rel=0.01)


def test_estimate_is_the_unet_proxy_scaled_by_the_saved_ratio() -> None:
    topology = ((40, 56, 40), (32, 64, 128, 256), [(1, 1, 1)] + [(2, 2, 2)] * 3, (2, 2, 2, 2), (2, 2, 2))
    unet = estimate_memory("unet", *topology, num_classes=3)
    assert unet == 19174400.0
    for name in COUNTED_FAMILIES:
        expected = unet * family_memory.relative_memory(name, *topology)
        assert estimate_memory(name, *topology, num_classes=3) == pytest.approx(expected)
    assert family_memory.relative_memory("attention", *topology) == pytest.approx(1.0, abs=0.05)
    assert family_memory.relative_memory("unetpp", *topology) > 2


def test_unknown_family_has_no_counting_rule() -> None:
    with pytest.raises(KeyError, match="no memory counting rule for network family 'nope'"):
        family_memory.saved_activation_size("nope", (8, 8), (4, 8), [(1, 1), (2, 2)], (2, 2), (2,))


@pytest.fixture(scope="module")
def hippocampus_fingerprint(hippocampus_reference):
    from autounet.fingerprint import load_fingerprint

    return load_fingerprint(hippocampus_reference)


def _plan(fingerprint, network: str, memory_budget_gb: float):
    plans = plan_experiment(fingerprint, memory_budget_gb=memory_budget_gb, overrides=PlanOverrides(network=network))
    return plans.configuration("3d_fullres"), plans.configuration("2d")


@pytest.mark.parametrize("memory_budget_gb", [8.0, 1.0])
@pytest.mark.parametrize("network", list_networks())
def test_planned_patch_and_batch_fit_the_budget(hippocampus_fingerprint, network: str, memory_budget_gb: float) -> None:
    for configuration in _plan(hippocampus_fingerprint, network, memory_budget_gb):
        assert configuration.network == network
        ndim = len(configuration.patch_size)
        estimate = estimate_memory(
            network, configuration.patch_size, configuration.features_per_stage, configuration.strides,
            configuration.n_conv_per_stage, configuration.n_conv_per_stage_decoder, 3, configuration.network_kwargs,
        )
        assert fits_memory(estimate, 2, ndim, memory_budget_gb)  # the patch rule: two samples fit
        if configuration.batch_size > 2:  # the batch rule rounds, like nnU-Net: at most half a sample over
            budget = memory_budget(ndim, memory_budget_gb)
            assert estimate * (configuration.batch_size - 0.5) / reference_batch_size(ndim) <= budget


def test_heavier_families_get_a_smaller_patch_or_batch(hippocampus_fingerprint) -> None:
    # At 8 GB Hippocampus is limited by its image size and the 5% batch cap, so plan for a 1 GB GPU.
    unet, _ = _plan(hippocampus_fingerprint, "unet", 1.0)
    unet_topology = (unet.patch_size, unet.features_per_stage, unet.strides, unet.n_conv_per_stage,
                     unet.n_conv_per_stage_decoder)
    for name in COUNTED_FAMILIES:
        plan, _ = _plan(hippocampus_fingerprint, name, 1.0)
        voxels, unet_voxels = torch.tensor(plan.patch_size).prod(), torch.tensor(unet.patch_size).prod()
        assert voxels <= unet_voxels and plan.batch_size <= unet.batch_size, name
        if family_memory.relative_memory(name, *unet_topology) > 1.15:
            assert voxels < unet_voxels or plan.batch_size < unet.batch_size, name


def test_estimates_rank_families_like_their_measured_peak_memory() -> None:
    configuration = {"features_per_stage": [4, 8, 16], "kernel_sizes": [[3, 3, 3]] * 3,
                     "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]], "n_conv_per_stage": [2, 2, 2],
                     "n_conv_per_stage_decoder": [2, 2]}
    patch = (16, 16, 16)
    peaks, estimates = {}, {}
    for name in COUNTED_FAMILIES:
        torch.manual_seed(0)
        model = build_network({**configuration, "network": name}, 1, 3)
        peaks[name] = _peak_training_step_bytes(model, torch.randn(1, 1, *patch))
        estimates[name] = estimate_memory(name, *_topology(configuration, patch), num_classes=3)
    bytes_per_unit = {name: peaks[name] / estimates[name] for name in COUNTED_FAMILIES}
    # Peak bytes per estimate unit is about the same for every family: the estimates are in one currency.
    assert max(bytes_per_unit.values()) / min(bytes_per_unit.values()) < 1.35, bytes_per_unit
    for a in COUNTED_FAMILIES:
        for b in COUNTED_FAMILIES:
            if estimates[a] > 1.2 * estimates[b]:
                assert peaks[a] > peaks[b], (a, b, peaks, estimates)
