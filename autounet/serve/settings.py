"""Settings of the prediction server, and the rules that make it safe by default (no open port without a key)."""

from __future__ import annotations

import ipaddress
import logging
import math
import stat
from dataclasses import dataclass
from pathlib import Path

from autounet.errors import AutounetError
from autounet.parallel import default_workers
from autounet.typing import PathType

logger = logging.getLogger(__name__)

#: Shortest API key accepted: 16 characters of a random token are out of reach of guessing over HTTP.
MIN_API_KEY_LENGTH = 16
#: Default bound on the voxels (times channels) of an uploaded image: 512 x 512 x 1024, a large CT.
DEFAULT_MAX_VOXELS = 512 * 512 * 1024
#: Default cases running at once: one per core up to this many (each case holds its own arrays in memory).
MAX_DEFAULT_CONCURRENT = 4
KEY_HINT = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))" > api.key; chmod 600 api.key'


class ServeConfigError(AutounetError, ValueError):
    """The server cannot start with these settings (an open port without a key, an unreadable key, a bad limit)."""


def default_max_concurrent() -> int:
    """Cases run at once by default: one per usable core, at most :data:`MAX_DEFAULT_CONCURRENT`."""
    return max(1, min(default_workers(), MAX_DEFAULT_CONCURRENT))


@dataclass(frozen=True)
class ServeSettings:
    """What ``autounet serve`` was asked to do.

    Parameters
    ----------
    host, port : str, int
        Address to bind. Anything but a loopback address needs ``api_key``.
    api_key : str or None
        With a key, every ``/v1`` call needs ``Authorization: Bearer <key>``.
    max_concurrent : int
        Cases predicted at once; torch's threads are split evenly between them.
    max_queue : int
        Requests (and jobs) waiting for a free slot; beyond, 503 with ``Retry-After``.
    max_upload_mb : float
        Largest request body, enforced while it streams in.
    max_voxels : int
        Largest image (voxels times channels), checked on the file header before any voxel is read.
    job_ttl_seconds : float
        A finished job's result is kept this long, then removed.
    max_jobs : int
        Jobs kept at once (queued, running and finished within their TTL).
    threads : int
        Torch threads per running case; 0: the cores shared evenly by ``max_concurrent`` cases. Floating-point sums
        depend on the thread count, so a label map equals ``autounet predict``'s run with the same number of threads
        (a few voxels at class ties may differ otherwise).
    device : str
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    work_dir : Path or None
        Where the private temporary folder is created (default: the system's temporary folder).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_concurrent: int = 0
    max_queue: int = 16
    max_upload_mb: float = 1024.0
    max_voxels: int = DEFAULT_MAX_VOXELS
    job_ttl_seconds: float = 3600.0
    max_jobs: int = 1000
    threads: int = 0
    device: str = "auto"
    work_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.max_concurrent == 0:
            object.__setattr__(self, "max_concurrent", default_max_concurrent())
        checks = [
            (self.max_concurrent >= 1, f"--max-concurrent must be at least 1, got {self.max_concurrent}"),
            (self.max_queue >= 0, f"--max-queue must be 0 or more, got {self.max_queue}"),
            (self.max_upload_mb > 0, f"--max-upload-mb must be positive, got {self.max_upload_mb}"),
            (self.max_voxels > 0, f"--max-voxels must be positive, got {self.max_voxels}"),
            (self.job_ttl_seconds > 0, f"--job-ttl must be positive, got {self.job_ttl_seconds}"),
            (self.threads >= 0, f"--threads must be 0 (automatic) or more, got {self.threads}"),
            (self.max_jobs >= 1, f"--max-jobs must be at least 1, got {self.max_jobs}"),
            (0 < self.port < 65536 or self.port == 0, f"--port must be 1..65535, got {self.port}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ServeConfigError(message)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def threads_per_case(self) -> int:
        """Torch threads per running case: ``threads``, else the cores shared evenly (at least one)."""
        return self.threads or max(1, default_workers() // self.max_concurrent)


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine.

    Parameters
    ----------
    host : str
        An IP address or host name.

    Examples
    --------
    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to any interface


def check_bind_safety(host: str, api_key: str | None) -> None:
    """Refuse to listen on a non-loopback address without an API key.

    Parameters
    ----------
    host : str
        The address to bind.
    api_key : str or None
        The key, if any.

    Raises
    ------
    ServeConfigError
        Naming the address and how to give a key.
    """
    if api_key is None and not is_loopback(host):
        raise ServeConfigError(
            f"refusing to listen on {host} without an API key: anyone who can reach this address could use the "
            f"server. Pass --api-key-file FILE ({KEY_HINT}), or bind to 127.0.0.1 behind a reverse proxy"
        )


def read_api_key(path: PathType) -> str:
    """The API key stored in ``path`` (surrounding whitespace removed).

    Parameters
    ----------
    path : str or Path
        A file holding only the key. A warning is logged when others than its owner may read it.

    Raises
    ------
    ServeConfigError
        If the file is missing, empty or the key is shorter than :data:`MIN_API_KEY_LENGTH` characters.
    """
    path = Path(path)
    if not path.is_file():
        raise ServeConfigError(f"{path}: API key file not found; {KEY_HINT}")
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_API_KEY_LENGTH or any(ch.isspace() for ch in key):
        raise ServeConfigError(
            f"{path}: the API key must be one word of at least {MIN_API_KEY_LENGTH} characters (found "
            f"{len(key)}); {KEY_HINT}"
        )
    if path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        logger.warning("%s: the API key file is readable by other users; restrict it with chmod 600 %s", path, path)
    return key


def retry_after_seconds(recent_case_seconds: float, waiting: int, running_slots: int) -> int:
    """A ``Retry-After`` estimate: the time the waiting cases need on the running slots, 1..120 s.

    Parameters
    ----------
    recent_case_seconds : float
        Recent mean time of one case (0 when unknown).
    waiting : int
        Requests waiting.
    running_slots : int
        Cases run at once.

    Examples
    --------
    >>> retry_after_seconds(2.0, 8, 2), retry_after_seconds(0.0, 8, 2), retry_after_seconds(600.0, 50, 1)
    (9, 1, 120)
    """
    estimate = recent_case_seconds * (waiting + 1) / max(running_slots, 1)
    return int(min(120, max(1, math.ceil(estimate))))
