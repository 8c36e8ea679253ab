"""The FastAPI application: health and readiness probes, the ``/v1`` API, the web page at ``/`` and ``/docs``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from autounet import __version__
from autounet.serve.access_log import AccessLog
from autounet.serve.errors import install_error_handlers
from autounet.serve.models import ServedModel
from autounet.serve.routes import router
from autounet.serve.settings import ServeSettings
from autounet.serve.state import ServerState

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(models: dict[str, ServedModel], settings: ServeSettings, work_dir: Path) -> FastAPI:
    """The application serving ``models``; the models are warmed up when it starts.

    Parameters
    ----------
    models : dict of str to ServedModel
        Loaded models (:func:`~autounet.serve.models.load_models`).
    settings : ServeSettings
        Limits, API key and options.
    work_dir : Path
        The server's private temporary folder (mode 0700); requests and jobs get folders inside it.

    Returns
    -------
    FastAPI
        With the access log (one line per request: model, upload size, status, seconds).
    """
    server = ServerState(models, settings, work_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(
        title="autounet prediction server",
        version=__version__,
        description="Segment medical images with trained autounet models. Upload one case as multipart/form-data "
        "(field `file`); get the label map back in the input's format and geometry. See docs/serving.md.",
        lifespan=lifespan,
    )
    app.state.server = server
    app.state.api_key = settings.api_key
    install_error_handlers(app)
    app.add_middleware(AccessLog)
    app.include_router(router)

    @app.get("/healthz", summary="The process is alive", tags=["probes"])
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Every model is loaded and warmed up", tags=["probes"])
    async def readyz(request: Request) -> JSONResponse:
        state: ServerState = request.app.state.server
        ready = sum(model.ready for model in state.models.values())
        body = {
            "status": "ready" if state.ready else "warming_up",
            "models_ready": ready,
            "models": len(state.models),
            "queue": state.admission.status() if state.admission else None,
            "threads_per_case": settings.threads_per_case,
        }
        return JSONResponse(body, status_code=200 if state.ready else 503)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/ui/config", include_in_schema=False)
    async def public_settings() -> dict:
        """What the web page needs before it has a key: whether it must ask for one, and the upload limit."""
        return {"api_key_required": settings.api_key is not None, "max_upload_mb": settings.max_upload_mb,
                "version": __version__}

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app

