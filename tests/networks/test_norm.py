"""The layout-keeping instance norm gives F.instance_norm's values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autounet.networks.cpu_speed import to_channels_last
from autounet.networks.norm import InstanceNorm, instance_norm

SHAPES = [(2, 3, 4, 5, 6), (3, 4, 7, 9), (1, 1, 4, 4, 4)]


def _reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Float64 F.instance_norm output and gradients."""
    x64, w64, b64 = (t.detach().double().requires_grad_() for t in (x, weight, bias))
    y = F.instance_norm(x64, weight=w64, bias=b64, eps=1e-5)
    y.backward(grad.double())
    return y.detach(), x64.grad, w64.grad, b64.grad


def _ours(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x, weight, bias = (t.detach().clone().requires_grad_() for t in (x, weight, bias))
    y = instance_norm(x, weight, bias)
    y.backward(grad)
    return y.detach(), x.grad, weight.grad, bias.grad


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return float((value.double() - reference).abs().max() / reference.abs().max())


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_float32_matches_torch_instance_norm(shape: tuple[int, ...], channels_last: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator) * 3 + 2
    grad = torch.randn(shape, generator=generator)
    weight, bias = torch.rand(shape[1], generator=generator) + 0.5, torch.randn(shape[1], generator=generator)
    if channels_last:
        x, grad = to_channels_last(x), to_channels_last(grad)
    reference = _reference(x, weight, bias, grad)
    ours = _ours(x, weight, bias, grad)
    for name, value, expected in zip(("y", "dx", "dweight", "dbias"), ours, reference):
        assert _relative_error(value, expected) < 1e-4, name
    assert ours[0].stride() == x.stride(), "the output must keep the input's memory layout"
    assert ours[1].stride() == x.stride(), "the input gradient must keep the input's memory layout"


@pytest.mark.parametrize("mean", [0.0, 20.0])
@pytest.mark.parametrize("channels_last", [False, True])
def test_bfloat16_is_as_accurate_as_bfloat16_inputs_allow(channels_last: bool, mean: float) -> None:
    """Errors stay at bfloat16's resolution (2**-8 = 0.4 %), also when |mean| >> std."""
    generator = torch.Generator().manual_seed(0)
    shape = (2, 4, 6, 8, 8)
    x = (torch.randn(shape, generator=generator) + mean).bfloat16()
    grad = torch.randn(shape, generator=generator).bfloat16()
    weight, bias = torch.rand(4, generator=generator) + 0.5, torch.randn(4, generator=generator)
    if channels_last:
        x, grad = to_channels_last(x), to_channels_last(grad)
    reference = _reference(x, weight, bias, grad)
    ours = _ours(x, weight, bias, grad)
    assert ours[0].dtype == ours[1].dtype == torch.bfloat16
    assert ours[2].dtype == ours[3].dtype == torch.float32
    for name, value, expected in zip(("y", "dx", "dweight", "dbias"), ours, reference):
        assert _relative_error(value, expected) < 1.5e-2, name


def test_module_under_autocast_keeps_bfloat16_and_float32_parameters() -> None:
    norm = InstanceNorm(3)
    x = torch.randn(2, 3, 4, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = norm(torch.nn.functional.conv3d(x, torch.randn(3, 3, 1, 1, 1)))
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert norm.weight.grad is not None and norm.weight.grad.dtype == torch.float32


def test_in_place_activation_after_norm_is_allowed() -> None:
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    y = F.leaky_relu(instance_norm(x, torch.ones(3), torch.zeros(3)), 0.01, inplace=True)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_double_input_with_float_parameters() -> None:
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    y = instance_norm(x, torch.ones(3), torch.zeros(3))
    assert y.dtype == torch.float64
    assert torch.allclose(y, F.instance_norm(x), atol=1e-6)
