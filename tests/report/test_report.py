"""The HTML report: content from a real (tiny) training run, every image rendering in headless Chromium, and the
"not available yet" and broken-file paths."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import shared_data
from autounet.cli import main
from autounet.evaluation import load_summary
from autounet.report import write_report

#: Flags for a quiet, offline, throw-away headless browser (no sandbox: tests may run as root in containers).
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: One training-curve figure (one fold), one box plot, and best/median/worst overlays.
IMAGES_3D = 5
#: No training log, one box plot, three overlays (4 cases: best, median and worst are distinct).
IMAGES_2D = 4


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    message = ("no Chromium binary found (chromium, chromium-browser, google-chrome): the report must be checked as a "
               "browser renders it. Install it (\"apt-get install -y chromium\"; \"make test\" does), or pass "
               "--skip-browser to skip this test on purpose")
    if shared_data.SKIP_BROWSER:
        pytest.skip(f"{shared_data.SKIP_BROWSER_WORDS}: {message}")
    pytest.fail(message, pytrace=False)


def _dump_dom(page: Path, profile: Path) -> str:
    """The page's DOM after its load event, as headless Chromium renders it."""
    command = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, f"chromium failed ({completed.returncode}): {completed.stderr[-2000:]}"
    return completed.stdout


def _image_check(dom: str) -> dict[str, str]:
    root = re.search(r"<html[^>]*>", dom)
    assert root, f"no <html> element in the rendered DOM: {dom[:300]!r}"
    return dict(re.findall(r'data-images-(\w+)="([^"]*)"', root.group(0)))


def _text(page_html: str) -> str:
    """Visible text with tags removed and entities decoded, whitespace collapsed."""
    without_images = re.sub(r'src="data:[^"]*"', "", page_html)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", without_images)).split())


def test_report_renders_in_chromium(trained_3d, tmp_path):
    page = write_report(trained_3d, tmp_path / "copied" / "report.html")
    dom = _dump_dom(page, tmp_path / "profile")
    check = _image_check(dom)
    assert check == {"total": str(IMAGES_3D), "rendered": str(IMAGES_3D), "ok": "true"}, check
    text = _text(dom)
    assert "autounet report: ReportDemo3D" in text
    for label in ("organ", "lesion"):
        assert label in text
    assert re.search(r"class prior \(start of the output bias\) background 0\.\d+, organ 0\.\d+, lesion 0\.\d+", text)
    summary = load_summary(trained_3d / "3d_fullres" / "fold_0" / "validation")
    for label in summary.labels:  # the mean Dice of each label, and of every case
        assert f"{summary.mean[label]['Dice']:.4f}" in text
        for case in summary.cases:
            assert case.case_id in text
            assert f"{case.metrics[label]['Dice']:.4f}" in text
    for phrase in ("Configuration 3d_fullres", "Predict new cases with", "Post-processing", "train_3d_fullres_fold_0",
                   "1:02:05", "3725.4", "warnings 1", "2 sessions", "best", "median", "worst", "ground truth"):
        assert phrase in text, phrase
    assert "could not be made" not in text and "could not be read" not in text


def test_2d_report_shows_the_images_and_what_is_missing(predicted_2d, tmp_path):
    page = write_report(predicted_2d, tmp_path / "report.html")
    dom = _dump_dom(page, tmp_path / "profile")
    assert _image_check(dom) == {"total": str(IMAGES_2D), "rendered": str(IMAGES_2D), "ok": "true"}
    text = _text(dom)
    for label in ("organ", "lesion", "cyst"):
        assert label in text
    assert "1.0000" in text  # the exactly predicted case
    assert "training log not available yet" in text
    assert "find-best has not run yet" in text
    assert "no stage timings" in text
    assert "best / " not in text  # four cases: best, median and worst are three different ones


def test_broken_image_is_detected(tmp_path):
    """The page's image check reports an image that does not decode (so a passing test means something)."""
    from autounet.report.markup import Html, page, png_image

    broken = Html(png_image(b"not a png", "broken") + png_image(_tiny_png(), "fine"))
    path = tmp_path / "broken.html"
    path.write_text(page("check", Html(""), [("a", "A", broken)]), encoding="utf-8")
    assert _image_check(_dump_dom(path, tmp_path / "profile")) == {"total": "2", "rendered": "1", "ok": "false"}


def _tiny_png() -> bytes:
    from autounet.report.figures import figure_to_png, new_figure

    return figure_to_png(new_figure(figsize=(1, 1)))


def test_default_location_and_cli(trained_3d, capsys):
    assert main(["report", str(trained_3d)]) == 0
    printed = capsys.readouterr().out.strip()
    assert Path(printed) == (trained_3d / "report" / "index.html").resolve()
    assert Path(printed).stat().st_size > 10_000


def test_empty_folder_says_not_available(tmp_path):
    text = _text(write_report(tmp_path).read_text(encoding="utf-8"))
    assert text.count("not available yet") >= 2
    assert "no fold trained yet" in text and "no validation results yet" in text


def test_broken_file_is_named_and_text_is_escaped(predicted_2d, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(predicted_2d, results, symlinks=True)
    (results / "inference.json").write_text("{not json", encoding="utf-8")
    (results / "run_log.json").write_text('{"stages": {"<script>alert(1)</script>": {"seconds": 2}}}', encoding="utf-8")
    page_html = write_report(results).read_text(encoding="utf-8")
    assert "inference.json" in _text(page_html) and "Files that could not be read" in page_html
    assert "<script>alert(1)</script>" not in page_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page_html


def test_missing_results_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="results folder not found"):
        write_report(tmp_path / "absent")
