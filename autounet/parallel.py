"""Run a function over many items in worker processes with a progress bar; results keep input order."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Sequence, TypeVar

from autounet.progress import progress_bar

T = TypeVar("T")
R = TypeVar("R")

#: Upper bound for the default worker count: image I/O stops scaling beyond this on typical disks.
MAX_DEFAULT_WORKERS = 8


def default_workers() -> int:
    """Usable CPU cores (respecting affinity masks), at most :data:`MAX_DEFAULT_WORKERS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


#: Below this much input data, worker start-up (about a second each with "spawn") costs more than it saves.
SMALL_INPUT_BYTES = 200 * 1024**2


def auto_workers(total_input_bytes: int, requested: int | None = None) -> int:
    """Workers to use: ``requested`` if given, else 1 for small inputs and :func:`default_workers` otherwise."""
    if requested is not None:
        return max(1, int(requested))
    return 1 if total_input_bytes < SMALL_INPUT_BYTES else default_workers()


def map_with_progress(
    function: Callable[[T], R],
    items: Sequence[T],
    workers: int | None = None,
    progress: bool = True,
    description: str = "",
) -> list[R]:
    """``[function(item) for item in items]``, spread over ``workers`` processes, with a progress bar (a line per
    stage in a log file: :mod:`autounet.progress`).

    ``function`` must be importable at module level (it is sent to spawned workers). With one worker, or
    one item, everything runs in this process, which keeps tracebacks simple and avoids start-up cost.
    Worker processes are started with "spawn" so the behaviour is the same on Linux, macOS and Windows
    and no threads of the parent are inherited.
    """
    workers = default_workers() if workers is None else max(1, int(workers))
    workers = min(workers, len(items)) if items else 1
    bar = progress_bar(len(items), description, enabled=progress)
    try:
        if workers == 1:
            results = []
            for item in items:
                results.append(function(item))
                bar.update()
            return results
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            results = []
            for result in pool.map(function, items, chunksize=max(1, len(items) // (workers * 8))):
                results.append(result)
                bar.update()
            return results
    finally:
        bar.close()
