"""Fast CPU training: bfloat16 autocast where the CPU has native bfloat16, and channels-last memory layout.

Measured on 2-core Xeon (AMX) and EPYC (AVX512-BF16) machines (see ``docs/benchmarks.md``, "Network training step
(CPU)"): bfloat16 autocast with channels-last layout makes a training step of nnU-Net's Hippocampus U-Net 1.6-2.3x
faster than float32. On a CPU without bfloat16 units (AVX2 only, e.g. AMD Zen 3) oneDNN has no bfloat16 convolution
and PyTorch falls back to a reference implementation: the same step is about 15x *slower* than float32. Hence
:func:`cpu_has_native_bfloat16`, which "auto" precision in training and inference consults.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

import torch
from torch import nn


@functools.lru_cache(maxsize=1)
def cpu_has_native_bfloat16() -> bool:
    """True when oneDNN runs bfloat16 convolutions on this CPU's bfloat16 units (AVX512-BF16, AMX; on ARM, BF16).

    This is the check PyTorch's convolutions make themselves: where it fails, a bfloat16 convolution falls back to
    ``slow_conv3d`` / ``slow_conv2d``. Falls back to the CPU feature checks on a torch without the oneDNN query.

    Examples
    --------
    >>> isinstance(cpu_has_native_bfloat16(), bool)
    True
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        names = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        checks: list[Callable[[], bool]] = [getattr(torch.cpu, name) for name in names if hasattr(torch.cpu, name)]
        return any(bool(check()) for check in checks)


def recommended_autocast_dtype(device_type: str = "cpu") -> torch.dtype:
    """bfloat16 on a CPU with native bfloat16, else float32 (no autocast). Other devices get float32 here.

    Examples
    --------
    >>> recommended_autocast_dtype() in (torch.bfloat16, torch.float32)
    True
    """
    if device_type == "cpu" and cpu_has_native_bfloat16():
        return torch.bfloat16
    return torch.float32


def training_autocast(
    dtype: torch.dtype = torch.bfloat16, device_type: str = "cpu"
) -> contextlib.AbstractContextManager[object]:
    """Autocast context for the forward pass; ``torch.float32`` means no autocast.

    Losses from :mod:`autounet.losses` compute in float32 inside it, so the whole step may run within.

    Examples
    --------
    >>> with training_autocast(torch.bfloat16):
    ...     y = nn.Conv2d(1, 1, 3)(torch.zeros(1, 1, 4, 4))
    >>> y.dtype
    torch.bfloat16
    """
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


def channels_last_format(ndim: int) -> torch.memory_format:
    """``channels_last_3d`` for 5D ``(N, C, z, y, x)`` tensors, ``channels_last`` for 4D, else contiguous.

    Examples
    --------
    >>> channels_last_format(5)
    torch.channels_last_3d
    """
    return {5: torch.channels_last_3d, 4: torch.channels_last}.get(ndim, torch.contiguous_format)


def to_channels_last(batch: torch.Tensor) -> torch.Tensor:
    """Return ``batch`` ``(N, C, *spatial)`` in channels-last layout (same values and shape).

    Examples
    --------
    >>> x = to_channels_last(torch.zeros(2, 3, 4, 5, 6))
    >>> x.shape, x.is_contiguous(memory_format=torch.channels_last_3d)
    (torch.Size([2, 3, 4, 5, 6]), True)
    """
    return batch.contiguous(memory_format=channels_last_format(batch.ndim))


def prepare_for_cpu_speed(model: nn.Module, channels_last: bool = True) -> nn.Module:
    """Put a network's weights in the channels-last layout oneDNN convolutions prefer (in place; returns it).

    Inputs then keep that layout through the network (also pass them through :func:`to_channels_last`).
    Results are unchanged; only memory order differs.

    Parameters
    ----------
    model : nn.Module
        A 2D or 3D network.
    channels_last : bool
        False leaves the model untouched (handy for A/B timing).

    Examples
    --------
    >>> net = prepare_for_cpu_speed(nn.Conv3d(1, 2, 3))
    >>> net.weight.is_contiguous(memory_format=torch.channels_last_3d)
    True
    """
    if not channels_last:
        return model
    ndims = {p.ndim for p in model.parameters()}
    layout = torch.channels_last_3d if 5 in ndims else torch.channels_last
    return model.to(memory_format=layout)
