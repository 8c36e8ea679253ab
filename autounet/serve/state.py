"""What a running server holds: the models, the admission queue, the jobs, the worker threads, the private folder."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from autounet.serve.cases import CaseOptions, CaseResult, run_case
from autounet.serve.errors import ServeError, as_serve_error
from autounet.serve.jobs import Job, JobStore
from autounet.serve.limits import Admission, Ticket
from autounet.serve.models import ServedModel
from autounet.serve.settings import ServeSettings
from autounet.serve.upload import UploadedFile

logger = logging.getLogger("autounet.serve")
#: How often finished jobs past their time-to-live are removed (at most; shorter TTLs sweep more often).
SWEEP_SECONDS = 30.0


class ServerState:
    """Everything the routes share; :meth:`start` and :meth:`stop` run in the app's lifespan.

    Parameters
    ----------
    models : dict of str to ServedModel
        Loaded models (warmed up in :meth:`start`).
    settings : ServeSettings
        Limits and options.
    work_dir : Path
        The private folder (mode 0700) of this server process.
    """

    def __init__(self, models: dict[str, ServedModel], settings: ServeSettings, work_dir: Path) -> None:
        self.models = models
        self.settings = settings
        self.work_dir = work_dir
        self.jobs = JobStore(settings.job_ttl_seconds, settings.max_jobs)
        self.admission: Admission | None = None
        self.executor: ThreadPoolExecutor | None = None
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ lifespan
    async def start(self) -> None:
        """Create the queue and the worker threads, then warm the models up in the background."""
        self.admission = Admission(self.settings.max_concurrent, self.settings.max_queue)
        self.executor = ThreadPoolExecutor(max_workers=self.settings.max_concurrent, thread_name_prefix="autounet-case")
        for folder in ("requests", "jobs"):
            (self.work_dir / folder).mkdir(mode=0o700, exist_ok=True)
        self._spawn(self._warm_up())
        self._spawn(self._sweep_forever())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
        self.jobs.clear()

    @property
    def ready(self) -> bool:
        return all(model.ready for model in self.models.values())

    # ------------------------------------------------------------------ requests
    def model(self, name: str) -> ServedModel:
        """The model, 404 if unknown, 503 while it warms up."""
        model = self.models.get(name)
        if model is None:
            known = ", ".join(sorted(self.models)) or "(none)"
            raise ServeError(404, "unknown_model", f"no model {name[:60]!r} on this server; available: {known} "
                             "(GET /v1/models)")
        if not model.ready:
            raise ServeError(503, "warming_up", f"model {name!r} is still warming up; retry in a few seconds",
                             headers={"Retry-After": "5"})
        return model

    def admit(self) -> Ticket:
        assert self.admission is not None, "the server has not started"
        return self.admission.admit()

    def new_folder(self, kind: str) -> Path:
        """A new private folder for one request or job (mode 0700)."""
        return Path(tempfile.mkdtemp(prefix=f"{kind[:-1]}-", dir=self.work_dir / kind))

    async def predict(self, ticket: Ticket, model: ServedModel, uploads: list[UploadedFile], options: CaseOptions,
                      folder: Path, job: Job | None = None) -> CaseResult:
        """Wait for a slot, then run the case in a worker thread; errors become :class:`ServeError`."""
        async with ticket.slot():
            if job is not None:
                job.state, job.step, job.started = "running", "read", time.time()
            progress = None
            if job is not None:
                def progress(step: str, fraction: float) -> None:
                    job.step, job.progress = step, fraction
            loop = asyncio.get_running_loop()
            try:
                result = await loop.run_in_executor(
                    self.executor, run_case, model, uploads, options, folder, self.settings.max_voxels, progress)
            except BaseException as err:  # noqa: BLE001 - every failure becomes an answer; the server keeps serving
                if isinstance(err, asyncio.CancelledError):
                    raise
                serve_error = as_serve_error(err)
                serve_error.message = _without_paths(serve_error.message, folder, uploads)
                raise serve_error from None
        result.timings["queue"] = round(ticket.queued_seconds, 4)
        return result

    def submit_job(self, ticket: Ticket, model: ServedModel, uploads: list[UploadedFile], options: CaseOptions,
                   folder: Path) -> Job:
        """Register a job and run it in the background (the ticket is released when it ends)."""
        job = self.jobs.create(model.name, folder)
        self._spawn(self._run_job(job, ticket, model, uploads, options))
        return job

    async def _run_job(self, job: Job, ticket: Ticket, model: ServedModel, uploads: list[UploadedFile],
                       options: CaseOptions) -> None:
        try:
            result = await self.predict(ticket, model, uploads, options, job.folder, job)
            self.jobs.finish(job, "done", result)
        except ServeError as err:
            self.jobs.finish(job, "failed", error={"status": err.status, "code": err.code, "message": err.message})
        finally:
            ticket.release()
            for upload in uploads:  # the inputs are not needed any more; the result and preview stay for the TTL
                upload.path.unlink(missing_ok=True)
        logger.info("job %s (%s) %s in %.2f s", job.id, model.name, job.state, (job.finished or 0) - (job.started or job.created))

    # ------------------------------------------------------------------ background
    async def _warm_up(self) -> None:
        """Warm every model up once on each worker thread (each thread's first case allocates its own memory)."""
        loop = asyncio.get_running_loop()
        scratch = self.work_dir / "warmup"
        for model in self.models.values():
            try:
                runs = [loop.run_in_executor(self.executor, model.warm_up, scratch) for _ in range(self.settings.max_concurrent)]
                seconds = max(await asyncio.gather(*runs))
            except Exception:  # a model that cannot predict stays "not ready" and is reported
                logger.exception("model %s failed its warm-up prediction; it will not be served", model.name)
                continue
            model.ready = True
            logger.info("model %s warmed up in %.2f s", model.name, seconds)
        shutil.rmtree(scratch, ignore_errors=True)
        if self.ready:
            logger.info("ready: %d model(s) loaded and warmed up", len(self.models))

    async def _sweep_forever(self) -> None:
        interval = min(SWEEP_SECONDS, max(0.5, self.settings.job_ttl_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            removed = self.jobs.sweep()
            if removed:
                logger.info("removed %d job(s) past their time-to-live", removed)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def remove_folder(folder: Path) -> None:
    """Remove a request's private folder (after its response was sent)."""
    shutil.rmtree(folder, ignore_errors=True)


def _without_paths(message: str, folder: Path, uploads: list[UploadedFile]) -> str:
    """Replace the server's paths in a message by the names the client gave its files."""
    for upload in uploads:
        message = message.replace(str(upload.path), upload.label)
    return message.replace(str(folder), "(upload)")
