"""Choose the device and the mixed-precision mode of a run (training and inference), and give the matching autocast
and gradient scaler."""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings

import torch

from autounet.networks.cpu_speed import cpu_has_native_bfloat16, recommended_autocast_dtype

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> cuda if available, else mps if available, else cpu; explicit names are checked.

    Raises
    ------
    ValueError
        When the requested device does not exist on this machine.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device cuda requested but CUDA is not available here; use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not _mps_available():
        raise ValueError("device mps requested but MPS is not available here; use --device cpu (or auto)")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device type {device.type!r} is not supported; use cpu, cuda or mps")
    return device


@functools.lru_cache(maxsize=1)
def _warn_slow_bfloat16() -> None:
    logger.warning(
        "this CPU has no bfloat16 units (no AVX512-BF16/AMX; PyTorch reports %s): bfloat16 convolutions run on a "
        "slow fallback, about 15x slower than float32. Use --precision float32 (or auto, which picks it here)",
        torch.backends.cpu.get_cpu_capability(),
    )


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype of a run: ``"auto"`` is float16 on CUDA, bfloat16 on a CPU with bfloat16 units (else
    float32), float16 on MPS if supported.

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16", "float16"}
    device : torch.device

    Returns
    -------
    torch.dtype
        ``torch.float32`` means no autocast.

    Notes
    -----
    bfloat16 on the CPU runs the convolutions on the bfloat16 units (AVX512-BF16/AMX) and does not lower the Dice on
    Hippocampus (docs/benchmarks.md). A CPU without them (AVX2 only) has no fast bfloat16 convolution: "auto" is
    float32 there, and an explicit bfloat16 runs with a warning (about 15x slower). float16 on the CPU is refused
    (slow and needs scaling).

    Examples
    --------
    >>> resolve_precision("auto", torch.device("cpu")) in (torch.bfloat16, torch.float32)
    True
    >>> resolve_precision("float32", torch.device("cpu"))
    torch.float32
    """
    if precision not in ("auto", *_DTYPES):
        raise ValueError(f"precision must be auto, float32, bfloat16 or float16, got {precision!r}")
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "mps":
            return torch.float16 if _autocast_supported("mps", torch.float16) else torch.float32
        return recommended_autocast_dtype("cpu")
    dtype = _DTYPES[precision]
    if device.type == "cpu" and dtype == torch.float16:
        raise ValueError("float16 training on the CPU is not supported; use --precision bfloat16 or float32")
    if device.type == "cpu" and dtype == torch.bfloat16 and not cpu_has_native_bfloat16():
        _warn_slow_bfloat16()
    if dtype != torch.float32 and not _autocast_supported(device.type, dtype):
        raise ValueError(f"{precision} autocast is not supported on {device.type} with this torch; use float32")
    return dtype


def _autocast_supported(device_type: str, dtype: torch.dtype) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with torch.autocast(device_type, dtype=dtype):
                pass
        return True
    except (RuntimeError, UserWarning, ValueError):
        return False


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Autocast context for the forward pass and loss; a no-op for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def make_grad_scaler(device: torch.device, dtype: torch.dtype) -> torch.amp.GradScaler | None:
    """A gradient scaler for float16 (its small range underflows gradients); none for bfloat16 and float32."""
    if dtype != torch.float16:
        return None
    return torch.amp.GradScaler(device.type)
