"""Device and precision of a run (training and inference): auto choices, explicit requests checked."""

from __future__ import annotations

import pytest
import torch

from autounet import devices
from autounet.devices import resolve_device, resolve_precision
from autounet.networks import cpu_speed
from autounet.networks.cpu_speed import cpu_has_native_bfloat16


def test_devices_and_precision():
    cpu = resolve_device("cpu")
    # bfloat16 only where the CPU has bfloat16 units: elsewhere its convolutions fall back to a slow reference.
    assert resolve_precision("auto", cpu) == (torch.bfloat16 if cpu_has_native_bfloat16() else torch.float32)
    assert resolve_precision("float32", cpu) == torch.float32
    with pytest.raises(ValueError, match="bfloat16 or float32"):
        resolve_precision("float16", cpu)
    with pytest.raises(ValueError, match="precision must be"):
        resolve_precision("half", cpu)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    assert resolve_device("auto").type in ("cuda", "mps", "cpu")


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_on_the_cpu_follows_its_bfloat16_units(monkeypatch, caplog, native):
    """An AVX2-only CPU has no bfloat16 convolution (PyTorch's fallback is ~15x slower): auto is float32 there."""
    monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: native)
    monkeypatch.setattr(cpu_speed, "cpu_has_native_bfloat16", lambda: native)
    devices._warn_slow_bfloat16.cache_clear()
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == (torch.bfloat16 if native else torch.float32)
    with caplog.at_level("WARNING", logger="autounet.devices"):
        assert resolve_precision("bfloat16", cpu) == torch.bfloat16  # explicit: honoured
    assert ("no bfloat16 units" in caplog.text) is not native
    devices._warn_slow_bfloat16.cache_clear()
