"""The ``autounet`` command: one subcommand per stage, each a thin wrapper over one library function.

Each subcommand lives in its own module in this package and provides ``add_parser(subparsers)``, which
registers the parser and sets ``func`` to a function taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from autounet import __version__
from autounet.errors import AutounetError

#: Subcommand modules, in the order ``autounet --help`` lists them (the pipeline order).
COMMAND_MODULES = [
    "demo",
    "import_",
    "import_dicom",
    "check",
    "fingerprint",
    "plan",
    "preprocess",
    "train",
    "predict",
    "export_model",
    "serve",
    "find_best",
    "evaluate",
    "report",
    "run",
    "benchmark",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autounet",
        description="Self-configuring medical image segmentation: give it images and labels, get a trained model.",
    )
    parser.add_argument("--version", action="version", version=f"autounet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details of what each stage does")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"autounet.cli.{name}").add_parser(subparsers)
    for subparser in subparsers.choices.values():  # also accepted after the command: "autounet predict ... --debug"
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``autounet`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; finished work is kept and the command can be re-run to continue", file=sys.stderr)
        return 130
    except (AutounetError, FileNotFoundError, ValueError, KeyError, OSError, MemoryError) as err:
        if args.debug:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        if isinstance(err, MemoryError) and not isinstance(err, AutounetError):
            message = f"out of memory ({err}); use fewer --workers or a smaller batch/patch"
        print(f"autounet {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
