"""How many cases run at once and how many wait: beyond the queue a request is refused at once with 503."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from autounet.serve.errors import ServeError
from autounet.serve.settings import retry_after_seconds

#: Weight of the newest case in the running mean of case durations (for Retry-After).
_DURATION_SMOOTHING = 0.3


class Admission:
    """Admit at most ``max_running + max_waiting`` requests; run at most ``max_running`` of them at once.

    A request is admitted (or refused with 503 and ``Retry-After``) when it arrives, before its upload is read, and
    holds its place until its response is ready. Create it inside the event loop.

    Parameters
    ----------
    max_running : int
        Cases predicted at once.
    max_waiting : int
        Admitted requests beyond those (uploading or waiting for a slot).
    """

    def __init__(self, max_running: int, max_waiting: int) -> None:
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.admitted = 0
        self.running = 0
        self.mean_case_seconds = 0.0
        self._slots = asyncio.Semaphore(max_running)

    @property
    def waiting(self) -> int:
        return self.admitted - self.running

    def status(self) -> dict[str, float | int]:
        """Running and waiting counts and the recent mean case time, for ``/readyz``."""
        return {"running": self.running, "waiting": self.waiting, "max_running": self.max_running,
                "max_waiting": self.max_waiting, "mean_case_seconds": round(self.mean_case_seconds, 3)}

    def admit(self) -> "Ticket":
        """A place in the queue, or a 503 ``ServeError`` with ``Retry-After`` when the queue is full."""
        if self.admitted >= self.max_running + self.max_waiting:
            seconds = retry_after_seconds(self.mean_case_seconds, self.waiting, self.max_running)
            raise ServeError(
                503, "busy",
                f"the server is busy ({self.running} case(s) running, {self.waiting} waiting, the most it queues); "
                f"retry in about {seconds} s",
                headers={"Retry-After": str(seconds)},
            )
        self.admitted += 1
        return Ticket(self)


class Ticket:
    """An admitted request: ``async with ticket.slot():`` waits for a free slot; :meth:`release` gives the place up."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._released = False
        self.queued_seconds = 0.0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        admission = self._admission
        waited = time.perf_counter()
        async with admission._slots:
            self.queued_seconds = time.perf_counter() - waited
            admission.running += 1
            started = time.perf_counter()
            try:
                yield
            finally:
                admission.running -= 1
                elapsed = time.perf_counter() - started
                admission.mean_case_seconds = (
                    elapsed if admission.mean_case_seconds == 0
                    else (1 - _DURATION_SMOOTHING) * admission.mean_case_seconds + _DURATION_SMOOTHING * elapsed
                )

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._admission.admitted -= 1
