"""A resident prediction server: models loaded once, an HTTP API, jobs, a web page; see ``docs/serving.md``.

Needs the ``serve`` extra (``pip install autounet[serve]``: FastAPI, uvicorn, python-multipart, httpx).
"""

from autounet.serve.app import create_app
from autounet.serve.models import ServedModel, discover_models, load_models
from autounet.serve.server import serve
from autounet.serve.settings import ServeConfigError, ServeSettings, check_bind_safety, read_api_key

__all__ = [
    "ServeConfigError",
    "ServeSettings",
    "ServedModel",
    "check_bind_safety",
    "create_app",
    "discover_models",
    "load_models",
    "read_api_key",
    "serve",
]
