"""The demo's default budget follows how fast this machine trains."""

from __future__ import annotations

import torch

from autounet.cli import demo
from autounet.networks import cpu_speed


def _no_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_float32_cpu_gets_the_longer_budget(monkeypatch):
    _no_accelerator(monkeypatch)
    monkeypatch.setattr(cpu_speed, "cpu_has_native_bfloat16", lambda: False)
    assert demo.default_budget_seconds() == demo.FLOAT32_CPU_BUDGET_SECONDS == 720.0


def test_bfloat16_cpu_and_gpu_keep_six_minutes(monkeypatch):
    _no_accelerator(monkeypatch)
    monkeypatch.setattr(cpu_speed, "cpu_has_native_bfloat16", lambda: True)
    assert demo.default_budget_seconds() == 360.0
    monkeypatch.setattr(cpu_speed, "cpu_has_native_bfloat16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert demo.default_budget_seconds() == 360.0


def test_an_explicit_budget_wins(monkeypatch, tmp_path):
    import argparse

    parser = argparse.ArgumentParser()
    demo.add_parser(parser.add_subparsers())
    args = parser.parse_args(["demo", "--budget", "2m", "-o", str(tmp_path)])
    assert args.budget_seconds == 120.0
    assert parser.parse_args(["demo"]).budget_seconds is None
