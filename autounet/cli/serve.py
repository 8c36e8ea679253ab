"""``autounet serve MODELS``: a resident prediction server (HTTP API, jobs, web page) for trained models."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from autounet.cli.common import parse_duration


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve trained models over HTTP (API, jobs, web page)",
        description="Load every model under MODELS once, warm it up, and answer predictions over HTTP: GET /healthz, "
        "/readyz, /v1/models; POST /v1/models/NAME/predict (multipart field 'file'); jobs under /v1/jobs; a web page "
        "at / and the API reference at /docs. Needs: pip install autounet[serve]. See docs/serving.md.",
    )
    parser.add_argument("models", nargs="+", type=Path, metavar="MODELS",
                        help="model folder (RESULTS/<dataset>), package (.zip) or a folder of them")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --api-key-file)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--api-key-file", type=Path, default=None, help="file holding the API key clients must send as 'Authorization: Bearer KEY'")
    parser.add_argument("--max-concurrent", type=int, default=0, help="cases predicted at once (default: one per core, at most 4)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per case (default: cores / max-concurrent)")
    parser.add_argument("--max-queue", type=int, default=16, help="requests waiting beyond those; more get 503 + Retry-After (default 16)")
    parser.add_argument("--max-upload-mb", type=float, default=1024.0, help="largest upload in MB (default 1024)")
    parser.add_argument("--max-voxels", type=int, default=None, help="largest image in voxels x channels, checked on the header (default 512*512*1024)")
    parser.add_argument("--job-ttl", type=parse_duration, default=3600.0, help="keep job results this long, e.g. 30m (default 1h)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the private temporary folder goes (default: system temp)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autounet.serve.settings import DEFAULT_MAX_VOXELS, ServeSettings, check_bind_safety, read_api_key

    settings = ServeSettings(
        host=args.host, port=args.port, api_key=read_api_key(args.api_key_file) if args.api_key_file else None,
        max_concurrent=args.max_concurrent, threads=args.threads, max_queue=args.max_queue,
        max_upload_mb=args.max_upload_mb, max_voxels=args.max_voxels or DEFAULT_MAX_VOXELS,
        job_ttl_seconds=args.job_ttl, device=args.device, work_dir=args.work_dir,
    )
    check_bind_safety(settings.host, settings.api_key)  # before loading anything
    try:
        from autounet.serve.server import serve
    except ImportError as err:
        print(f"autounet serve: error: {err.name or err} is not installed; install the server extra: "
              'pip install "autounet[serve]"', file=sys.stderr)
        return 2
    _log_to_stderr("autounet.serve", "uvicorn")
    serve(args.models, settings)
    return 0


def _log_to_stderr(*names: str) -> None:
    """Timestamped INFO lines of the server (one per request) on stderr, where systemd and containers collect them."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        if not logger.handlers:
            logger.addHandler(handler)
        logger.propagate = False
