"""API-key check for every ``/v1`` call: ``Authorization: Bearer <key>``, compared in constant time."""

from __future__ import annotations

import hmac
import logging

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from autounet.serve.errors import ServeError

logger = logging.getLogger("autounet.serve")

#: Documents the scheme in the OpenAPI schema (/docs shows a lock); the check itself is :func:`require_api_key`.
bearer_scheme = HTTPBearer(auto_error=False, description="The server's API key (autounet serve --api-key-file)")


def keys_match(given: str, expected: str) -> bool:
    """Constant-time comparison of two keys (no timing hint of how many leading characters match).

    Parameters
    ----------
    given, expected : str
        The key sent and the server's key.

    Examples
    --------
    >>> keys_match("abc", "abc"), keys_match("abd", "abc")
    (True, False)
    """
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


async def require_api_key(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)
) -> None:
    """FastAPI dependency: pass when the server has no key or the request carries it; else 401.

    Parameters
    ----------
    request : Request
        The request (the server's key is in ``request.app.state.api_key``).
    credentials : HTTPAuthorizationCredentials or None
        The parsed ``Authorization`` header.
    """
    expected = request.app.state.api_key
    if expected is None:
        return
    challenge = {"WWW-Authenticate": 'Bearer realm="autounet"'}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ServeError(401, "unauthorized", "this server needs an API key: send the header 'Authorization: Bearer "
                         "<key>'", headers=challenge)
    if not keys_match(credentials.credentials, expected):
        logger.warning("rejected a wrong API key from %s", request.client.host if request.client else "?")
        raise ServeError(401, "unauthorized", "wrong API key", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
