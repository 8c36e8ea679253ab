"""Errors of the prediction server as JSON: ``{"error": {"code": ..., "message": ...}}`` with a fitting status.

Every error a client can cause is a 4xx with a message naming the problem and the fix; an unexpected failure is a
500 with an id to find its traceback in the server log. Either way the server keeps serving.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from autounet.errors import AutounetError, DiskFullError, ImageReadError
from autounet.safe_names import UnsafeNameError

logger = logging.getLogger("autounet.serve")


class ServeError(AutounetError):
    """An error answered to the client.

    Parameters
    ----------
    status : int
        HTTP status.
    code : str
        Short machine-readable reason (``"not_an_image"``, ``"queue_full"``, ...).
    message : str
        What is wrong and what to do.
    headers : dict, optional
        Extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON body every error has.

    Parameters
    ----------
    status, code, message, headers
        As in :class:`ServeError`.
    """
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def as_serve_error(err: BaseException) -> ServeError:
    """The client-facing form of an exception raised while reading or predicting an uploaded case.

    Parameters
    ----------
    err : BaseException
        What was raised.
    """
    if isinstance(err, ServeError):
        return err
    if isinstance(err, DiskFullError):
        return ServeError(507, "disk_full", "the server's disk is full; try again later (and tell its administrator)")
    if isinstance(err, MemoryError):
        return ServeError(503, "out_of_memory", "the server ran out of memory on this image; send a smaller image or "
                          "try again when it is less busy")
    if isinstance(err, ImageReadError):
        return ServeError(422, "unreadable_image", str(err))
    if isinstance(err, (UnsafeNameError, AutounetError, ValueError)):
        return ServeError(422, "invalid_image", str(err))
    incident = secrets.token_hex(4)
    logger.error("internal error %s", incident, exc_info=err)
    return ServeError(500, "internal_error", f"internal error {incident}; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Answer :class:`ServeError`, routing errors and request validation errors in the one JSON shape.

    Parameters
    ----------
    app : FastAPI
        The application.
    """

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, err: ServeError) -> JSONResponse:
        return error_response(err.status, err.code, err.message, err.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        message = str(err.detail) if err.detail else code
        if err.status_code == 404:
            message = f"no such endpoint {request.url.path}; see /docs for the API"
        return error_response(err.status_code, code, message, getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in err.errors())
        return error_response(422, "invalid_request", problems or "invalid request")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        serve_error = as_serve_error(err)
        return error_response(serve_error.status, serve_error.code, serve_error.message, serve_error.headers)
