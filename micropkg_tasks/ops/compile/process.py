"""Running the compiler so that it never outlives micropkg.

The compiler runs in its own session, so a timeout or Ctrl-C can stop it and
everything it started (pip runs build back-ends in subprocesses) with one
``killpg``. A session of its own also means that a ``kill -9`` of micropkg
reaches nothing else, so the child watches its parent itself:

* on Linux, ``prctl(PR_SET_PDEATHSIG)`` makes the kernel send it SIGTERM the
  moment the thread that started it dies;
* everywhere, a daemon thread polls ``getppid()`` and sees the parent go;

and either way it kills its whole session with SIGKILL. uv is not Python, so
for uv the starter only sets the death signal (SIGKILL, where it exists) and
then ``exec``s uv.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Sequence

from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.ops.process_group import communicate_or_stop

# The first lines every compiler child runs, before pip-tools or uv: argv[1] is micropkg's pid,
# argv[2] "exec" (run argv[3:] as a program) or "piptools" (run pip-tools here with argv[3:]).
_STARTER = r"""
import os, signal, sys, threading, time
parent, how, rest = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
def stop(*_):
    if hasattr(os, "killpg"):
        os.killpg(0, signal.SIGKILL)
    os._exit(1)
def set_death_signal(number):
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, number, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
if how == "exec":
    set_death_signal(signal.SIGKILL)
    if os.getppid() != parent:
        stop()
    os.execv(rest[0], rest)
signal.signal(signal.SIGTERM, stop)
set_death_signal(signal.SIGTERM)
def watch():
    while os.getppid() == parent:
        time.sleep(0.25)
    stop()
threading.Thread(target=watch, daemon=True).start()
import runpy
sys.argv = ["pip-compile", *rest]
runpy.run_module("piptools", run_name="__main__", alter_sys=True)
"""


def tethered(command: Sequence[str], *, python_module: bool) -> list[str]:
    """``command`` started so that it dies with this process. ``python_module`` says that
    ``command`` is ``python -m piptools ...`` and runs pip-tools in the starter itself."""
    how, rest = ("piptools", list(command[3:])) if python_module else ("exec", list(command))
    if python_module:
        assert list(command[:3]) == [sys.executable, "-m", "piptools"], command
    return [sys.executable, "-c", _STARTER, str(os.getpid()), how, *rest]


def run_tethered(
    command: list[str], *, python_module: bool, cwd: os.PathLike[str] | str, env: dict[str, str], timeout: float,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to the end, tethered to this process. Past ``timeout`` seconds it is
    killed with everything it started, and :class:`subprocess.TimeoutExpired` is raised."""
    try:
        process = subprocess.Popen(
            tethered(command, python_module=python_module), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True,
        )
    except OSError as exc:
        raise MicropkgError(f"cannot start {command[0]}: {exc.strerror or exc}") from None
    stdout, stderr = communicate_or_stop(process, None, timeout)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
