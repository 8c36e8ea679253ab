"""Safe by default: no open port without a key, every /v1 call checked against the key, upload size bounded while
it streams, at most N cases at once and 503 with Retry-After beyond the queue."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from autounet.cli import main

from .conftest import PREDICT_CASES, TEST_KEY, httpx

pytestmark = pytest.mark.integration

#: No test-time mirroring: one forward pass per tile instead of eight (these tests are about the HTTP behaviour).
FAST = {"mirroring": "false"}
SERVE = [sys.executable, "-c", "import sys; from autounet.cli import main; sys.exit(main())", "serve"]


def test_a_public_address_without_a_key_is_refused(hippocampus_package, tmp_path):
    completed = subprocess.run([*SERVE, str(hippocampus_package), "--host", "0.0.0.0", "--port", "8"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert "refusing to listen on 0.0.0.0 without an API key" in completed.stderr and "--api-key-file" in completed.stderr


@pytest.mark.parametrize("key, words", [("secret", "at least 16 characters"), ("two words and more text", "one word"),
                                        (None, "API key file not found")])
def test_a_weak_or_missing_key_is_refused(hippocampus_package, tmp_path, capsys, key, words):
    key_file = tmp_path / "api.key"
    if key is not None:
        key_file.write_text(key)
    assert main(["serve", str(hippocampus_package), "--api-key-file", str(key_file)]) == 2
    assert words in capsys.readouterr().err


def test_every_v1_call_needs_the_key(keyed_server, hippocampus_dir):
    image = (hippocampus_dir / "imagesTr" / f"{PREDICT_CASES[0]}.nii.gz").read_bytes()
    with keyed_server.client() as anonymous, keyed_server.client("wrong-key-0123456789") as wrong, \
            keyed_server.client(TEST_KEY) as right:
        assert anonymous.get("/healthz").status_code == 200 and anonymous.get("/readyz").status_code == 200
        assert anonymous.get("/").status_code == 200  # the page itself; it asks for the key
        for client in (anonymous, wrong):
            for method, path in (("GET", "/v1/models"), ("GET", "/v1/models/hippo"), ("GET", "/v1/jobs/" + "a" * 22)):
                response = client.request(method, path)
                assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
            response = client.post("/v1/models/hippo/predict", files={"file": ("scan.nii.gz", image)}, data=FAST)
            assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
        assert right.get("/v1/models").status_code == 200
        assert right.post("/v1/models/hippo/predict", files={"file": ("scan.nii.gz", image)}, data=FAST).status_code == 200
    assert "rejected a wrong API key" in keyed_server.log_text()


def test_the_upload_limit_holds_with_and_without_a_declared_length(keyed_server):
    big = np.random.default_rng(0).bytes(3 * 1024**2)  # over the 1 MB limit
    with keyed_server.client(TEST_KEY) as http:
        declared = http.post("/v1/models/hippo/predict", files={"file": ("scan.nii.gz", big)})
        assert declared.status_code == 413 and "at most 1.0 MB" in declared.json()["error"]["message"]

        def chunks():  # no Content-Length: the server counts while the body streams in
            yield b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.nii.gz\"\r\n\r\n"
            for start in range(0, len(big), 65536):
                yield big[start:start + 65536]
            yield b"\r\n--B--\r\n"

        streamed = http.post("/v1/models/hippo/predict", content=chunks(),
                             headers={"content-type": "multipart/form-data; boundary=B"})
        assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "upload_too_large"
        assert http.get("/v1/models").status_code == 200  # still serving


def test_beyond_the_queue_requests_get_503_with_retry_after(keyed_server, hippocampus_dir):
    """One case at a time and no queue: while a slow upload holds the only place, another request is refused at once;
    once it is answered, requests succeed again."""
    image = (hippocampus_dir / "imagesTr" / f"{PREDICT_CASES[0]}.nii.gz").read_bytes()
    release = threading.Event()
    answers: dict[str, int] = {}

    def slow_upload() -> None:
        def body():
            yield b"--B\r\nContent-Disposition: form-data; name=\"mirroring\"\r\n\r\nfalse\r\n"
            yield b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.nii.gz\"\r\n\r\n"
            yield image[:1000]
            release.wait(60)
            yield image[1000:]
            yield b"\r\n--B--\r\n"

        with keyed_server.client(TEST_KEY) as slow:
            answers["slow"] = slow.post("/v1/models/hippo/predict", content=body(),
                                        headers={"content-type": "multipart/form-data; boundary=B"}).status_code

    thread = threading.Thread(target=slow_upload)
    thread.start()
    try:
        with keyed_server.client(TEST_KEY) as http:
            deadline = time.monotonic() + 30
            while http.get("/readyz").json()["queue"]["waiting"] < 1:
                assert time.monotonic() < deadline, "the slow upload was never admitted"
                time.sleep(0.05)
            busy = http.post("/v1/models/hippo/predict", files={"file": ("scan.nii.gz", image)}, data=FAST)
            assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy", busy.text
            assert 1 <= int(busy.headers["retry-after"]) <= 120
            assert http.post("/v1/models/hippo/jobs", files={"file": ("scan.nii.gz", image)}, data=FAST).status_code == 503
    finally:
        release.set()
        thread.join(60)
    assert answers["slow"] == 200
    with keyed_server.client(TEST_KEY) as http:
        assert http.post("/v1/models/hippo/predict", files={"file": ("scan.nii.gz", image)}, data=FAST).status_code == 200
    assert "status=503" in keyed_server.log_text()
