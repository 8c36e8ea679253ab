"""Contract tests run over every registered network family: shapes, deep supervision, a training step."""

from __future__ import annotations

import pytest
import torch

from autounet.errors import PlansError
from autounet.networks import build_network, count_parameters, create_network, list_networks
from autounet.networks.cpu_speed import prepare_for_cpu_speed, training_autocast
from autounet.networks.topology import validate_topology

NUM_CLASSES = 3

PLANS = {
    "2d": {
        "features_per_stage": [4, 8, 8],
        "kernel_sizes": [[3, 3], [3, 3], [3, 3]],
        "strides": [[1, 1], [2, 2], [2, 2]],
        "n_conv_per_stage": [2, 2, 2],
        "n_conv_per_stage_decoder": [2, 2],
        "patch": (32, 32),
    },
    "3d": {
        "features_per_stage": [4, 8, 8],
        "kernel_sizes": [[3, 3, 3]] * 3,
        "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
        "n_conv_per_stage": 2,
        "n_conv_per_stage_decoder": 1,
        "patch": (16, 16, 16),
    },
    "3d_anisotropic": {
        "features_per_stage": [4, 8, 8],
        "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
        "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
        "n_conv_per_stage": [1, 2, 2],
        "n_conv_per_stage_decoder": [1, 1],
        "patch": (8, 16, 16),
    },
}


def _configuration(network: str, plan: str) -> dict:
    configuration = {key: value for key, value in PLANS[plan].items() if key != "patch"}
    configuration["network"] = network
    return configuration


def _expected_shapes(plan: str, batch: int) -> list[tuple[int, ...]]:
    """Full resolution first, then each coarser decoder level: one per decoder stage."""
    spatial = list(PLANS[plan]["patch"])
    shapes = []
    for stride in PLANS[plan]["strides"][:-1]:
        spatial = [size // s for size, s in zip(spatial, stride)]
        shapes.append((batch, NUM_CLASSES, *spatial))
    return shapes


@pytest.mark.parametrize("plan", sorted(PLANS))
@pytest.mark.parametrize("network", list_networks())
def test_forward_shapes_and_deep_supervision(network: str, plan: str) -> None:
    torch.manual_seed(0)
    model = build_network(_configuration(network, plan), in_channels=2, num_classes=NUM_CLASSES)
    images = torch.randn(2, 2, *PLANS[plan]["patch"])
    outputs = model(images)
    assert isinstance(outputs, list)
    assert [tuple(o.shape) for o in outputs] == _expected_shapes(plan, batch=2)
    assert model.deep_supervision is True

    model.deep_supervision = False
    model.eval()
    with torch.no_grad():
        single = model(images)
    assert isinstance(single, torch.Tensor)
    assert tuple(single.shape) == (2, NUM_CLASSES, *PLANS[plan]["patch"])


@pytest.mark.parametrize("plan", sorted(PLANS))
@pytest.mark.parametrize("network", list_networks())
def test_built_without_deep_supervision_returns_one_tensor(network: str, plan: str) -> None:
    model = build_network(_configuration(network, plan), 1, NUM_CLASSES, deep_supervision=False)
    output = model(torch.randn(1, 1, *PLANS[plan]["patch"]))
    assert isinstance(output, torch.Tensor)
    assert tuple(output.shape) == (1, NUM_CLASSES, *PLANS[plan]["patch"])


@pytest.mark.parametrize("plan", ["2d", "3d_anisotropic"])
@pytest.mark.parametrize("network", list_networks())
def test_training_steps_change_weights(network: str, plan: str) -> None:
    """Two steps: a zero-initialised residual branch gets its first gradient once its last norm is non-zero."""
    torch.manual_seed(0)
    model = build_network(_configuration(network, plan), 1, NUM_CLASSES)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    for _ in range(2):
        optimizer.zero_grad()
        outputs = model(torch.randn(2, 1, *PLANS[plan]["patch"]))
        loss = sum(o.float().square().mean() for o in outputs)
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        optimizer.step()
    changed = [not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters())]
    assert sum(changed) == len(changed), f"{len(changed) - sum(changed)} parameter tensors did not change"


@pytest.mark.parametrize("network", list_networks())
def test_bfloat16_channels_last_matches_float32(network: str) -> None:
    torch.manual_seed(0)
    model = build_network(_configuration(network, "3d"), 1, NUM_CLASSES, deep_supervision=False)
    images = torch.randn(2, 1, *PLANS["3d"]["patch"])
    with torch.no_grad():
        reference = model(images)
        fast = prepare_for_cpu_speed(model)
        with training_autocast(torch.bfloat16):
            output = fast(images)
    assert output.dtype == torch.bfloat16
    assert torch.isfinite(output.float()).all()
    # bfloat16 keeps ~3 significant digits; the logits must still agree closely.
    assert (output.float() - reference).abs().max() < 0.1 * reference.abs().max()


def test_unet_parameter_count_matches_nnunet_plain_conv_unet() -> None:
    """nnU-Net's PlainConvUNet for the Hippocampus plan has 5,603,177 parameters with 3 output classes."""
    model = create_network(
        "unet",
        in_channels=1,
        num_classes=3,
        features_per_stage=[32, 64, 128, 256],
        kernel_sizes=[[3, 3, 3]] * 4,
        strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]],
    )
    assert count_parameters(model) == 5_603_177


def test_resenc_parameter_count_matches_nnunet_residual_encoder_unet() -> None:
    """nnU-Net's ResidualEncoderUNet, blocks (1, 3, 4, 6), same topology: 26,476,873 parameters."""
    model = create_network(
        "resenc",
        in_channels=1,
        num_classes=3,
        features_per_stage=[32, 64, 128, 256],
        kernel_sizes=[[3, 3, 3]] * 4,
        strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]],
    )
    assert count_parameters(model) == 26_476_873


def test_build_network_uses_he_init_and_defaults() -> None:
    configuration = {"features_per_stage": [4, 8], "kernel_sizes": [[3, 3]] * 2, "strides": [[1, 1], [2, 2]]}
    model = build_network(configuration, 1, 2)
    assert type(model).__name__ == "UNet"
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert all(float(c.bias.detach().abs().sum()) == 0 for c in convs)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"kernel_sizes": [[3, 3]]}, "kernel_sizes has 1 entries but features_per_stage has 2"),
        ({"strides": [[1, 1], [2, 2, 2]]}, "same number of axes"),
        ({"strides": [[2, 2], [2, 2]]}, "stem does not downsample"),
        ({"kernel_sizes": [[3, 3], [2, 2]]}, "odd kernel sizes"),
        ({"features_per_stage": [4]}, "at least 2 stages"),
        ({"n_conv_per_stage": [2, 2, 2]}, "n_conv_per_stage has 3 entries but 2 are needed"),
        ({"n_conv_per_stage_decoder": [2, 2]}, "n_conv_per_stage_decoder has 2 entries but 1 are needed"),
        ({"kernel_sizes": [[3], [3]], "strides": [[1], [2]]}, "use 2 axes for 2D or 3 for 3D"),
    ],
)
def test_invalid_topology_raises_plans_error(overrides: dict, match: str) -> None:
    arguments = {"features_per_stage": [4, 8], "kernel_sizes": [[3, 3]] * 2, "strides": [[1, 1], [2, 2]]}
    arguments.update(overrides)
    with pytest.raises(PlansError, match=match):
        validate_topology(**arguments)


def test_build_network_errors_say_what_to_fix() -> None:
    with pytest.raises(PlansError, match="no kernel_sizes, strides"):
        build_network({"features_per_stage": [4, 8]}, 1, 2)
    configuration = {
        "network": "unte",
        "features_per_stage": [4, 8],
        "kernel_sizes": [[3, 3]] * 2,
        "strides": [[1, 1], [2, 2]],
    }
    with pytest.raises(PlansError, match='Did you mean "unet"'):
        build_network(configuration, 1, 2)


def test_input_not_divisible_by_total_stride_raises() -> None:
    configuration = {"features_per_stage": [4, 8], "kernel_sizes": [[3, 3]] * 2, "strides": [[1, 1], [2, 2]]}
    model = build_network(configuration, 1, 2)
    with pytest.raises(ValueError, match="not divisible by the network's total stride"):
        model(torch.zeros(1, 1, 9, 8))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 1"):
        model(torch.zeros(1, 3, 8, 8))


def test_resenc_blocks_per_stage_validated() -> None:
    configuration = {
        "network": "resenc",
        "network_kwargs": {"n_blocks_per_stage": [1, 2, 3]},
        "features_per_stage": [4, 8],
        "kernel_sizes": [[3, 3]] * 2,
        "strides": [[1, 1], [2, 2]],
    }
    with pytest.raises(PlansError, match="n_blocks_per_stage"):
        build_network(configuration, 1, 2)


@pytest.mark.parametrize("plan", ["2d", "3d_anisotropic"])
@pytest.mark.parametrize("network", list_networks())
def test_class_prior_makes_the_untrained_network_predict_the_class_frequencies(network: str, plan: str) -> None:
    """Every deep-supervision head starts at log(prior): the mean prediction moves to the prior from about a third each.

    Untrained tiny networks have logits of random scale, so the prediction is the prior only on average and only
    approximately; it must be much closer to it (Kullback-Leibler divergence) than with a zero bias.
    """
    prior = [0.9, 0.06, 0.04]
    images = torch.randn(2, 1, *PLANS[plan]["patch"])
    shares = {}
    for name, class_prior in (("prior", prior), ("zero", None)):
        torch.manual_seed(0)
        model = build_network(_configuration(network, plan), 1, NUM_CLASSES, class_prior=class_prior)
        with torch.no_grad():
            outputs = model(images)
        shares[name] = [torch.softmax(o, 1).mean(dim=(0, *range(2, o.ndim))) for o in outputs]
    target = torch.tensor(prior)
    for with_prior, with_zero in zip(shares["prior"], shares["zero"]):
        divergence_prior = float((target * (target / with_prior).log()).sum())
        divergence_zero = float((target * (target / with_zero).log()).sum())
        assert with_prior[0] > with_zero[0] + 0.15, (with_prior, with_zero)
        assert divergence_prior < 0.5 * divergence_zero, (with_prior, with_zero)


def test_class_prior_sets_the_bias_of_every_head_and_must_fit_the_classes() -> None:
    configuration = _configuration("unet", "3d")
    model = build_network(configuration, 1, NUM_CLASSES, class_prior=[0.9, 0.06, 0.04])
    assert len(model.decoder.heads) == 2
    assert all(torch.allclose(head.bias, torch.tensor([0.9, 0.06, 0.04]).log()) for head in model.decoder.heads)
    with pytest.raises(PlansError, match="class_prior has 2 values but the network predicts 3 classes"):
        build_network(configuration, 1, NUM_CLASSES, class_prior=[0.9, 0.1])
