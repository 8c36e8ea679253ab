"""Wall time and peak memory per pipeline stage, recorded in ``run_log.json``."""

from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from autounet.jsonio import read_json, write_json
from autounet.layout import ResultsLayout


def peak_rss_mb() -> float:
    """Largest resident set size so far of this process and of its finished children, in MiB."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024**2  # ru_maxrss: KiB on Linux, bytes on macOS
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return round(max(own, children), 1)


class StageLog:
    """Accumulates per-stage seconds and peak memory and writes them to ``RESULTS/run_log.json``.

    A resumed run adds to the times of earlier sessions, so the log shows the total cost of each stage.
    """

    def __init__(self, results_dir: Path) -> None:
        self.path = ResultsLayout(results_dir).run_log
        self.data: dict[str, Any] = {"stages": {}, "sessions": 0}

    def load(self) -> "StageLog":
        if self.path.is_file():
            try:
                self.data = read_json(self.path)
            except ValueError:
                self.data = {"stages": {}, "sessions": 0}
        self.data.setdefault("stages", {})
        self.data["sessions"] = int(self.data.get("sessions", 0)) + 1
        return self

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, Any]]:
        """Time the block and record it under ``name``; the yielded dict takes extra facts about the stage."""
        entry = self.data["stages"].setdefault(name, {"seconds": 0.0, "peak_rss_mb": 0.0})
        started = time.monotonic()
        try:
            yield entry
        finally:
            entry["seconds"] = round(float(entry.get("seconds", 0.0)) + time.monotonic() - started, 2)
            entry["peak_rss_mb"] = max(float(entry.get("peak_rss_mb", 0.0)), peak_rss_mb())
            self.save()

    def save(self) -> None:
        write_json(self.path, self.data)
