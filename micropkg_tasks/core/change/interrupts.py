"""SIGINT, SIGTERM and SIGHUP all mean "stop": each becomes ``Interrupted`` (a ``KeyboardInterrupt``).

CI cancellation, ``timeout`` and ``docker stop`` send SIGTERM; a closed
terminal sends SIGHUP. Python only turns SIGINT into an exception, and by
default dies on the other two without running any rollback.

Where a run must not stop half-way (applying a transaction, rolling it back,
removing backups), the signals are *held*: the handler only notes the signal,
and the work stops at the next point where stopping is safe
(``raise_if_pending``) or at the end of the held block. Once a run is stopping,
further stop signals are ignored, so a second Ctrl-C cannot cut a rollback
short (``kill -9`` still can; the journal covers that).

Signal handlers can only be installed from the main thread; elsewhere these
helpers do nothing (the journal still makes the project recoverable).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

# How an interrupted run left each target or project.
COMPLETED = "completed"  # its changes were all made (committed) before the run stopped
ROLLED_BACK = "rolled back"  # it was being changed; what was written was undone
NOT_STARTED = "not started"  # nothing was written to it


class Interrupted(KeyboardInterrupt):
    """A stop signal ended the run.

    ``outcomes`` holds ``(target or project, how it was left)`` pairs, filled in by the
    operation that knows its targets; the interface prints one line for each.
    """

    def __init__(self, signal_name: str = "SIGINT", outcomes: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(signal_name, tuple(outcomes))
        self.signal_name = signal_name
        self.outcomes = tuple(outcomes)

    def __str__(self) -> str:
        return f"interrupted by {self.signal_name}"


def signal_name_of(exc: BaseException) -> str:
    """Which signal stopped the run (a bare ``KeyboardInterrupt`` is Python's own SIGINT)."""
    return exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"


class _State:
    installed = 0  # nesting depth of stop_signals_interrupt (main thread only)
    held = 0  # nesting depth of interrupts_deferred
    pending: str | None = None  # a signal that arrived while held
    stopping = False  # Interrupted was raised once: the run is on its way out


def _name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _on_signal(number: int, frame: Any) -> None:
    if _State.stopping:
        return  # already stopping: let the clean-up finish
    if _State.held:
        _State.pending = _State.pending or _name(number)
        return
    _State.stopping = True
    raise Interrupted(_name(number))


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise ``Interrupted``.

    A signal that is ignored when the block starts (``nohup``, a background job) stays ignored.
    """
    if not _in_main_thread():
        yield
        return
    if _State.installed:  # already installed by an outer block, which puts them back
        _State.installed += 1
        try:
            yield
        finally:
            _State.installed -= 1
        return
    previous = {}
    _State.installed, _State.held, _State.pending, _State.stopping = 1, 0, None, False
    try:
        for number in STOP_SIGNALS:
            if signal.getsignal(number) is not signal.SIG_IGN:
                previous[number] = signal.signal(number, _on_signal)
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _State.installed, _State.held, _State.pending, _State.stopping = 0, 0, None, False


def raise_if_pending() -> None:
    """Raise ``Interrupted`` now if a stop signal arrived while held: a point where stopping is safe."""
    if _State.pending and not _State.stopping:
        name, _State.pending = _State.pending, None
        _State.stopping = True
        raise Interrupted(name)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP during the block; act on one at ``raise_if_pending`` or
    at the end of the block (when it ends without another exception)."""
    if not _in_main_thread():
        yield
        return
    with stop_signals_interrupt():
        # A signal before this line raises before anything in the block began; one after it is held.
        _State.held += 1
        try:
            yield
        finally:
            _State.held -= 1
        if not _State.held:
            raise_if_pending()


def interrupted(exc: BaseException, outcomes: Any) -> Interrupted:
    """``exc`` (an ``Interrupted`` or Python's own ``KeyboardInterrupt``) with how each target was left."""
    return Interrupted(signal_name_of(exc), tuple(outcomes))
