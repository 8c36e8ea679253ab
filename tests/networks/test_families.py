"""What is specific to each U-Net variant family; shapes and training steps are in test_networks_contract.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autounet.errors import PlansError
from autounet.networks import build_network, create_network, list_networks
from autounet.networks.attention_unet import AttentionGate
from autounet.networks.block_decoder import BlockDecoder
from autounet.networks.blocks import AveragePool, ResidualUnit
from autounet.networks.denseunet import DenseBlock
from autounet.networks.dilated import DilatedConvNormAct, usable_dilation
from autounet.networks.multires import ResPath, multires_split
from autounet.networks.r2unet import RecurrentConv
from autounet.networks.unetpp import NestedDecoder

TINY_3D = {
    "features_per_stage": [4, 8, 8, 8],
    "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
    "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]],
    "n_conv_per_stage": [1, 2, 2, 2],
    "n_conv_per_stage_decoder": [1, 1, 1],
}
PATCH_3D = (8, 16, 16)


def _build(network: str, deep_supervision: bool = True, **network_kwargs) -> nn.Module:
    torch.manual_seed(0)
    configuration = {**TINY_3D, "network": network, "network_kwargs": network_kwargs}
    return build_network(configuration, in_channels=1, num_classes=2, deep_supervision=deep_supervision)


@pytest.mark.parametrize("network", list_networks())
def test_switching_deep_supervision_off_returns_the_full_resolution_output(network: str) -> None:
    model = _build(network).eval()
    images = torch.randn(1, 1, *PATCH_3D)
    with torch.no_grad():
        outputs = model(images)
        model.deep_supervision = False
        single = model(images)
    torch.testing.assert_close(single, outputs[0])


def test_block_decoder_defaults_are_the_plain_unet_decoder() -> None:
    unet = _build("unet").eval()
    decoder = BlockDecoder(unet.encoder.output_channels, unet.topology, num_classes=2)
    decoder.load_state_dict(unet.decoder.state_dict())  # same modules, same names
    images = torch.randn(1, 1, *PATCH_3D)
    with torch.no_grad():
        skips = unet.encoder(images)
        for ours, theirs in zip(decoder.eval()(skips), unet.decoder(skips)):
            torch.testing.assert_close(ours, theirs)


def test_block_decoder_rejects_a_wrong_number_of_skip_gates() -> None:
    unet = _build("unet")
    with pytest.raises(ValueError, match="got 1 skip_gates for 3 decoder stages"):
        BlockDecoder(unet.encoder.output_channels, unet.topology, 2, skip_gates=[nn.Identity()])


# --- resunet -------------------------------------------------------------------------------------------------


def test_resunet_encoder_and_decoder_stages_are_residual_units() -> None:
    model = _build("resunet")
    assert all(isinstance(stage, ResidualUnit) for stage in model.encoder.stages)
    assert all(isinstance(stage, ResidualUnit) for stage in model.decoder.stages)
    assert [len(stage.convs) for stage in model.encoder.stages] == TINY_3D["n_conv_per_stage"]
    # A strided unit average-pools its skip by the planned stride before the 1x1 projection.
    pool, projection = model.encoder.stages[1].skip
    assert isinstance(pool, AveragePool) and pool.stride == (1, 2, 2)
    assert projection[0].kernel_size == (1, 1, 1)


def test_residual_unit_with_one_conv_sums_before_its_activation() -> None:
    unit = ResidualUnit(1, 3, 3, (3, 3))
    assert len(unit.convs) == 1 and len(unit.convs[0]) == 2  # conv + norm, no activation inside
    assert len(unit.skip) == 0  # identity: same channels, no stride


# --- attention -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stride", "skip_shape", "gate_shape"),
    [((2, 2), (2, 4, 16, 16), (2, 8, 8, 8)), ((1, 2, 2), (2, 4, 6, 16, 16), (2, 8, 6, 8, 8))],
)
def test_attention_gate_coefficients_are_in_0_1_at_skip_resolution(stride, skip_shape, gate_shape) -> None:
    torch.manual_seed(0)
    gate = AttentionGate(skip_shape[1], gate_shape[1], stride)
    skip, signal = torch.randn(skip_shape) * 10, torch.randn(gate_shape) * 10
    with torch.no_grad():
        alpha = gate.attention(skip, signal)
        gated = gate(skip, signal)
    assert alpha.shape == (skip_shape[0], 1, *skip_shape[2:])
    assert float(alpha.min()) >= 0 and float(alpha.max()) <= 1
    torch.testing.assert_close(gated, skip * alpha)


def test_attention_unet_gates_every_skip_with_the_coarser_decoder_features() -> None:
    model = _build("attention")
    gates = model.decoder.skip_gates
    assert len(gates) == 3
    # Deepest decoder stage first: its gate sees the bottleneck (8 channels) and the stride of that level.
    assert [g.stride for g in gates] == [(2, 2, 2), (2, 2, 2), (1, 2, 2)]
    assert [g.theta.in_channels for g in gates] == [8, 8, 4] and [g.phi.in_channels for g in gates] == [8, 8, 8]
    recorded = []
    gates[-1].register_forward_hook(lambda module, args, output: recorded.append(module.attention(*args)))
    model(torch.randn(1, 1, *PATCH_3D))
    assert recorded[0].shape == (1, 1, *PATCH_3D)


# --- unetpp --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_stages", [2, 3, 4, 5])
def test_unetpp_has_n_times_n_minus_1_over_2_nested_nodes(n_stages: int) -> None:
    model = create_network(
        "unetpp", in_channels=1, num_classes=2, features_per_stage=[4] * n_stages,
        kernel_sizes=[[3, 3]] * n_stages, strides=[[1, 1]] + [[2, 2]] * (n_stages - 1),
    )
    assert isinstance(model.decoder, NestedDecoder)
    assert model.decoder.num_nested_nodes == n_stages * (n_stages - 1) // 2
    outputs = model(torch.zeros(1, 1, 2 ** n_stages, 2 ** n_stages))
    assert len(outputs) == n_stages - 1


def test_unetpp_node_inputs_grow_along_the_skip_pathway() -> None:
    model = _build("unetpp")
    # X[0][j] concatenates j earlier nodes of depth 0 (4 channels each) and one upsampled node.
    assert [node[0][0].in_channels for node in model.decoder.nodes[0]] == [8, 12, 16]
    assert [len(depth) for depth in model.decoder.nodes] == [3, 2, 1]


def test_unetpp_deep_supervision_heads_read_the_last_node_of_each_depth() -> None:
    model = _build("unetpp").eval()
    images = torch.randn(1, 1, *PATCH_3D)
    seen = {}
    for i, depth in enumerate(model.decoder.nodes):
        depth[-1].register_forward_hook(lambda module, args, output, i=i: seen.__setitem__(i, output))
    with torch.no_grad():
        outputs = model(images)
        for k, output in enumerate(outputs):
            torch.testing.assert_close(output, model.decoder.heads[k](seen[k]))


# --- r2unet --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_recurrent_conv_applies_its_shared_conv_t_plus_1_times(steps: int) -> None:
    layer = RecurrentConv(3, (3, 3), steps)
    calls = []
    layer.block.register_forward_hook(lambda *args: calls.append(1))
    layer(torch.randn(1, 3, 8, 8))
    assert len(calls) == steps + 1
    assert sum(isinstance(m, nn.Conv2d) for m in layer.modules()) == 1  # one set of weights


def test_r2unet_uses_1x1_entry_without_stride_and_the_planned_kernel_with_it() -> None:
    model = _build("r2unet", recurrent_steps=1)
    entries = [stage.entry for stage in model.encoder.stages]
    assert entries[0].kernel_size == (1, 1, 1) and entries[1].kernel_size == (3, 3, 3)
    assert entries[1].stride == (1, 2, 2)
    assert [len(stage.recurrent) for stage in model.encoder.stages] == TINY_3D["n_conv_per_stage"]
    assert model.encoder.stages[0].recurrent[0].steps == 1
    with pytest.raises(PlansError, match="recurrent_steps = 0"):
        _build("r2unet", recurrent_steps=0)


def test_an_option_the_family_does_not_take_is_named_with_the_ones_it_does() -> None:
    with pytest.raises(PlansError, match=r"network \"unet\" has no option 'zero_init_residual'; its options: none"):
        _build("unet", zero_init_residual=True)
    with pytest.raises(PlansError, match=r"'growth'.*its options: layers_per_block, growth_rate\. Fix \"network_kwargs\""):
        _build("denseunet", growth=4)
    with pytest.raises(PlansError, match="'in_channels'"):  # a topology argument is not an option
        _build("resunet", in_channels=3)


# --- denseunet -----------------------------------------------------------------------------------------------


def test_dense_block_layers_see_everything_before_them() -> None:
    block = DenseBlock(4, growth_rate=3, n_layers=3, kernel_size=(3, 3))
    assert [layer[0].in_channels for layer in block.layers] == [4, 7, 10]
    x = torch.randn(1, 4, 8, 8)
    out = block(x)
    assert out.shape[1] == 13
    torch.testing.assert_close(out[:, :4], x)  # the input is passed on unchanged


def test_denseunet_stages_return_the_planned_widths_and_take_options() -> None:
    model = _build("denseunet", layers_per_block=2, growth_rate=[1, 2, 3, 4])
    skips = model.encoder(torch.randn(1, 1, *PATCH_3D))
    assert [s.shape[1] for s in skips] == TINY_3D["features_per_stage"]
    blocks = [m for m in model.encoder.modules() if isinstance(m, DenseBlock)]
    assert [len(b.layers) for b in blocks] == [2, 2, 2, 2]
    assert [b.out_channels for b in blocks] == [4 + 2, 8 + 4, 8 + 6, 8 + 8]
    decoder_blocks = [m for m in model.decoder.modules() if isinstance(m, DenseBlock)]
    assert [b.out_channels for b in decoder_blocks] == [16 + 2 * 3, 16 + 2 * 2, 8 + 2 * 1]  # deepest first
    with pytest.raises(PlansError, match="growth_rate"):
        _build("denseunet", growth_rate=[1, 2])
    with pytest.raises(PlansError, match="layers_per_block"):
        _build("denseunet", layers_per_block=0)


# --- multires ------------------------------------------------------------------------------------------------


def test_multires_split_follows_the_paper() -> None:
    # W = 1.67 U; the authors' code gives 8 + 17 + 26 = 51 channels for U = 32.
    assert multires_split(32) == (8, 17, 26)
    assert multires_split(64) == (17, 35, 53)
    assert min(multires_split(1)) >= 1


def test_multires_res_paths_are_longest_on_the_shallowest_skip() -> None:
    model = _build("multires")
    paths = model.decoder.skip_gates
    assert all(isinstance(p, ResPath) for p in paths)
    assert [len(p) for p in paths] == [1, 2, 3]  # deepest decoder stage first
    widths = model.encoder.output_channels
    assert widths == tuple(sum(multires_split(f)) for f in TINY_3D["features_per_stage"])
    # Res paths reduce each skip to the planned width.
    assert [p[0].conv[0].out_channels for p in paths] == [8, 8, 4]


# --- dilated -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "kernel", "size", "expected"),
    [
        (1, (3, 3, 3), (5, 7, 5), (1, 1, 1)),
        (2, (3, 3, 3), (5, 7, 5), (2, 2, 2)),
        (3, (3, 3, 3), (5, 7, 5), (2, 3, 2)),
        (6, (3, 3, 3), (4, 4, 4), (1, 1, 1)),
        (3, (1, 3, 3), (9, 9, 9), (1, 3, 3)),
        (2, (5, 5), (9, 3), (2, 1)),
        (4, (3, 3), (1, 1), (1, 1)),
    ],
)
def test_dilation_is_clipped_to_the_bottleneck(rate, kernel, size, expected) -> None:
    assert usable_dilation(rate, kernel, size) == expected


def test_dilated_context_block_sits_at_the_bottleneck_with_clipped_rates() -> None:
    model = _build("dilated", rates=[1, 2, 4])
    branches = [m for m in model.modules() if isinstance(m, DilatedConvNormAct)]
    assert [b.rate for b in branches] == [1, 2, 4]
    assert all(b in list(model.encoder.stages[-1].modules()) for b in branches)
    used = []
    for branch in branches:
        branch.register_forward_hook(
            lambda module, args, output: used.append(usable_dilation(module.rate, module.kernel_size, args[0].shape[2:]))
        )
    model(torch.randn(1, 1, 16, 32, 32))  # bottleneck 4 x 4 x 4
    assert used == [(1, 1, 1), (1, 1, 1), (1, 1, 1)]
    used.clear()
    model(torch.randn(1, 1, 40, 48, 48))  # bottleneck 10 x 6 x 6
    assert used == [(1, 1, 1), (2, 2, 2), (4, 2, 2)]
    with pytest.raises(PlansError, match="rates"):
        _build("dilated", rates=[])


# --- vnet ----------------------------------------------------------------------------------------------------


def test_vnet_uses_5_where_the_plan_has_3_and_prelu() -> None:
    model = _build("vnet")
    kernels = {
        m.kernel_size for name, m in model.named_modules()
        if isinstance(m, nn.Conv3d) and ".convs." in name
    }
    assert kernels == {(1, 5, 5), (5, 5, 5)}
    assert model.encoder.stages[0].convs[0][0].kernel_size == (1, 5, 5)  # anisotropic stem stays in-plane
    # Down- and up-sampling convolutions have kernel = stride.
    assert model.encoder.stages[1].down[0].kernel_size == (1, 2, 2)
    assert model.decoder.upsamplers[0][0].kernel_size == (2, 2, 2)
    assert any(isinstance(m, nn.PReLU) for m in model.modules())
    assert not any(isinstance(m, nn.LeakyReLU) for m in model.modules())


def test_vnet_2d_uses_5x5() -> None:
    model = create_network(
        "vnet", in_channels=1, num_classes=2, features_per_stage=[4, 8], kernel_sizes=[[3, 3], [3, 3]],
        strides=[[1, 1], [2, 2]],
    )
    assert {m.kernel_size for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 2} == {(5, 5)}
