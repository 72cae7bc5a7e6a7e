#!/usr/bin/env python3
"""Set up a development virtualenv and run the demo or the test suite.

    python3 dev.py demo    # package, pull and inspect a scratch copy of examples/monorepo
    python3 dev.py test    # run the whole test suite (extra arguments go to pytest)
    python3 dev.py lock    # refresh requirements/dev.txt, the pinned development versions

Only the standard library is used here, so this works on a fresh machine with
nothing but Python 3.11 and pip. The virtualenv lives in ``.venv/``. It is
installed with ``requirements/dev.txt`` as constraints, so every machine gets
the versions the suite was last green with, and it is reinstalled only when
``pyproject.toml`` or that file changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed-from"
PINS = ROOT / "requirements" / "dev.txt"
# The extras the development environment needs; the pins are compiled from these.
EXTRAS = ("test", "nox")


def venv_python() -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    return VENV / scripts / ("python.exe" if os.name == "nt" else "python")


def installed_from() -> str:
    """What the virtualenv was built from: a change to either file means reinstall."""
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", PINS):
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


def pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", *args], check=True)


def ensure_venv() -> Path:
    """Create ``.venv`` and install the project with its test extras, pinned by ``requirements/dev.txt``."""
    wanted = installed_from()
    python = venv_python()
    if python.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return python
    if not python.exists():
        print(f"dev.py: creating virtualenv in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    constraints = ["-c", str(PINS)] if PINS.exists() else []
    print(f"dev.py: installing micropkg-tasks with its test dependencies{' (pinned)' if constraints else ''}", flush=True)
    # pip and setuptools are pinned too: the editable install and the build checks use them.
    pip(python, "install", "--quiet", *constraints, "pip", "setuptools")
    pip(python, "install", "--quiet", *constraints, "-e", f"{ROOT}[{','.join(EXTRAS)}]")
    STAMP.write_text(wanted + "\n")
    return python


def lock(python: Path, rest: list[str]) -> int:
    """Recompile the pins from pyproject.toml with pip-tools (``--upgrade`` moves them all)."""
    PINS.parent.mkdir(exist_ok=True)
    command = [
        str(python), "-m", "piptools", "compile", "--quiet", "--allow-unsafe", "--strip-extras",
        "--no-emit-index-url", "--no-emit-find-links", "--no-emit-trusted-host",
        *(arg for extra in EXTRAS for arg in ("--extra", extra)),
        "--output-file", str(PINS.relative_to(ROOT)), "pyproject.toml", *rest,
    ]
    # pip-compile names the command that made the file in its header.
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "CUSTOM_COMPILE_COMMAND": "python3 dev.py lock"})
    if done.returncode == 0:
        print(f"dev.py: wrote {PINS.relative_to(ROOT)}; the next test or demo run reinstalls .venv from it")
    return done.returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "lock"}:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    python = ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "lock":
        return lock(python, rest)
    if command == "test":
        return subprocess.run([str(python), "-m", "pytest", *rest], cwd=ROOT).returncode
    return subprocess.run([str(python), str(ROOT / "examples" / "demo.py"), *rest], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
