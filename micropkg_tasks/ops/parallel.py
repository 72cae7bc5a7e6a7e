"""Run independent work items in parallel processes, one per core by default.

Rewriting imports is CPU-bound Python, so threads would not help; processes
do. Expected failures come back per item instead of stopping the batch.
Workers die with the process that started them, even when it is killed with
SIGKILL and gets no chance to stop them: an orphaned worker would otherwise
wait forever for work, and could hold a project's lock.

Workers ignore SIGINT, SIGTERM and SIGHUP (Ctrl-C reaches the whole process
group): the process that started them decides. When it is interrupted, the
items already running are finished (each is one project's transaction, never
left half-done), no other item starts, and ``InterruptedBatch`` says which is
which.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

from micropkg_tasks.core.change.interrupts import COMPLETED, NOT_STARTED, STOP_SIGNALS, Interrupted, signal_name_of
from micropkg_tasks.core.change.transaction import add_to_log, log_mark, log_since, outcome_since
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


# How long an interrupted run waits for the items already running in its workers.
STOP_WAIT_SECONDS = 60.0


class NotStarted:
    """Stands, in ``InterruptedBatch.results``, for an item the run stopped before starting."""

    def __repr__(self) -> str:
        return "NotStarted()"


class Unfinished:
    """Stands for an item still running when the run stopped waiting for it."""

    def __repr__(self) -> str:
        return "Unfinished()"


class InterruptedBatch(Interrupted):
    """A stop signal ended a ``map``: ``results`` holds, per item, its result, its error, the
    ``KeyboardInterrupt`` that stopped it (run in this process), ``NotStarted`` or ``Unfinished``."""

    def __init__(self, signal_name: str, results: Sequence[Any]) -> None:
        super().__init__(signal_name)
        self.results = list(results)


def how_left(result: Any, root: Path, mark: int) -> str:
    """How an interrupted batch left the project of one item, from its slot in
    ``InterruptedBatch.results`` (``mark``: ``log_mark()`` taken before the batch)."""
    if isinstance(result, NotStarted):
        return NOT_STARTED
    if isinstance(result, Unfinished):  # it dies with this process, mid-way: the journal is left
        return "still being written when micropkg stopped: run `micropkg recover`"
    if isinstance(result, KeyboardInterrupt):  # it ran in this process: its transactions say
        return outcome_since(mark, root)
    if isinstance(result, MicropkgError):
        return f"{COMPLETED} (failed: {result})"
    return COMPLETED


_stop: Any = None  # in a worker: the pool's "start nothing more" event


def _start_worker(parent: int, preload: tuple[str, ...], stop: Any) -> None:
    global _stop
    die_with_parent(parent)
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    _stop = stop
    for module in preload:
        importlib.import_module(module)


@dataclass(frozen=True)
class _Ran:
    """What a worker sends back: the item's result or expected error, and what its transactions did."""

    value: Any
    log: list[tuple[Path, str]]


def _unless_stopped(function: Callable[[T], R], item: T) -> _Ran | NotStarted:
    if _stop is not None and _stop.is_set():
        return NotStarted()
    mark = log_mark()
    try:
        return _Ran(function(item), log_since(mark))
    except MicropkgError as exc:
        return _Ran(exc, log_since(mark))


def _received(result: Any) -> Any:
    """A worker's result, its transactions added to this process's log (so an interrupted run
    can tell which projects its workers completed)."""
    if isinstance(result, _Ran):
        add_to_log(result.log)
        return result.value
    return result


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
        self._drained = False  # interrupted, and no item is running any more
        if self.workers > 1:
            self._stop = multiprocessing.Event()
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, initializer=_start_worker,
                initargs=(os.getpid(), tuple(preload), self._stop),
            )
            self._pool.submit(_nothing)  # the workers start now, not at the first real task

    def map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R | MicropkgError]:
        """``function(item)`` for each item, in order; a ``MicropkgError`` is returned in its slot.

        Interrupted, it raises ``InterruptedBatch`` once no item is running any more.
        """
        results: list[Any] = []
        if self._pool is None or len(items) <= 1:
            for item in items:
                try:
                    results.append(function(item))
                except MicropkgError as exc:
                    results.append(exc)
                except KeyboardInterrupt as exc:
                    rest = [NotStarted() for _ in items[len(results) + 1:]]
                    raise InterruptedBatch(signal_name_of(exc), [*results, exc, *rest]) from None
            return results
        futures = []
        try:
            futures = [self._pool.submit(_unless_stopped, function, item) for item in items]
            for future in futures:
                try:
                    results.append(_received(future.result()))
                except MicropkgError as exc:
                    results.append(exc)
        except KeyboardInterrupt as exc:
            raise InterruptedBatch(signal_name_of(exc), self._stop_and_collect(futures, len(items))) from None
        return results

    def _stop_and_collect(self, futures: list[Any], count: int) -> list[Any]:
        """Start nothing more, wait (bounded) for the items running, and say how each item ended."""
        self._stop.set()
        for future in futures:
            future.cancel()
        self._drained = not wait_for(futures, timeout=STOP_WAIT_SECONDS).not_done
        results: list[Any] = []
        for future in futures:
            if future.cancelled():
                results.append(NotStarted())
            elif not future.done():
                results.append(Unfinished())
            elif future.exception() is not None:
                results.append(future.exception())
            else:
                results.append(_received(future.result()))
        return results + [NotStarted() for _ in range(count - len(results))]

    def close(self, *, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)
            self._pool = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        # After a failure, do not wait for workers still loading modules: they exit on their own.
        # Once interrupted and drained, wait: they are idle, and leaving the pool's thread running
        # makes Python's own clean-up at exit fail on its closed pipe.
        self.close(wait=kind is None or self._drained)


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
