"""``write_report``: one self-contained HTML page about a results folder (images embedded as PNG data URIs)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from autounet import __version__
from autounet.jsonio import atomic_path
from autounet.layout import REPORT_FILE, REPORT_FOLDER, ResultsLayout  # noqa: F401  REPORT_* re-exported
from autounet.report.collect import ReportData, collect_report_data
from autounet.report.markup import Html, not_available, page
from autounet.report.result_sections import (
    dice_section,
    find_best_section,
    overlay_section,
    timings_section,
    training_section,
)
from autounet.report.setup_sections import dataset_section, header_block, plans_section, problems_section
from autounet.typing import PathType

logger = logging.getLogger(__name__)


#: The sections in page order: (anchor, heading, builder).
SECTIONS: tuple[tuple[str, str, Callable[[ReportData], Html]], ...] = (
    ("dataset", "Dataset", dataset_section),
    ("plans", "Plans", plans_section),
    ("training", "Training curves", training_section),
    ("dice", "Validation Dice", dice_section),
    ("overlays", "Best, median and worst validation cases", overlay_section),
    ("find-best", "Best configuration and post-processing", find_best_section),
    ("timings", "Stage timings", timings_section),
)


def write_report(results_dir: PathType, output: PathType | None = None) -> Path:
    """Write an HTML report of a results folder: dataset, plans, training curves, Dice, overlays, find-best.

    The page is one file with its images embedded, so it opens offline wherever it is copied. Anything the folder
    does not hold yet (no training, no validation, no find-best) is shown as "not available yet"; a file that
    cannot be read is named with the reason instead of stopping the report.

    Parameters
    ----------
    results_dir : str or Path
        ``RESULTS/<dataset>`` as written by ``autounet train`` (docs/architecture.md).
    output : str or Path, optional
        The HTML file to write; default ``results_dir/report/index.html``.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    FileNotFoundError
        If ``results_dir`` is not a folder.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_report(folder)
    ...     "not available yet" in path.read_text()
    True
    """
    data = collect_report_data(results_dir)
    output = Path(output) if output is not None else ResultsLayout(results_dir).report
    sections = []
    for anchor, heading, build in SECTIONS:
        started = time.monotonic()
        try:
            body = build(data)
        except Exception as err:  # one broken section must not cost the others
            logger.warning("report: section %r failed: %s", heading, err, exc_info=True)
            body = not_available(f"this section could not be made: {type(err).__name__}: {err}")
        logger.info("report: %s in %.1f s", heading, time.monotonic() - started)
        sections.append((anchor, heading, body))
    if data.problems:
        sections.append(("problems", "Files that could not be read", problems_section(data)))
    generated = time.strftime("%Y-%m-%d %H:%M")
    document = page(f"autounet report: {data.dataset_name}", header_block(data, generated, __version__), sections)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output) as tmp:
        Path(tmp).write_text(document, encoding="utf-8")
    _make_readable(output)
    return output


def _make_readable(path: Path) -> None:
    """The atomic write leaves a private (0600) file; a report is meant to be shared, so honour the umask instead."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
