"""Run independent work items in parallel processes, one per core by default.

Rewriting imports is CPU-bound Python, so threads would not help; processes
do. Expected failures come back per item instead of stopping the batch.
Workers die with the process that started them, even when it is killed with
SIGKILL and gets no chance to stop them: an orphaned worker would otherwise
wait forever for work, and could hold a project's lock.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence, TypeVar

from micropkg_tasks.core.errors import MicropkgError

T = TypeVar("T")
R = TypeVar("R")


def worker_count(jobs: int | None, tasks: int) -> int:
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(jobs or available, tasks))


_PR_SET_PDEATHSIG = 1


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.2)


def die_with_parent(parent: int) -> None:
    """In a worker: be killed when ``parent`` dies (Linux asks the kernel; elsewhere a thread polls)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before we asked
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="micropkg-parent-watch").start()


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
    with ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(function, item) for item in items]
        for future in futures:
            try:
                results.append(future.result())
            except MicropkgError as exc:
                results.append(exc)
    return results
