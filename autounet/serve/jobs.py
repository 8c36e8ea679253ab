"""Jobs for large images: submitted, queued, run in the background, polled, fetched, removed after a time-to-live."""

from __future__ import annotations

import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from autounet.serve.cases import CaseResult
from autounet.serve.errors import ServeError

JobState = Literal["queued", "running", "done", "failed"]
#: Job ids are 22 URL-safe characters from :func:`secrets.token_urlsafe` (128 bits).
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


@dataclass
class Job:
    """One submitted case and what became of it."""

    id: str
    model: str
    folder: Path
    state: JobState = "queued"
    step: str = "queued"
    progress: float = 0.0
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: CaseResult | None = None
    error: dict[str, Any] | None = None
    expires: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The job as ``GET /v1/jobs/{id}`` shows it."""
        body: dict[str, Any] = {
            "id": self.id, "model": self.model, "state": self.state, "step": self.step,
            "progress": round(self.progress, 3), "created": _iso(self.created), "started": _iso(self.started),
            "finished": _iso(self.finished), "expires": _iso(self.expires),
        }
        if self.result is not None:
            body["result"] = {"url": f"/v1/jobs/{self.id}/result", "filename": self.result.filename,
                              "media_type": self.result.media_type, "timings": self.result.timings,
                              "preview": f"/v1/jobs/{self.id}/preview" if self.result.preview else None}
        if self.error is not None:
            body["error"] = self.error
        return body


class JobStore:
    """Jobs by id; a finished job and its folder are removed ``ttl_seconds`` after it finished.

    Parameters
    ----------
    ttl_seconds : float
        How long a finished job's result is kept.
    max_jobs : int
        Jobs held at once; beyond, new submissions get 503.
    """

    def __init__(self, ttl_seconds: float, max_jobs: int) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_jobs = max_jobs
        self._jobs: dict[str, Job] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def create(self, model: str, folder: Path) -> Job:
        """A new queued job whose files live in ``folder``.

        Parameters
        ----------
        model : str
            The model's name.
        folder : Path
            The job's private folder (removed with the job).
        """
        self.sweep()
        if len(self._jobs) >= self.max_jobs:
            raise ServeError(503, "too_many_jobs", f"{len(self._jobs)} jobs are held (the most this server keeps); fetch or "
                             "delete finished jobs, or retry later", headers={"Retry-After": "60"})
        job = Job(secrets.token_urlsafe(16), model, folder)
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job:
        """The job, or 404 for an unknown, expired or malformed id."""
        self.sweep()
        job = self._jobs.get(job_id) if _JOB_ID.match(job_id) else None
        if job is None:
            raise ServeError(404, "unknown_job", f"no job {job_id[:30]!r}: it never existed or its result was removed "
                             f"after {self.ttl_seconds:.0f} s; submit the image again")
        return job

    def finish(self, job: Job, state: JobState, result: CaseResult | None = None, error: dict[str, Any] | None = None) -> None:
        """Record the outcome and start the time-to-live."""
        job.state, job.result, job.error = state, result, error
        job.finished = time.time()
        job.expires = job.finished + self.ttl_seconds
        job.step = state
        if state == "done":
            job.progress = 1.0

    def remove(self, job_id: str) -> None:
        """Forget a job and remove its folder."""
        job = self._jobs.pop(job_id, None)
        if job is not None:
            shutil.rmtree(job.folder, ignore_errors=True)

    def sweep(self, now: float | None = None) -> int:
        """Remove every finished job past its time-to-live; return how many."""
        now = time.time() if now is None else now
        expired = [job.id for job in self._jobs.values() if job.expires is not None and job.expires <= now]
        for job_id in expired:
            self.remove(job_id)
        return len(expired)

    def clear(self) -> None:
        for job_id in list(self._jobs):
            self.remove(job_id)


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))
