"""The ``/v1`` API: models, synchronous prediction, jobs and job previews (every call needs the API key if set)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from autounet.serve.auth import require_api_key
from autounet.serve.cases import OPTION_FIELDS, CaseResult, parse_options
from autounet.serve.decode import stored_with_extension
from autounet.serve.errors import ServeError
from autounet.serve.jobs import Job
from autounet.serve.limits import Ticket
from autounet.serve.models import ServedModel
from autounet.serve.preview import PREVIEW_IMAGE, PREVIEW_LABELS
from autounet.serve.state import ServerState, remove_folder
from autounet.serve.upload import Upload, receive_upload

#: Answers up to this size are sent from memory, so the request's folder is removed before the answer leaves (a
#: label map is a few MB even for a large CT); larger ones (probabilities of a large image) are streamed from disk.
IN_MEMORY_ANSWER_BYTES = 64 * 1024**2

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])

_OPTION_DOCS = {
    "folds": "folds to average, e.g. 0,1 (default: every loaded fold)",
    "mirroring": "test-time mirroring, true/false (default true)",
    "step_size": "tile step as a fraction of the patch, 0.1-1 (default 0.5)",
    "probabilities": "also return CASE.npz with the class probabilities (the answer becomes a zip)",
    "uncertainty": "also return entropy (and fold disagreement) maps (the answer becomes a zip)",
    "preview": "jobs only: keep small volumes for the web page's viewer",
}
#: The multipart body in the OpenAPI schema (the body is parsed by hand, to bound it while it streams).
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {"type": "array", "items": {"type": "string", "format": "binary"},
                         "description": "the image: one file holding every channel, or one file per channel in order"},
                **{name: {"type": "string", "description": text} for name, text in _OPTION_DOCS.items()},
            },
        }}},
    }
}


def _server(request: Request) -> ServerState:
    return request.app.state.server


@router.get("/models", summary="List the models")
async def list_models(request: Request) -> dict:
    return {"models": [model.info() for model in _server(request).models.values()]}


@router.get("/models/{name}", summary="Describe one model")
async def describe_model(name: str, request: Request) -> dict:
    server = _server(request)
    if name not in server.models:
        server.model(name)  # raises the 404 naming the models there are
    return server.models[name].info()


@router.post("/models/{name}/predict", summary="Segment one case; the answer is the label map", openapi_extra=UPLOAD_BODY,
             responses={200: {"content": {"application/octet-stream": {}}, "description": "the label map file"}})
async def predict(name: str, request: Request) -> Response:
    server = _server(request)
    request.state.model = name
    model = server.model(name)
    ticket = server.admit()
    folder = server.new_folder("requests")
    try:
        upload = await _receive(request, server, model, folder)
        result = await server.predict(ticket, model, upload.files, parse_options(upload.fields, model), folder)
    except BaseException:
        remove_folder(folder)
        raise
    finally:
        ticket.release()
    headers = _result_headers(model, result)
    if result.file.stat().st_size <= IN_MEMORY_ANSWER_BYTES:  # the usual case: the folder is gone before we answer
        content = result.file.read_bytes()
        remove_folder(folder)
        headers["Content-Disposition"] = _attachment(result.filename)
        return Response(content, media_type=result.media_type, headers=headers)
    return FileResponse(result.file, media_type=result.media_type, filename=result.filename, headers=headers,
                        background=BackgroundTask(remove_folder, folder))


@router.post("/models/{name}/jobs", status_code=202, summary="Submit one case as a background job",
             openapi_extra=UPLOAD_BODY)
async def submit_job(name: str, request: Request) -> JSONResponse:
    server = _server(request)
    request.state.model = name
    model = server.model(name)
    ticket: Ticket | None = server.admit()
    folder = server.new_folder("jobs")
    try:
        upload = await _receive(request, server, model, folder)
        options = parse_options(upload.fields, model)
        job = server.submit_job(ticket, model, upload.files, options, folder)  # type: ignore[arg-type]
        ticket = None  # released by the job when it ends
    except BaseException:
        remove_folder(folder)
        raise
    finally:
        if ticket is not None:
            ticket.release()
    return JSONResponse(job.to_dict(), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


@router.get("/jobs/{job_id}", summary="State and progress of a job")
async def job_status(job_id: str, request: Request) -> dict:
    return _server(request).jobs.get(job_id).to_dict()


@router.get("/jobs/{job_id}/result", summary="The label map of a finished job",
            responses={200: {"content": {"application/octet-stream": {}}, "description": "the label map file"}})
async def job_result(job_id: str, request: Request) -> Response:
    server = _server(request)
    job = server.jobs.get(job_id)
    request.state.model = job.model
    result = _finished(job)
    return FileResponse(result.file, media_type=result.media_type, filename=result.filename,
                        headers=_result_headers(server.models[job.model], result))


@router.get("/jobs/{job_id}/preview", summary="Shape, spacing and labels of a finished job's preview volumes")
async def job_preview(job_id: str, request: Request) -> dict:
    result = _finished(_server(request).jobs.get(job_id))
    if result.preview is None:
        raise ServeError(404, "no_preview", "this job was submitted without preview=true; submit it again with it")
    return {**result.preview, "image_url": f"/v1/jobs/{job_id}/preview/image",
            "labels_url": f"/v1/jobs/{job_id}/preview/labels"}


@router.get("/jobs/{job_id}/preview/{volume}", summary="A preview volume as raw uint8 bytes (C order, z, y, x)")
async def job_preview_volume(job_id: str, volume: str, request: Request) -> Response:
    job = _server(request).jobs.get(job_id)
    result = _finished(job)
    files = {"image": PREVIEW_IMAGE, "labels": PREVIEW_LABELS}
    if result.preview is None or volume not in files:
        raise ServeError(404, "no_preview", f"no preview volume {volume[:20]!r}; use image or labels of a job submitted "
                         "with preview=true")
    return FileResponse(job.folder / "preview" / files[volume], media_type="application/octet-stream")


@router.delete("/jobs/{job_id}", status_code=204, summary="Remove a finished job and its files now")
async def delete_job(job_id: str, request: Request) -> Response:
    server = _server(request)
    job = server.jobs.get(job_id)
    if job.state in ("queued", "running"):
        raise ServeError(409, "job_running", f"job {job_id} is {job.state}; delete it when it has finished")
    server.jobs.remove(job_id)
    return Response(status_code=204)


async def _receive(request: Request, server: ServerState, model: ServedModel, folder) -> Upload:
    settings = server.settings
    upload = await receive_upload(request, folder, settings.max_upload_bytes, max(16, len(model.input.channel_names)),
                                  OPTION_FIELDS)
    for uploaded in upload.files:
        await run_in_threadpool(stored_with_extension, uploaded)
    return upload


def _attachment(filename: str) -> str:
    """``Content-Disposition`` for a server-made file name (ASCII letters, digits and ``._-+=@,()[]``)."""
    return f'attachment; filename="{filename}"'


def _finished(job: Job) -> CaseResult:
    if job.state == "failed" and job.error is not None:
        raise ServeError(int(job.error["status"]), str(job.error["code"]), str(job.error["message"]))
    if job.state != "done" or job.result is None:
        raise ServeError(409, "job_not_finished", f"job {job.id} is {job.state} ({job.progress:.0%}); poll "
                         f"GET /v1/jobs/{job.id} until its state is done", headers={"Retry-After": "2"})
    return job.result


def _result_headers(model: ServedModel, result: CaseResult) -> dict[str, str]:
    """Timings (``Server-Timing`` and one ``X-Autounet-*-Seconds`` header per step) and the model's identity."""
    headers = {f"X-Autounet-{step.capitalize()}-Seconds": f"{seconds:.4f}" for step, seconds in result.timings.items()}
    headers["X-Autounet-Total-Seconds"] = f"{sum(result.timings.values()):.4f}"
    headers["Server-Timing"] = ", ".join(f"{step};dur={seconds * 1000:.1f}" for step, seconds in result.timings.items())
    headers["X-Autounet-Model"] = model.name
    headers["X-Autounet-Model-Checksum"] = f"sha256:{model.checksum}"
    return headers
