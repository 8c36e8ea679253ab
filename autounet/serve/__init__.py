"""A resident prediction server: models loaded once, an HTTP API, jobs, a web page; see ``docs/serving.md``.

Needs the ``serve`` extra (``pip install autounet[serve]``: FastAPI, uvicorn, python-multipart, httpx). The entry
points live in their modules, so that checking the settings imports neither torch nor FastAPI:
:func:`autounet.serve.server.serve`, :func:`autounet.serve.app.create_app`, :func:`autounet.serve.models.load_models`
and :class:`autounet.serve.settings.ServeSettings`.
"""
