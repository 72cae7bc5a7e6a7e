"""SIGINT, SIGTERM and SIGHUP all mean "stop": each becomes ``KeyboardInterrupt``.

CI cancellation, ``timeout`` and ``docker stop`` send SIGTERM; a closed
terminal sends SIGHUP. Python only turns SIGINT into an exception, and by
default dies on the other two without running any rollback. Signal handlers
can only be installed from the main thread; elsewhere these helpers do nothing
(the journal still makes the project recoverable).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def _raise_interrupt(number: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` as SIGINT does."""
    if not _in_main_thread():
        yield
        return
    previous = {}
    for number in STOP_SIGNALS:
        if number == signal.SIGINT:
            continue  # Python already raises KeyboardInterrupt for it
        if signal.getsignal(number) is signal.SIG_IGN:
            continue  # nohup and friends asked to ignore it
        previous[number] = signal.signal(number, _raise_interrupt)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block is done, then raise ``KeyboardInterrupt``.

    Rolling back, or removing backups after the commit, must not stop half-way.
    """
    if not _in_main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for number in STOP_SIGNALS:
        if signal.getsignal(number) is signal.SIG_IGN:
            continue
        previous[number] = signal.signal(number, lambda n, frame: received.append(n))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if received:
        raise KeyboardInterrupt
