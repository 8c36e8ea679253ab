"""The web page at ``/`` driven in headless Chromium (skipped without one): enter the key, pick a model, upload a real
Hippocampus image, see its slices with the labels overlaid, move the slider and the view, download the label map."""

from __future__ import annotations

import base64
import hashlib
import json

import numpy as np
import pytest

from autounet.io import read_image

from .browser import Browser, find_chromium
from .conftest import PREDICT_CASES, TEST_KEY

pytestmark = pytest.mark.integration


@pytest.fixture
def browser(tmp_path):
    find_chromium()  # skips cleanly when there is none
    opened = Browser(tmp_path / "profile")
    yield opened
    opened.close()


def _set_file(browser: Browser, name: str, content: bytes) -> None:
    """Put a file into the page's file input as a user's choice would (DataTransfer), then press Segment."""
    encoded = base64.b64encode(content).decode()
    browser.evaluate(
        "(() => { const bytes = Uint8Array.from(atob(%s), (c) => c.charCodeAt(0));"
        " const files = new DataTransfer(); files.items.add(new File([bytes], %s));"
        " document.getElementById('file').files = files.files; return true; })()" % (json.dumps(encoded), json.dumps(name)))


def test_segment_view_and_download_in_the_browser(browser, keyed_server, hippocampus_dir, tmp_path):
    case = hippocampus_dir / "imagesTr" / f"{PREDICT_CASES[2]}.nii.gz"
    browser.goto(keyed_server.url + "/")
    browser.wait_for("document.body.dataset.state === 'need-key'")
    browser.evaluate(f"document.getElementById('api-key').value = {json.dumps(TEST_KEY)}; "
                     "document.getElementById('key-apply').click(); true")
    browser.wait_for("document.body.dataset.state === 'ready'")
    assert browser.evaluate("document.getElementById('model').value") == "hippo"
    assert "labels: Anterior, Posterior" in browser.evaluate("document.getElementById('model-info').textContent")

    _set_file(browser, case.name, case.read_bytes())
    browser.evaluate("document.getElementById('mirroring').checked = false; true")  # one forward pass per tile
    browser.evaluate("document.getElementById('run').click(); true")
    browser.wait_for("['done', 'error'].includes(document.body.dataset.state)", timeout=120)
    assert browser.evaluate("document.body.dataset.state") == "done", browser.evaluate("document.getElementById('error').textContent")

    # the slider runs through the volume; the canvas shows the slice with the labels of that slice overlaid
    with keyed_server.client(TEST_KEY) as http:
        job_id = browser.evaluate("page.job.id")
        served = http.get(f"/v1/jobs/{job_id}/result").content
    labels = _read(served, tmp_path).data[0]
    depth = labels.shape[0]
    assert browser.evaluate("Number(document.getElementById('slider').max)") == depth - 1
    shown = {}
    for index in (depth // 2, int(np.argmax(np.count_nonzero(labels, axis=(1, 2))))):
        browser.evaluate(f"(() => {{ const s = document.getElementById('slider'); s.value = '{index}'; "
                         "s.dispatchEvent(new Event('input')); return true; })()")
        assert browser.evaluate("document.getElementById('slice').dataset.slice") == str(index)
        overlaid = int(browser.evaluate("document.getElementById('slice').dataset.overlaid"))
        assert overlaid == np.count_nonzero(labels[index]), index
        shown[index] = _coloured_pixels(browser)
    assert max(shown.values()) > 0  # the overlay is really drawn in colour
    # another view: the slider range follows the axis
    browser.evaluate("(() => { const a = document.getElementById('axis'); a.value = '2'; "
                     "a.dispatchEvent(new Event('change')); return true; })()")
    assert browser.evaluate("Number(document.getElementById('slider').max)") == labels.shape[2] - 1
    legend = browser.evaluate("document.getElementById('legend').textContent")
    assert f"Posterior (2){np.count_nonzero(labels == 2)} voxels" in legend

    browser.evaluate("document.getElementById('download').click(); true")
    browser.wait_for("window.autounetDownload !== undefined")
    download = browser.evaluate("window.autounetDownload")
    assert download == {"name": case.name, "size": len(served), "sha256": hashlib.sha256(served).hexdigest()}
    browser.screenshot(tmp_path / "page.png")


def _coloured_pixels(browser: Browser) -> int:
    """Pixels of the canvas whose red, green and blue differ (grey image pixels have them equal)."""
    return browser.evaluate(
        "(() => { const c = document.getElementById('slice'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
        " for (let i = 0; i < d.length; i += 4) if (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2]) n++; return n; })()")


def _read(content: bytes, folder):
    path = folder / "downloaded.nii.gz"
    path.write_bytes(content)
    return read_image(path)
