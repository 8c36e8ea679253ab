"""``autounet report RESULTS_DIR [-o OUT.html] [--open]``: write the HTML report of a results folder."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a self-contained HTML page about a results folder",
        description="Dataset summary, plans with their reasons, training curves, Dice per case and label, overlays "
        "of the best, median and worst validation cases, the find-best result and stage timings, in one HTML file "
        "with its images embedded. What the folder does not hold yet is marked as not available.",
    )
    parser.add_argument("results_dir", type=Path, help="RESULTS/<dataset> folder")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="HTML file to write (default: RESULTS_DIR/report/index.html)")
    parser.add_argument("--open", dest="open_browser", action="store_true",
                        help="open the page in a web browser (when a display is available)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autounet.report import write_report

    path = write_report(args.results_dir, args.output).resolve()
    print(path)
    if args.open_browser:
        if _has_display():
            import webbrowser

            webbrowser.open(path.as_uri())
        else:
            print("no display found; open the file above in a browser", file=sys.stderr)
    return 0


def _has_display() -> bool:
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
