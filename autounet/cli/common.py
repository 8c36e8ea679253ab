"""Small helpers shared by the subcommand modules."""

from __future__ import annotations

import argparse
import re

from autounet.parallel import default_workers


def add_workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"worker processes (default: CPU cores, here {default_workers()}; 1 = no extra processes)",
    )


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")


_DURATION = re.compile(r"^\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>s|sec|m|min|h|hr)?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Parse ``"30m"``, ``"1.5h"``, ``"90s"`` or ``"600"`` (seconds) into seconds.

    Examples
    --------
    >>> parse_duration("30m"), parse_duration("1.5h"), parse_duration("90")
    (1800.0, 5400.0, 90.0)
    """
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"cannot read duration {text!r}; use e.g. 90s, 30m or 2h")
    value = float(match["value"])
    unit = (match["unit"] or "s").lower()
    return value * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}[unit]
