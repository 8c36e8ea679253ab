"""``serve``: check the settings, load the models, then run the application on uvicorn until stopped."""

from __future__ import annotations

import logging
import shutil
import signal
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import torch
import uvicorn

from autounet.serve.app import create_app
from autounet.serve.models import load_models
from autounet.serve.settings import ServeSettings, check_bind_safety
from autounet.typing import PathType

logger = logging.getLogger("autounet.serve")


def serve(models: Sequence[PathType], settings: ServeSettings) -> None:
    """Serve ``models`` over HTTP until the process is stopped (Ctrl-C or SIGTERM end it cleanly).

    Parameters
    ----------
    models : sequence of str or Path
        Model folders, packages (``.zip``) or folders of them.
    settings : ServeSettings
        Address, API key and limits.

    Raises
    ------
    ServeConfigError
        Before anything is loaded, for a non-loopback address without an API key.
    PackageError, PlansError, CheckpointError, MissingStageError
        If a model cannot be loaded (the server does not start half-equipped).
    """
    check_bind_safety(settings.host, settings.api_key)
    torch.set_num_threads(settings.threads_per_case)  # the cores shared evenly by the cases that run at once
    if settings.work_dir is not None:
        Path(settings.work_dir).mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="autounet-serve-", dir=settings.work_dir))  # mode 0700
    try:
        loaded = load_models(models, work_dir, settings.device)
        app = create_app(loaded, settings, work_dir)
        logger.info(
            "serving %d model(s) (%s) on http://%s:%d with %d case(s) at once x %d thread(s), queue %d, uploads up to "
            "%.0f MB, %s", len(loaded), ", ".join(loaded), settings.host, settings.port, settings.max_concurrent,
            settings.threads_per_case, settings.max_queue, settings.max_upload_mb,
            "API key required" if settings.api_key else "no API key (loopback only)",
        )
        config = uvicorn.Config(app, host=settings.host, port=settings.port, access_log=False, log_config=None,
                                lifespan="on", timeout_graceful_shutdown=30, server_header=False)
        _run_until_stopped(uvicorn.Server(config))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


class _Stopped(Exception):
    """SIGTERM after uvicorn's graceful shutdown (uvicorn re-raises the signal it caught)."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped()


def _run_until_stopped(server: uvicorn.Server) -> None:
    """Run uvicorn; after its graceful shutdown on Ctrl-C or SIGTERM return normally, so the private folder is removed
    and the process exits with 0 (systemd's ``stop`` and ``docker stop`` send SIGTERM)."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_stopped) if in_main_thread else None
    try:
        server.run()
    except (_Stopped, KeyboardInterrupt):
        logger.info("stopped")
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
