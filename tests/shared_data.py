"""Where the tests find ``../shared`` (real datasets, nnU-Net's reference plans) and what happens when it is missing.

A test that needs the shared data asks :func:`require` for the path. When the path is missing the test **fails** with
a message naming the path and the fix: a suite run without the real-data tests must not pass for a complete one.
Skipping them is a choice a developer makes explicitly with ``pytest --skip-shared`` (the summary then says loudly
how many did not run). ``AUTOUNET_SHARED_DIR`` points the tests at another copy of the shared folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUTOUNET_SHARED_DIR") or REPO_ROOT.parent / "shared")
SHARED_DATASETS = SHARED / "datasets"
REFERENCE_PLANS = SHARED / "reference" / "nnunet_plans"
HIPPOCAMPUS_REFERENCE = REFERENCE_PLANS / "01_hippocampus.json"

#: Set from ``--skip-shared`` / ``--skip-browser`` by tests/conftest.py.
SKIP_SHARED = False
SKIP_BROWSER = False
#: Words that every on-purpose skip message carries, so that the summary at the end of the run can count them.
SKIP_SHARED_WORDS = "skipped on purpose (--skip-shared)"
SKIP_BROWSER_WORDS = "skipped on purpose (--skip-browser)"


def require(path: Path, what: str) -> Path:
    """``path`` if it exists; else fail the calling test (skip it with ``--skip-shared``), naming the path and fix.

    Parameters
    ----------
    path : Path
        A file or folder under the shared folder.
    what : str
        What it is, for the message (``"real dataset Task04_Hippocampus"``).
    """
    if path.exists():
        return path
    message = (f"{what} not found at {path}: this test needs the shared data folder ../shared next to the repository "
               f"(or AUTOUNET_SHARED_DIR pointing at one). Provide it, or run pytest with --skip-shared to skip the "
               "real-data tests on purpose")
    if SKIP_SHARED:
        pytest.skip(f"{SKIP_SHARED_WORDS}: {message}")
    pytest.fail(message, pytrace=False)


def reference_plan_files() -> list[Path]:
    """nnU-Net's reference plans; a single placeholder path when the folder is missing, so that the tests
    parametrized over them are collected and fail (or skip with ``--skip-shared``) instead of vanishing."""
    files = sorted(REFERENCE_PLANS.glob("*.json"))
    return files or [REFERENCE_PLANS / "missing.json"]
