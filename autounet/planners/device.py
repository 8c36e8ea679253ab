"""What GPU this machine has, so the plans can say how the planned budget relates to it."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DeviceInfo:
    """The accelerator found on this machine (``gpu_name`` None: no CUDA GPU)."""

    gpu_name: str | None = None
    gpu_memory_gb: float | None = None

    @property
    def has_gpu(self) -> bool:
        return self.gpu_name is not None


def _no_gpu_device_nodes() -> bool:
    """On Linux a CUDA (or ROCm) GPU shows up as /dev/nvidia* (or /dev/kfd); none means no GPU, no torch import."""
    if not sys.platform.startswith("linux"):
        return False
    dev = Path("/dev")
    return not (any(dev.glob("nvidia[0-9]*")) or (dev / "kfd").exists())


def detect_device() -> DeviceInfo:
    """Look for a CUDA GPU with PyTorch (imported lazily; no PyTorch or no GPU gives an empty ``DeviceInfo``)."""
    if _no_gpu_device_nodes():
        return DeviceInfo()
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but planning does not need it
        return DeviceInfo()
    if not torch.cuda.is_available():
        return DeviceInfo()
    properties = torch.cuda.get_device_properties(0)
    return DeviceInfo(gpu_name=str(properties.name), gpu_memory_gb=round(properties.total_memory / 1024**3, 1))


def device_notes(device: DeviceInfo, memory_budget_gb: float, budget_given: bool) -> list[str]:
    """Notes on how the planned GPU budget relates to the machine the plans were made on.

    Examples
    --------
    >>> device_notes(DeviceInfo(), 8.0, budget_given=False)[0][:60]
    'no CUDA GPU on this machine: planned for the 8 GB reference '
    >>> device_notes(DeviceInfo("A100", 40.0), 8.0, budget_given=False)
    ['planned for the 8 GB reference GPU budget; this machine has A100 with 40 GB: pass --gpu-memory 40 to use more of it']
    >>> device_notes(DeviceInfo("A100", 40.0), 40.0, budget_given=True)
    []
    """
    if not device.has_gpu:
        return [
            f"no CUDA GPU on this machine: planned for the {memory_budget_gb:g} GB "
            f"{'GPU budget given' if budget_given else 'reference GPU budget'} anyway, so the plans are the same on "
            "every machine; training here runs on the CPU with these patch and batch sizes (slowly)"
        ]
    if device.gpu_memory_gb is not None and not budget_given and abs(device.gpu_memory_gb - memory_budget_gb) > 0.5:
        return [
            f"planned for the {memory_budget_gb:g} GB reference GPU budget; this machine has {device.gpu_name} with "
            f"{device.gpu_memory_gb:g} GB: pass --gpu-memory {device.gpu_memory_gb:g} "
            f"{'to use more of it' if device.gpu_memory_gb > memory_budget_gb else 'so the plans fit it'}"
        ]
    return []
