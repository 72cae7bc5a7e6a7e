"""Waiting for a child that runs in a session of its own, and stopping all of it.

A child started with ``start_new_session=True`` leads a process group: one ``killpg``
reaches it and everything it started (pip's build back-ends, git's ssh or credential
helper). pip-compile and git both run this way, so a timeout or Ctrl-C never leaves
part of them behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import AnyStr


def communicate_or_stop(
    process: subprocess.Popen[AnyStr], stdin: AnyStr | None, timeout: float
) -> tuple[AnyStr, AnyStr]:
    """``process``'s output once it ends. Past ``timeout`` seconds (``TimeoutExpired``), or on
    any other exception such as Ctrl-C, its whole group is killed first, then the error
    passes through."""
    try:
        return process.communicate(stdin, timeout=timeout)
    except BaseException:
        stop_group(process)
        raise


def stop_group(process: subprocess.Popen[AnyStr]) -> None:
    """Kill ``process`` and everything in its session, and reap it."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            process.kill()
    except OSError:
        pass  # the process group has already exited; there is nothing left to stop
    process.communicate()
