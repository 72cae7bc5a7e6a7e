"""How results and errors reach people and machines.

Results go to stdout (as lines, or as JSON with ``--json``); warnings and
errors go to stderr. Expected failures print one clear sentence and exit with
their code; anything unexpected is summarised in one line unless ``--debug``
asks for the traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import json
import logging
import os
import shutil
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from invoke.exceptions import Exit

from micropkg_tasks.core.change.interrupts import Interrupted, signal_name_of, stop_signals_interrupt
from micropkg_tasks.core.errors import MicropkgError, exit_code_for_signal
from micropkg_tasks.core.redaction import redact_text

F = TypeVar("F", bound=Callable[..., Any])


def debug_enabled() -> bool:
    """``--debug`` (invoke's core flag) turns on DEBUG logging; ``MICROPKG_DEBUG=1`` works too."""
    return os.environ.get("MICROPKG_DEBUG", "") not in ("", "0") or logging.getLogger("invoke").isEnabledFor(
        logging.DEBUG
    )


class _Verbosity:
    """Set once per task from ``--quiet`` / ``--verbose``."""

    quiet = False
    verbose = False


def configure(*, quiet: bool = False, verbose: bool = False) -> None:
    _Verbosity.quiet, _Verbosity.verbose = bool(quiet), bool(verbose) and not quiet


def is_verbose() -> bool:
    return _Verbosity.verbose


def err(message: str) -> None:
    print(redact_text(message), file=sys.stderr, flush=True)


def out(message: str = "") -> None:
    """A result line on stdout; ``--quiet`` keeps only errors and warnings."""
    if not _Verbosity.quiet:
        print(redact_text(message), flush=True)


class RedactingFilter(logging.Filter):
    """Passes every log record through the one redaction, traceback included, so ``--debug``
    shows what libraries log (fsspec's URLs, request headers) without their secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string: show it unformatted rather than fail
            message = str(record.msg)
        record.msg, record.args = redact_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


_REDACTING_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Put the redacting filter on the root logger's handlers, where ``--debug`` sends every
    library's records (fsspec, aiohttp, botocore propagate to it)."""
    for handler in logging.getLogger().handlers:
        if _REDACTING_FILTER not in handler.filters:
            handler.addFilter(_REDACTING_FILTER)


def live_output() -> bool:
    """A live, redrawn progress line only on a terminal and never under CI."""
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true", "yes")


class Progress:
    """Progress for long batches: one redrawn line on a terminal, plain lines when piped or
    under ``CI=true``, nothing with ``--quiet`` (or with ``--json``, whose stdout is data).

    Long steps that run side by side (compiles) ``begin`` and ``end``: on a terminal each
    running one has its own live line with its elapsed time, redrawn every second; when
    piped, a line says when each starts and, every ``still_every`` seconds, that it still runs.
    """

    still_every = 30.0

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled and not _Verbosity.quiet
        self.live = live_output()
        self.count = 0
        self._message = ""
        self._active: dict[str, float] = {}  # label -> monotonic start
        self._said_still: dict[str, float] = {}
        self._drawn = 0  # lines of the live block now on screen
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self.count += 1
            line = f"[{self.count}] {message}"
            if self.live:
                self._message = line
                self._draw()
            else:
                err(line)

    def begin(self, label: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._active[label] = time.monotonic()
            if not self.live:
                self.count += 1
                err(f"[{self.count}] {label}")
            else:
                self._draw()
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, name="micropkg-progress", daemon=True)
                self._ticker.start()

    def end(self, label: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._active.pop(label, None)
            self._said_still.pop(label, None)
            if self.live:
                self._draw()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if self.live:
                    self._draw()
                    continue
                now = time.monotonic()
                for label, started in self._active.items():
                    if now - self._said_still.get(label, started) >= self.still_every:
                        self._said_still[label] = now
                        err(f"    still {label} ({now - started:.0f} s)")

    def _draw(self) -> None:
        """Redraw the live block: the last message, then one line per running step with its elapsed time."""
        width = shutil.get_terminal_size((80, 20)).columns - 1
        now = time.monotonic()
        lines = [self._message] if self._message else []
        lines += [f"  {label} ({now - started:.0f} s)" for label, started in self._active.items()]
        self._erase()
        sys.stderr.write("\n".join(redact_text(line)[:width] for line in lines))
        sys.stderr.flush()
        self._drawn = len(lines)

    def _erase(self) -> None:
        if self._drawn > 1:
            sys.stderr.write("\r" + "\x1b[1A" * (self._drawn - 1) + "\x1b[J")
        else:
            sys.stderr.write("\r\x1b[K")
        self._drawn = 0

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        if self.enabled and self.live:
            with self._lock:
                if self._drawn or self.count:
                    self._erase()
                    sys.stderr.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Clear the live block even when the batch fails, so the error is printed on a clean line.
        self.close()


def warn(message: str) -> None:
    err(f"warning: {message}")


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in ("unchanged", "ok", "clean", "exit_code"):
            attribute = getattr(type(value), name, None)
            if isinstance(attribute, property):
                data[name] = getattr(value, name)
        return data
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(value: Any) -> None:
    out(json.dumps(to_jsonable(value), indent=2, sort_keys=True))


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run a task with the cyclic garbage collector looking less often, and never at the
    objects that exist before it starts (the modules loaded so far).

    Parsing builds hundreds of thousands of short-lived syntax-tree nodes, and each
    collection walks every live object: with the default thresholds a package or pull
    spends about a sixth of its time collecting, and finds nothing. The settings are put
    back afterwards; worker processes forked meanwhile inherit them.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def report_interrupted(exc: KeyboardInterrupt, mark: int) -> None:
    """After SIGINT, SIGTERM or SIGHUP: which signal, then one line per target or project saying
    whether it was completed, rolled back or not started.

    The operation names its targets; a signal that arrives outside one (say, once it has
    returned and its report is printed) names the projects changed since ``mark``.
    """
    from micropkg_tasks.core.change.transaction import outcomes_since

    outcomes = exc.outcomes if isinstance(exc, Interrupted) and exc.outcomes else outcomes_since(mark)
    err(f"interrupted by {signal_name_of(exc)}" + (":" if outcomes else ""))
    for what, how in outcomes:
        shown = shown_path(what)
        err(f"  {what if shown == '.' else shown}: {how}")


def reports_errors(task_body: F) -> F:
    """Turn expected failures into one clear line and an exit code, with no traceback."""

    @functools.wraps(task_body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from micropkg_tasks.core.change.transaction import log_mark

        configure(quiet=kwargs.get("quiet", False), verbose=kwargs.get("verbose", False))
        install_log_redaction()
        mark = log_mark()
        try:
            with stop_signals_interrupt(), fewer_collections():  # SIGTERM and SIGHUP stop a run as cleanly as Ctrl-C
                return task_body(*args, **kwargs)
        except MicropkgError as exc:
            if debug_enabled():
                logging.getLogger("micropkg_tasks").debug("failure", exc_info=True)
            err(f"error: {exc.message}")
            for line in exc.details:
                err(f"  {line}")
            raise Exit(code=exc.exit_code) from None
        except KeyboardInterrupt as exc:
            report_interrupted(exc, mark)
            raise Exit(code=exit_code_for_signal(signal_name_of(exc))) from None
        except Exit:
            raise
        except BrokenPipeError:
            # The reader went away (``micropkg status | head``): stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise Exit(code=0) from None
        except Exception as exc:
            if debug_enabled():
                err(traceback.format_exc().rstrip())  # through err(), so the traceback is redacted too
                raise Exit(code=1) from None
            err(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
            raise Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


def shown_path(path: str) -> str:
    """Paths below the current folder are shown relative to it, as users typed them."""
    candidate = Path(path)
    if not candidate.is_absolute():
        return path
    try:
        return candidate.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path
