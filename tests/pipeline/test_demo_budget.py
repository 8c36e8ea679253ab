"""The demo's budget: six minutes unless ``--budget`` says otherwise, on any hardware."""

from __future__ import annotations

import argparse

from autounet.cli import demo


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    demo.add_parser(parser.add_subparsers())
    return parser.parse_args(["demo", *argv])


def test_six_minutes_by_default():
    assert _parse().budget_seconds == 360.0


def test_an_explicit_budget_wins(tmp_path):
    assert _parse("--budget", "2m", "-o", str(tmp_path)).budget_seconds == 120.0
    assert _parse("--budget", "90s").budget_seconds == 90.0
