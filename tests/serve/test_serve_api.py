"""``autounet serve`` as a running process over HTTP: probes, model descriptions, labels equal to ``autounet
predict``'s on real Hippocampus cases, the client and ``predict --server``, jobs with their time-to-live, more than
fifteen kinds of bad upload (each a 4xx naming the problem), and a server that still works afterwards."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from autounet.cli import main
from autounet.inference import read_probabilities
from autounet.io import Geometry, read_image, write_image

from .conftest import PREDICT_CASES, httpx
from .uploads import BAD_KINDS, bad_uploads

pytestmark = pytest.mark.integration


def _predict_locally(model: Path, inputs: Path, output: Path, *options: str) -> Path:
    """``autounet predict`` on one torch thread, one case after the other (the server runs with --threads 1)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["predict", "-i", str(inputs), "-o", str(output), "-m", str(model), "--device", "cpu",
                     "--workers", "0", "--no-progress", *options]) == 0
    finally:
        torch.set_num_threads(previous)
    return output


@pytest.fixture(scope="module")
def local_predictions(hippocampus_model, predict_inputs, tmp_path_factory) -> Path:
    return _predict_locally(hippocampus_model, predict_inputs, tmp_path_factory.mktemp("local"))


def test_probes_models_and_api_reference(server, hippocampus_package):
    with server.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready" and ready.json()["threads_per_case"] == 1
        models = {m["name"]: m for m in http.get("/v1/models").json()["models"]}
        assert set(models) == {"hippo", "HippocampusTiny", "Slides2D", "TwoChannel"}
        hippo = http.get("/v1/models/hippo").json()
        assert "/v1/models/{name}/predict" in http.get("/openapi.json").json()["paths"]
        assert http.get("/docs").status_code == 200
    assert hippo["version"] == "0.1-test" and hippo["kind"] == "package" and hippo["ready"] is True
    assert hippo["checksum"] == "sha256:" + hashlib.sha256(hippocampus_package.read_bytes()).hexdigest()
    assert hippo["labels"] == {"background": 0, "Anterior": 1, "Posterior": 2} and hippo["channels"] == ["MRI"]
    assert hippo["configurations"] == ["3d_fullres"] and hippo["folds"] == {"3d_fullres": [0]}
    assert hippo["dimensionality"] == "3D" and ".nii.gz" in hippo["accepted_formats"] and ".png" not in hippo["accepted_formats"]
    assert 0 < hippo["cross_validation"]["mean_dice"] <= 1 and hippo["license"] == "CC0-1.0"
    folder_model = models["HippocampusTiny"]
    assert folder_model["kind"] == "folder" and folder_model["cross_validation"] == hippo["cross_validation"]
    assert folder_model["checksum"].startswith("sha256:") and len(folder_model["checksum"]) == 71


@pytest.mark.parametrize("model", ["hippo", "HippocampusTiny"])
def test_labels_equal_autounet_predict(server, predict_inputs, local_predictions, model):
    foreground = 0
    with server.client() as http:
        for case in PREDICT_CASES:
            with open(predict_inputs / f"{case}.nii.gz", "rb") as stream:
                response = http.post(f"/v1/models/{model}/predict", files={"file": (f"{case}.nii.gz", stream)})
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "application/gzip"
            assert f'filename="{case}.nii.gz"' in response.headers["content-disposition"]
            assert float(response.headers["x-autounet-infer-seconds"]) > 0 and "infer;dur=" in response.headers["server-timing"]
            served = _image(response.content, ".nii.gz")
            local = read_image(local_predictions / f"{case}.nii.gz")
            assert np.array_equal(served.data, local.data), f"{case}: {np.count_nonzero(served.data != local.data)} voxels differ"
            assert served.geometry == local.geometry == read_image(predict_inputs / f"{case}.nii.gz").geometry
            foreground += int(np.count_nonzero(served.data))
    assert foreground > 100  # the model predicts labels, so the comparison means something


def test_a_2d_model_answers_png_with_png(server, flat_model, predict_inputs, tmp_path):
    rng = np.random.default_rng(4)
    picture = (rng.random((1, 1, 48, 56)) * 60).astype(np.uint8)
    picture[0, 0, 10:30, 12:40] += 150
    write_image(tmp_path / "in" / "slide_01.png", picture, Geometry(spacing=(999.0, 1.0, 1.0), is_2d=True))
    local = _predict_locally(flat_model, tmp_path / "in", tmp_path / "local")
    with server.client() as http:
        info = http.get("/v1/models/Slides2D").json()
        response = http.post("/v1/models/Slides2D/predict", files={"file": ("slide_01.png", (tmp_path / "in" / "slide_01.png").read_bytes())})
        volume = http.post("/v1/models/Slides2D/predict", files={"file": ("scan.nii.gz", (predict_inputs / f"{PREDICT_CASES[0]}.nii.gz").read_bytes())})
    assert info["dimensionality"] == "2D" and ".png" in info["accepted_formats"]
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    served = _image(response.content, ".png")
    assert served.spatial_shape == (1, 48, 56) and np.array_equal(served.data, read_image(local / "slide_01.png").data)
    assert volume.status_code == 422 and volume.json()["error"]["code"] == "wrong_dimensionality"


def test_one_file_per_channel_or_one_4d_file(server, two_channel_model, tmp_path):
    from inference.conftest import write_case

    write_case(tmp_path / "in" / "case_001_0000.nii.gz", seed=1)
    write_case(tmp_path / "in" / "case_001_0001.nii.gz", seed=2)
    write_case(tmp_path / "four_d" / "case_001.nii.gz", seed=1, channels=2)  # 4D NIfTI: both channels in one file
    local = read_image(_predict_locally(two_channel_model, tmp_path / "in", tmp_path / "local") / "case_001.nii.gz").data
    with server.client() as http:
        per_channel = http.post("/v1/models/TwoChannel/predict", files=[
            ("file", (f"case_001_{c:04d}.nii.gz", (tmp_path / "in" / f"case_001_{c:04d}.nii.gz").read_bytes())) for c in (0, 1)])
        swapped = http.post("/v1/models/TwoChannel/predict", files=[
            ("file", (f"case_001_{c:04d}.nii.gz", (tmp_path / "in" / f"case_001_{c:04d}.nii.gz").read_bytes())) for c in (1, 0)])
        one_file = http.post("/v1/models/TwoChannel/predict", files={"file": ("case_001.nii.gz", (tmp_path / "four_d" / "case_001.nii.gz").read_bytes())})
        one_channel = http.post("/v1/models/TwoChannel/predict", files={"file": ("x_0000.nii.gz", (tmp_path / "in" / "case_001_0000.nii.gz").read_bytes())})
    assert per_channel.status_code == 200 and 'filename="case_001.nii.gz"' in per_channel.headers["content-disposition"]
    assert np.array_equal(_image(per_channel.content, ".nii.gz").data, local)
    assert not np.array_equal(_image(swapped.content, ".nii.gz").data, local)  # channel order is the fields' order
    assert one_file.status_code == 200 and _image(one_file.content, ".nii.gz").spatial_shape == local.shape[1:]
    assert one_channel.status_code == 422 and "takes 2 (MRI0, MRI1)" in one_channel.json()["error"]["message"]


def test_predict_on_the_server_writes_what_local_prediction_writes(server, predict_inputs, hippocampus_model, tmp_path):
    options = ["--save-probabilities", "--save-uncertainty"]
    local = _predict_locally(hippocampus_model, predict_inputs, tmp_path / "local", *options)
    assert main(["predict", "--server", server.url, "-m", "hippo", "-i", str(predict_inputs), "-o", str(tmp_path / "remote"),
                 "--workers", "2", "--no-progress", *options]) == 0
    files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "remote").as_posix() for p in (tmp_path / "remote").rglob("*") if p.is_file())
    for case in PREDICT_CASES:
        assert np.array_equal(read_image(local / f"{case}.nii.gz").data, read_image(tmp_path / "remote" / f"{case}.nii.gz").data)
        local_p, labels = read_probabilities(local / f"{case}.npz")
        remote_p, remote_labels = read_probabilities(tmp_path / "remote" / f"{case}.npz")
        assert labels == remote_labels and np.allclose(local_p, remote_p, atol=1e-6)
        entropy = [read_image(folder / "uncertainty" / f"{case}_entropy.nii.gz").data for folder in (local, tmp_path / "remote")]
        assert np.allclose(*entropy, atol=1e-6)
    # --continue skips what is complete
    assert main(["predict", "--server", server.url, "-m", "hippo", "-i", str(predict_inputs), "-o", str(tmp_path / "remote"),
                 "--continue", "--no-progress", *options]) == 0


def test_python_client_with_files_and_images_in_memory(server, predict_inputs, local_predictions):
    from autounet.client import Client, ServerError

    case = PREDICT_CASES[0]
    with Client(server.url) as client:
        assert client.health() and client.ready()
        assert {m["name"] for m in client.models()} == {"hippo", "HippocampusTiny", "Slides2D", "TwoChannel"}
        from_file = client.predict(predict_inputs / f"{case}.nii.gz", "hippo")
        from_memory = client.predict(read_image(predict_inputs / f"{case}.nii.gz"), "hippo", mirroring=True, step_size=0.5)
        bundle = client.predict(predict_inputs / f"{case}.nii.gz", "hippo", probabilities=True)
        with pytest.raises(ServerError, match="no model 'liver'") as raised:
            client.predict(predict_inputs / f"{case}.nii.gz", "liver")
        assert raised.value.status == 404
    expected = read_image(local_predictions / f"{case}.nii.gz").data
    assert np.array_equal(from_file.image().data, expected) and np.array_equal(from_memory.image().data, expected)
    assert from_file.timings["infer"] > 0 and from_file.model == "hippo"
    assert bundle.is_bundle and set(bundle.files()) == {f"{case}.nii.gz", f"{case}.npz"}


def test_jobs_progress_result_preview_and_time_to_live(server, predict_inputs):
    case = predict_inputs / f"{PREDICT_CASES[1]}.nii.gz"
    with server.client() as http:
        synchronous = http.post("/v1/models/hippo/predict", files={"file": (case.name, case.read_bytes())}).content
        submitted = http.post("/v1/models/hippo/jobs", files={"file": (case.name, case.read_bytes())}, data={"preview": "true"})
        assert submitted.status_code == 202 and submitted.headers["location"] == f"/v1/jobs/{submitted.json()['id']}"
        job_id = submitted.json()["id"]
        assert http.get(f"/v1/jobs/{job_id}").json()["state"] in ("queued", "running", "done")
        status = _wait(http, job_id)
        assert status["state"] == "done" and status["progress"] == 1.0 and status["result"]["timings"]["infer"] > 0
        result = http.get(f"/v1/jobs/{job_id}/result")
        assert result.status_code == 200 and result.content == synchronous
        preview = http.get(f"/v1/jobs/{job_id}/preview").json()
        shape = preview["shape"]
        assert shape == list(read_image(case).spatial_shape) and preview["labels"][2]["name"] == "Posterior"
        labels = np.frombuffer(http.get(preview["labels_url"]).content, np.uint8).reshape(shape)
        assert np.array_equal(labels, _image(synchronous, ".nii.gz").data[0])  # values 0, 1, 2 are their own indices
        assert len(http.get(preview["image_url"]).content) == int(np.prod(shape))
        assert http.delete(f"/v1/jobs/{job_id}").status_code == 204
        assert http.get(f"/v1/jobs/{job_id}").status_code == 404
        # a job nobody fetches is removed after the time-to-live (3 s on this server), files included
        second = http.post("/v1/models/hippo/jobs", files={"file": (case.name, case.read_bytes())}).json()["id"]
        _wait(http, second)
        jobs_folder = server.private_folders()[0] / "jobs"
        assert any(jobs_folder.iterdir())
        time.sleep(4.0)
        gone = http.get(f"/v1/jobs/{second}/result")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "unknown_job"
        assert not any(jobs_folder.iterdir())
        assert http.get("/v1/jobs/../../etc/passwd").status_code == 404


@pytest.fixture(scope="module")
def bad(hippocampus_dir, tmp_path_factory):
    return bad_uploads(hippocampus_dir / "imagesTr" / f"{PREDICT_CASES[0]}.nii.gz", tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_each_bad_upload_gets_a_4xx_naming_the_problem(server, bad, kind):
    upload = next(u for u in bad if u.kind == kind)
    with server.client() as http:
        url = f"/v1/models/{upload.model}/predict"
        if upload.raw_body is not None:
            response = http.post(url, content=upload.raw_body[1], headers={"content-type": upload.raw_body[0]})
        else:
            files = [("file", (name, data)) for name, data in upload.files]
            if not files:  # options alone, still as multipart/form-data
                files = [(key, (None, value)) for key, value in upload.data.items()]
            response = http.post(url, files=files, data=upload.data if upload.files else None)
    assert response.status_code == upload.status, f"{upload.kind}: {response.status_code} {response.text}"
    error = response.json()["error"]
    assert not upload.code or error["code"] == upload.code, f"{upload.kind}: {error}"
    for word in upload.words:
        assert word in error["message"], f"{upload.kind}: {error['message']}"
    assert str(server.work_dir) not in error["message"]  # no server paths in answers


def test_the_server_keeps_serving_after_every_bad_upload(server, bad, predict_inputs, local_predictions):
    assert [upload.kind for upload in bad] == list(BAD_KINDS) and len(BAD_KINDS) >= 15
    assert server.process.poll() is None
    case = PREDICT_CASES[0]
    with server.client() as http:
        # an upload name is never a path: this one is answered normally and nothing is written outside
        response = http.post("/v1/models/hippo/predict", files={"file": ("../../../escaped.nii.gz", (predict_inputs / f"{case}.nii.gz").read_bytes())})
    assert response.status_code == 200
    assert np.array_equal(_image(response.content, ".nii.gz").data, read_image(local_predictions / f"{case}.nii.gz").data)
    written = [name for _, folders, files in os.walk(server.work_dir.parent) for name in folders + files]  # races tolerated
    assert not [name for name in written if "escaped" in name]
    log = server.log_text()
    for status in (404, 413, 415, 422):
        assert f"status={status}" in log
    assert "POST /v1/models/hippo/predict model=hippo bytes=" in log and "status=200 seconds=" in log


def test_uploads_live_in_a_private_folder_removed_after_the_answer(server):
    (private,) = server.private_folders()
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    deadline = time.monotonic() + 5
    while any((private / "requests").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any((private / "requests").iterdir())


def _image(content: bytes, extension: str):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"x{extension}"
        path.write_bytes(content)
        return read_image(path)


def _wait(http: "httpx.Client", job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = http.get(f"/v1/jobs/{job_id}").json()
        if status["state"] in ("done", "failed") or time.monotonic() > deadline:
            return status
        time.sleep(0.1)

