"""Python client of ``autounet serve``: list models, segment files or in-memory images, predict whole folders.

Usage::

    from autounet.client import Client
    with Client("http://127.0.0.1:8000", api_key="...") as client:
        client.predict("scan.nii.gz", "Hippocampus").save("out/scan.nii.gz")

Needs ``httpx`` (the ``serve`` extra). ``predict_folder`` writes the same files as ``autounet predict`` (label maps in
each input's format, optional probabilities and uncertainty maps, ``prediction_report.json``).
"""

from __future__ import annotations

import io
import os
import tempfile
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import httpx
from tqdm import tqdm

from autounet.errors import AutounetError
from autounet.inference.batch import REPORT_FILE, PredictionReport
from autounet.inference.export import output_paths
from autounet.inference.inputs import InputCase, find_input_cases
from autounet.io import Image, read_image, write_image
from autounet.io.formats import file_extension
from autounet.jsonio import atomic_path, write_json
from autounet.packaging.manifest import relative_path_problem
from autounet.typing import PathType

ImageInput = Union[PathType, Sequence[PathType], Image]
#: Seconds a request may take (a large CT on a busy CPU server takes minutes).
DEFAULT_TIMEOUT_SECONDS = 900.0


class ServerError(AutounetError):
    """The server answered with an error (4xx/5xx) or could not be reached.

    Attributes ``status`` (0 when unreachable), ``code`` and ``retry_after`` (seconds, or None) come from the answer.
    """

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.retry_after = status, code, retry_after


@dataclass
class Prediction:
    """The server's answer for one case: the label map file (or a zip with the extra maps) and the timings."""

    content: bytes
    filename: str
    media_type: str
    timings: dict[str, float] = field(default_factory=dict)
    model: str = ""
    model_checksum: str = ""

    @property
    def is_bundle(self) -> bool:
        """True when the answer is a zip (probabilities or uncertainty were asked for)."""
        return self.media_type == "application/zip"

    def files(self) -> dict[str, bytes]:
        """The answer's files by name (``CASE.ext``; with extras also ``CASE.npz``, ``uncertainty/...``)."""
        if not self.is_bundle:
            return {self.filename: self.content}
        with zipfile.ZipFile(io.BytesIO(self.content)) as bundle:
            names = [n for n in bundle.namelist() if not n.endswith("/")]
            for name in names:
                problem = relative_path_problem(name)
                if problem is not None:
                    raise ServerError(0, "unsafe_answer", f"the server's answer holds {name!r}, which {problem}; refused")
            return {name: bundle.read(name) for name in names}

    def save(self, path: PathType) -> Path:
        """Write the label map to ``path`` (a file; its extension should be the input's). Returns ``path``."""
        path = Path(path)
        _write_atomic(path, self.files()[self.segmentation_name])
        return path

    @property
    def segmentation_name(self) -> str:
        names = list(self.files())
        return next(n for n in names if not n.endswith(".npz") and not n.startswith("uncertainty/"))

    def image(self) -> Image:
        """The label map as an :class:`~autounet.io.Image` (read through a temporary file)."""
        name = self.segmentation_name
        with tempfile.TemporaryDirectory(prefix="autounet-client-") as folder:
            path = Path(folder) / f"segmentation{file_extension(name)}"
            path.write_bytes(self.files()[name])
            return read_image(path)


class Client:
    """Talk to an ``autounet serve`` server.

    Parameters
    ----------
    url : str
        The server, e.g. ``http://127.0.0.1:8000`` (or the reverse proxy's ``https://`` address).
    api_key : str, optional
        Sent as ``Authorization: Bearer <key>``.
    timeout : float
        Seconds a request may take.
    verify : bool or str
        TLS verification (a CA bundle path for a hospital's own certificates).
    """

    def __init__(self, url: str, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 verify: bool | str = True) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, verify=verify)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ facts
    def health(self) -> bool:
        """True when the server process answers ``/healthz``."""
        try:
            return self._request("GET", "/healthz").status_code == 200
        except ServerError:
            return False

    def ready(self) -> bool:
        """True when every model is loaded and warmed up (``/readyz``)."""
        try:
            return self._request("GET", "/readyz", check=False).status_code == 200
        except ServerError:
            return False

    def wait_until_ready(self, timeout: float = 120.0, poll: float = 0.5) -> None:
        """Block until :meth:`ready`; raise :class:`ServerError` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise ServerError(0, "not_ready", f"{self.url} was not ready within {timeout:.0f} s")
            time.sleep(poll)

    def models(self) -> list[dict[str, Any]]:
        """The served models with their labels, channels, checksum, ... (``GET /v1/models``)."""
        return self._request("GET", "/v1/models").json()["models"]

    def model(self, name: str) -> dict[str, Any]:
        """One model's description (``GET /v1/models/{name}``)."""
        return self._request("GET", f"/v1/models/{name}").json()

    # ------------------------------------------------------------------ prediction
    def predict(self, image: ImageInput, model: str, **options: Any) -> Prediction:
        """Segment one case.

        Parameters
        ----------
        image : path, sequence of paths or Image
            One file holding every channel, the channel files in order, or an image in memory.
        model : str
            The model's name.
        **options
            ``folds`` (sequence), ``mirroring`` (bool), ``step_size`` (float), ``probabilities`` and
            ``uncertainty`` (bool: the answer becomes a zip holding the extra maps).

        Returns
        -------
        Prediction
        """
        with _upload_files(image) as files:
            response = self._request("POST", f"/v1/models/{model}/predict", files=files, data=_option_fields(options))
        return _prediction(response)

    def submit(self, image: ImageInput, model: str, **options: Any) -> str:
        """Submit one case as a job; returns its id (poll :meth:`job`, then :meth:`result`)."""
        with _upload_files(image) as files:
            response = self._request("POST", f"/v1/models/{model}/jobs", files=files, data=_option_fields(options))
        return response.json()["id"]

    def job(self, job_id: str) -> dict[str, Any]:
        """State (queued, running, done, failed), step and progress of a job."""
        return self._request("GET", f"/v1/jobs/{job_id}").json()

    def result(self, job_id: str, timeout: float = DEFAULT_TIMEOUT_SECONDS, poll: float = 1.0) -> Prediction:
        """Wait for a job to finish and fetch its result (raises :class:`ServerError` if it failed)."""
        deadline = time.monotonic() + timeout
        while self.job(job_id)["state"] in ("queued", "running"):
            if time.monotonic() > deadline:
                raise ServerError(0, "timeout", f"job {job_id} did not finish within {timeout:.0f} s")
            time.sleep(poll)
        return _prediction(self._request("GET", f"/v1/jobs/{job_id}/result"))

    def predict_folder(self, input_dir: PathType, output_dir: PathType, model: str, *, file_ending: str | None = None,
                       skip_finished: bool = False, workers: int = 1, progress: bool = True,
                       **options: Any) -> PredictionReport:
        """Segment every case of a folder through the server, writing what ``autounet predict`` writes.

        Parameters
        ----------
        input_dir, output_dir : str or Path
            As for ``autounet predict`` (cases found by :func:`~autounet.inference.find_input_cases`).
        model : str
            The model's name on the server.
        file_ending : str, optional
            Only read input files ending with this.
        skip_finished : bool
            Skip cases whose outputs are complete.
        workers : int
            Requests in flight at once.
        progress : bool
            Progress bar.
        **options
            As for :meth:`predict`.

        Returns
        -------
        PredictionReport
            Written, skipped and failed cases; ``prediction_report.json`` is written to ``output_dir``.
        """
        info = self.model(model)
        output_dir = Path(output_dir)
        cases = find_input_cases(input_dir, len(info["channels"]), file_ending)
        report = PredictionReport(output_dir, settings={
            "server": self.url, "model": model, "model_checksum": info["checksum"],
            "configurations": info["configurations"], "options": {k: v for k, v in options.items() if v is not None},
        })
        save_probabilities, save_uncertainty = bool(options.get("probabilities")), bool(options.get("uncertainty"))
        todo = []
        for case in cases:
            paths = output_paths(output_dir, case.case_id, case.output_extension)
            if skip_finished and paths.is_complete(save_probabilities, save_uncertainty, False):
                report.skipped.append(case.case_id)
            else:
                todo.append(case)
        started = time.perf_counter()
        bar = tqdm(total=len(todo), desc="predict", unit="case", disable=not progress)

        def one(case: InputCase) -> tuple[InputCase, float, str | None]:
            case_started = time.perf_counter()
            try:
                if case.problem:
                    raise ServerError(0, "bad_case", case.problem)
                _write_case(self.predict(list(case.files), model, **options), output_dir, case)
            except ServerError as err:
                if err.code == "unreachable" or err.status == 401:
                    raise  # the server is unreachable or refuses the key: no case can succeed
                return case, 0.0, f"{case.describe()}: {err}"
            except OSError as err:
                return case, 0.0, f"{case.describe()}: {err}"
            return case, time.perf_counter() - case_started, None

        try:
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                for case, seconds, failure in pool.map(one, todo):
                    if failure is None:
                        report.written.append(case.case_id)
                        report.case_seconds[case.case_id] = seconds
                    else:
                        report.failed[case.case_id] = failure
                    bar.update()
        finally:
            bar.close()
        report.seconds = time.perf_counter() - started
        output_dir.mkdir(parents=True, exist_ok=True)
        write_json(output_dir / REPORT_FILE, report.to_dict())
        return report

    # ------------------------------------------------------------------ HTTP
    def _request(self, method: str, path: str, check: bool = True, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ServerError(0, "timeout", f"{self.url}{path}: no answer in time; the server may be busy (raise the "
                              "client's timeout) or unreachable") from None
        except httpx.HTTPError as err:
            raise ServerError(0, "unreachable", f"{self.url}: cannot reach the server ({err}); is autounet serve "
                              "running there, and the address right?") from None
        if check and response.status_code >= 400:
            raise _error(response, f"{self.url}{path}")
        return response


def _error(response: httpx.Response, where: str) -> ServerError:
    try:
        detail = response.json()["error"]
        code, message = str(detail["code"]), str(detail["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", response.text[:300] or response.reason_phrase
    retry = response.headers.get("retry-after")
    return ServerError(response.status_code, code, f"{where}: {response.status_code} {message}",
                       float(retry) if retry and retry.replace(".", "", 1).isdigit() else None)


def _prediction(response: httpx.Response) -> Prediction:
    timings = {
        key[len("x-autounet-"):-len("-seconds")]: float(value)
        for key, value in response.headers.items()
        if key.startswith("x-autounet-") and key.endswith("-seconds")
    }
    disposition = response.headers.get("content-disposition", "")
    filename = disposition.split('filename="', 1)[1].split('"', 1)[0] if 'filename="' in disposition else "segmentation"
    return Prediction(response.content, filename, response.headers.get("content-type", "").split(";")[0], timings,
                      response.headers.get("x-autounet-model", ""), response.headers.get("x-autounet-model-checksum", ""))


class _upload_files:
    """``files=`` for httpx: open the case's files (an in-memory image goes through a temporary .nii.gz)."""

    def __init__(self, image: ImageInput) -> None:
        self.image = image
        self._handles: list[Any] = []
        self._folder: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> list[tuple[str, tuple[str, Any, str]]]:
        if isinstance(self.image, Image):
            self._folder = tempfile.TemporaryDirectory(prefix="autounet-client-")
            paths = []
            for index, channel in enumerate(self.image.data):  # one file per channel, in channel order
                path = Path(self._folder.name) / f"image_{index:04d}.nii.gz"
                write_image(path, channel, self.image.geometry)
                paths.append(path)
        elif isinstance(self.image, (str, os.PathLike)):
            paths = [Path(self.image)]
        else:
            paths = [Path(p) for p in self.image]
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: image file not found")
        self._handles = [open(p, "rb") for p in paths]
        return [("file", (p.name, handle, "application/octet-stream")) for p, handle in zip(paths, self._handles)]

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.close()
        if self._folder is not None:
            self._folder.cleanup()


def _option_fields(options: dict[str, Any]) -> dict[str, str]:
    known = ("folds", "mirroring", "step_size", "probabilities", "uncertainty", "preview")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    fields = {}
    for name, value in options.items():
        if value is None:
            continue
        if isinstance(value, bool):
            fields[name] = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            fields[name] = ",".join(str(v) for v in value)
        else:
            fields[name] = str(value)
    return fields


def _write_case(prediction: Prediction, output_dir: Path, case: InputCase) -> None:
    """Write the answer's files under the names ``autounet predict`` uses; the label map last (marks the case done)."""
    paths = output_paths(output_dir, case.case_id, case.output_extension)
    files = prediction.files()
    segmentation = files.pop(prediction.segmentation_name)
    for name, content in files.items():
        if name.endswith(".npz"):
            target = paths.probabilities
        elif name.endswith(f"_entropy{file_extension(name)}"):
            target = paths.entropy
        elif name.endswith(f"_disagreement{file_extension(name)}"):
            target = paths.disagreement
        else:
            continue
        _write_atomic(target, content)
    _write_atomic(paths.segmentation, segmentation)


def _write_atomic(path: Path, content: bytes) -> None:
    with atomic_path(path, expected_bytes=len(content)) as tmp:
        tmp.write_bytes(content)
