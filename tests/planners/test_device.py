"""The GPU note: plans never depend on the machine, but say how the budget relates to it."""

from __future__ import annotations

from autounet.planners.device import DeviceInfo, detect_device, device_notes


def test_no_gpu_note_mentions_the_budget():
    (note,) = device_notes(DeviceInfo(), 8.0, budget_given=False)
    assert "no CUDA GPU" in note and "8 GB reference GPU budget" in note
    (note,) = device_notes(DeviceInfo(), 12.0, budget_given=True)
    assert "12 GB GPU budget given" in note


def test_gpu_notes():
    assert "so the plans fit it" in device_notes(DeviceInfo("small", 4.0), 8.0, budget_given=False)[0]
    assert device_notes(DeviceInfo("exact", 8.0), 8.0, budget_given=False) == []


def test_detect_device_returns_device_info():
    device = detect_device()
    assert isinstance(device, DeviceInfo) and device.has_gpu == (device.gpu_name is not None)
