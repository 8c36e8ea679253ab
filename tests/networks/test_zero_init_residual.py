"""Zero-initialised residual branches: the residual families start as their skip paths, and the option turns it off."""

from __future__ import annotations

import pytest
import torch

from autounet.networks import build_network
from autounet.networks.blocks import ResidualBlock, ResidualUnit
from autounet.networks.dilated import DilatedContextBlock
from autounet.networks.norm import InstanceNorm

CONFIGURATION = {
    "features_per_stage": [4, 8, 16],
    "kernel_sizes": [[3, 3, 3]] * 3,
    "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
    "n_conv_per_stage": 2,
    "n_conv_per_stage_decoder": 2,
}
RESIDUAL_MODULES = {"resenc": ResidualBlock, "resunet": ResidualUnit, "dilated": DilatedContextBlock}


BRANCHES = {
    ResidualBlock: lambda block: [block.conv1, block.conv2],
    ResidualUnit: lambda unit: [unit.convs],
    DilatedContextBlock: lambda block: [block.branches],
}
"""The residual branch (not the skip path) of each residual module."""


def _perturb_branches(family: str, zero_init_residual: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Output of a freshly built ``family`` network, its output after redrawing every branch conv weight, and
    how many weights were redrawn."""
    torch.manual_seed(0)
    configuration = {**CONFIGURATION, "network": family, "network_kwargs": {"zero_init_residual": zero_init_residual}}
    network = build_network(configuration, 1, 3, deep_supervision=False).eval()
    kind = RESIDUAL_MODULES[family]
    weights = [
        p for module in network.modules() if isinstance(module, kind) for part in BRANCHES[kind](module)
        for name, p in part.named_parameters() if name.endswith("weight") and p.ndim > 1
    ]
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        before = network(x)
        for weight in weights:
            weight.normal_()
        after = network(x)
    return before, after, len(weights)


@pytest.mark.parametrize("family", sorted(RESIDUAL_MODULES))
def test_freshly_built_residual_network_ignores_its_branch_weights(family: str) -> None:
    before, after, redrawn = _perturb_branches(family, zero_init_residual=True)
    assert redrawn
    assert torch.equal(before, after)


@pytest.mark.parametrize("family", sorted(RESIDUAL_MODULES))
def test_zero_init_residual_false_keeps_the_branches_live(family: str) -> None:
    before, after, _ = _perturb_branches(family, zero_init_residual=False)
    assert not torch.allclose(before, after)


def test_plain_unet_is_not_touched() -> None:
    torch.manual_seed(0)
    network = build_network({**CONFIGURATION, "network": "unet"}, 1, 3)
    norms = [m.weight for m in network.modules() if isinstance(m, InstanceNorm)]
    assert norms and all(bool((w == 1).all()) for w in norms)


def test_resenc_zeroes_its_residual_branches_by_default_as_nnunet() -> None:
    network = build_network({**CONFIGURATION, "network": "resenc"}, 1, 3)
    last_norms = [m.conv2[1].weight for m in network.modules() if isinstance(m, ResidualBlock)]
    assert last_norms and all(bool((w == 0).all()) for w in last_norms)
