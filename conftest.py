"""Collection rules for the doctests under autounet/: modules of an optional extra are skipped when it is missing."""

from __future__ import annotations

import importlib.util

collect_ignore: list[str] = []
if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("httpx") is None:
    # pip install "autounet[serve]" (the Makefile installs it) to test the server
    collect_ignore += ["autounet/serve", "autounet/client.py"]
