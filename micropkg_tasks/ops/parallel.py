"""Run independent work items in parallel processes, one per core by default.

Rewriting imports is CPU-bound Python, so threads would not help; processes
do. Expected failures come back per item instead of stopping the batch.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence, TypeVar

from micropkg_tasks.core.errors import MicropkgError

T = TypeVar("T")
R = TypeVar("R")


def worker_count(jobs: int | None, tasks: int) -> int:
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(jobs or available, tasks))


def map_collecting_errors(
    function: Callable[[T], R], items: Sequence[T], *, jobs: int | None = None
) -> list[R | MicropkgError]:
    """``function(item)`` for each item, in order; a ``MicropkgError`` is returned in its slot."""
    workers = worker_count(jobs, len(items))
    results: list[R | MicropkgError] = []
    if workers <= 1:
        for item in items:
            try:
                results.append(function(item))
            except MicropkgError as exc:
                results.append(exc)
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(function, item) for item in items]
        for future in futures:
            try:
                results.append(future.result())
            except MicropkgError as exc:
                results.append(exc)
    return results
