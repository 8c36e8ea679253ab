"""One log line per request: method, path, model, upload size, status and seconds."""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger("autounet.serve.requests")


class AccessLog:
    """ASGI middleware writing one line per HTTP request to the ``autounet.serve.requests`` logger.

    Parameters
    ----------
    app : ASGI application
        The wrapped application.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_and_record(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            params = scope.get("path_params") or {}
            state = scope.get("state") or {}
            model = params.get("name") or state.get("model") or "-"
            size = state.get("upload_bytes")
            client = scope.get("client")
            logger.info(
                "%s %s model=%s bytes=%s status=%d seconds=%.3f client=%s",
                scope.get("method"), scope.get("path"), model, size if size is not None else "-", status["code"],
                time.perf_counter() - started, client[0] if client else "-",
            )
