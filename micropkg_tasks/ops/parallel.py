"""Run independent work items in parallel processes, one per core by default.

Rewriting imports is CPU-bound Python, so threads would not help; processes
do. Expected failures come back per item instead of stopping the batch.
Workers die with the process that started them, even when it is killed with
SIGKILL and gets no chance to stop them: an orphaned worker would otherwise
wait forever for work, and could hold a project's lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

from micropkg_tasks.core.errors import MicropkgError

T = TypeVar("T")
R = TypeVar("R")


def worker_count(jobs: int | None, tasks: int) -> int:
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(jobs or available, tasks))


_PR_SET_PDEATHSIG = 1


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _watch_parent(parent: int, first_parent: int) -> None:
    while True:
        if os.getppid() != first_parent or _gone(parent):
            os._exit(1)
        time.sleep(0.2)


def die_with_parent(parent: int) -> None:
    """In a worker: die when ``parent`` (the process that made the pool) dies, even by SIGKILL.

    Linux asks the kernel (``PR_SET_PDEATHSIG``, which fires when the worker's own parent
    goes: the pool's process, or a fork server that exits with it); everywhere a thread also
    polls, so a worker never outlives its pool's process by more than a moment.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    first_parent = os.getppid()
    if _gone(parent) or first_parent == 1:  # it died before we asked
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent, first_parent), daemon=True, name="micropkg-parent-watch"
    ).start()


def _start_worker(parent: int, preload: tuple[str, ...]) -> None:
    die_with_parent(parent)
    for module in preload:
        importlib.import_module(module)


def _nothing() -> None:
    return None


class WorkerPool:
    """Worker processes started before the work is ready.

    They load ``preload`` (module names, such as libcst, whose import costs more than
    a tenth of a second) while the caller is still reading and checking its inputs,
    instead of after. With one worker, or one task, there is no pool: ``map`` runs
    in this process.
    """

    def __init__(self, jobs: int | None, tasks: int, *, preload: Sequence[str] = ()) -> None:
        self.workers = worker_count(jobs, tasks)
        self._pool: ProcessPoolExecutor | None = None
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, initializer=_start_worker, initargs=(os.getpid(), tuple(preload))
            )
            self._pool.submit(_nothing)  # the workers start now, not at the first real task

    def map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R | MicropkgError]:
        """``function(item)`` for each item, in order; a ``MicropkgError`` is returned in its slot."""
        results: list[R | MicropkgError] = []
        if self._pool is None or len(items) <= 1:
            for item in items:
                try:
                    results.append(function(item))
                except MicropkgError as exc:
                    results.append(exc)
            return results
        futures = [self._pool.submit(function, item) for item in items]
        for future in futures:
            try:
                results.append(future.result())
            except MicropkgError as exc:
                results.append(exc)
        return results

    def close(self, *, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)
            self._pool = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        # After a failure, do not wait for workers still loading modules: they exit on their own.
        self.close(wait=kind is None)


def map_collecting_errors(
    function: Callable[[T], R], items: Sequence[T], *, jobs: int | None = None
) -> list[R | MicropkgError]:
    """``function(item)`` for each item, in order; a ``MicropkgError`` is returned in its slot."""
    with WorkerPool(jobs, len(items)) as pool:
        return pool.map(function, items)


@contextlib.contextmanager
def alongside(function: Callable[..., object], *args: object) -> Iterator[None]:
    """Run ``function(*args)`` in a thread while the block runs; wait for it at the end of the block.

    For two jobs that mostly wait on the disk: each runs while the other waits. An
    exception from ``function`` is raised after the block (one from the block wins).
    """
    failure: list[BaseException] = []

    def run() -> None:
        try:
            function(*args)
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name="micropkg-alongside", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
    if failure:
        raise failure[0]
