"""Real Kedro in separate, cached virtualenvs, for the interop tests.

Kedro is never a dependency of micropkg-tasks and is never installed into our
own venv. The ``kedro_bin`` session fixture builds (once, then reuses) a venv
holding ``kedro==0.19.15`` and yields its ``bin`` folder; ``run_kedro`` runs a
``kedro`` command from it. ``kedro1_bin`` does the same for the newest Kedro
1.x, with our runtime dependencies and pytest beside it, so that the Kedro
plugin (``micropkg_tasks.cli.kedro_plugin``) can run there from a ``--target``
install of this checkout (see ``install_plugin``). The 1.x venv is rebuilt
when our dependency list changes, or when it is older than ``KEDRO1_MAX_AGE``,
so it follows new Kedro 1.x releases.

Where the venv lives: ``$MICROPKG_TEST_CACHE`` if set, else
``$XDG_CACHE_HOME/micropkg-tasks-tests``, else ``~/.cache/micropkg-tasks-tests``;
below it ``kedro-0.19.15-py<major>.<minor>/``. It is used only once the marker
file ``.micropkg-kedro-ready`` exists, and that is written only after pip
succeeded and ``import kedro`` reported the pinned version; a half-built venv
(killed run, failed install) is deleted and built again. An ``fcntl`` lock on
``kedro-0.19.15-py<X.Y>.lock`` beside it keeps two pytest processes (xdist
workers, parallel CI jobs) from building it at once; the wait for it is bounded.

When the venv cannot be made (no network, pip failing, a timeout, no fcntl)
every test that uses ``kedro_bin`` is skipped with the reason.

Pip configuration: installing Kedro needs the package index, so the machine's
pip configuration is kept (config files, ``PIP_INDEX_URL``,
``PIP_EXTRA_INDEX_URL``, ``PIP_CERT``, ``PIP_TRUSTED_HOST``, proxies,
timeouts). Every other ``PIP_*`` variable is dropped, because options such as
``PIP_NO_INDEX``, ``PIP_USER``, ``PIP_TARGET``, ``PIP_PREFIX``,
``PIP_CONSTRAINT``, ``PIP_ONLY_BINARY`` or ``PIP_REQUIRE_HASHES`` would make the
install fail or land outside the venv. ``PIP_FIND_LINKS`` is set to the empty
string, which also cancels a ``find-links`` from a pip config file: a local
wheel folder must not shadow the index (it may hold wheels for another Python,
or a different build of a dependency). The same environment is used for the
Kedro commands, since ``kedro micropkg pull`` builds sdist metadata in an
isolated setuptools environment that pip fills from the index.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pytest

KEDRO_VERSION = "0.19.15"
MARKER = ".micropkg-kedro-ready"

VENV_TIMEOUT = 120  # seconds for ``python -m venv``
INSTALL_TIMEOUT = 300  # seconds for ``pip install kedro`` (and, for 1.x, our dependencies)
LOCK_WAIT = 400  # seconds to wait for another process building the same venv
COMMAND_TIMEOUT = 180  # default (and maximum) for one kedro command

# PIP_* variables that only say how to reach the index; all others are dropped.
_PIP_KEPT = frozenset(
    {
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_TRUSTED_HOST",
        "PIP_CERT",
        "PIP_CLIENT_CERT",
        "PIP_PROXY",
        "PIP_TIMEOUT",
        "PIP_DEFAULT_TIMEOUT",
        "PIP_RETRIES",
        "PIP_CONFIG_FILE",
        "PIP_KEYRING_PROVIDER",
        "PIP_DISABLE_PIP_VERSION_CHECK",
    }
)
# Variables of the calling interpreter that must not leak into the Kedro venv.
_PYTHON_DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__", "CONDA_PREFIX")


class KedroUnavailable(RuntimeError):
    """The Kedro venv could not be made; the reason is the message."""


def cache_root() -> Path:
    explicit = os.environ.get("MICROPKG_TEST_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "micropkg-tasks-tests"


def venv_dir() -> Path:
    return cache_root() / f"kedro-{KEDRO_VERSION}-py{sys.version_info[0]}.{sys.version_info[1]}"


def kedro1_venv_dir() -> Path:
    return cache_root() / f"kedro-1.x-py{sys.version_info[0]}.{sys.version_info[1]}"


def our_dependencies() -> list[str]:
    """The runtime dependencies in this checkout's ``pyproject.toml``."""
    import tomllib

    data = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    return list(data["project"]["dependencies"])


KEDRO1_REQUIREMENT = "kedro>=1,<2"
KEDRO1_MAX_AGE = 14 * 24 * 3600  # seconds; then the venv is rebuilt with the newest Kedro 1.x


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for pip and Kedro: see the module docstring."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not (key.startswith("PIP_") and key not in _PIP_KEPT) and key not in _PYTHON_DROPPED
    }
    env["PIP_FIND_LINKS"] = ""
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env["KEDRO_DISABLE_TELEMETRY"] = "1"
    env["DO_NOT_TRACK"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUTF8"] = "1"
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"  # rich wraps log lines at the terminal width
    env.update(extra or {})
    return env


def _bin(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


def _run(args: Sequence[str], timeout: float, what: str) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            list(args), env=clean_env(), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise KedroUnavailable(f"{what} timed out after {timeout:.0f} s") from None
    except OSError as exc:
        raise KedroUnavailable(f"{what} could not start: {exc}") from None
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-6:])
        raise KedroUnavailable(f"{what} failed (exit {result.returncode}): {tail}")
    return result


def installed_kedro_version(venv: Path) -> str | None:
    """The Kedro version the venv's python imports, or None (the base interpreter may have moved)."""
    python = _bin(venv) / "python"
    if not python.exists():
        return None
    try:
        check = subprocess.run(
            [str(python), "-c", "import kedro; print(kedro.__version__)"],
            env=clean_env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
    except (subprocess.TimeoutExpired, OSError):
        return None
    return check.stdout.strip() if check.returncode == 0 else None


def _is_ready(venv: Path, stamp: str, accepts: Callable[[str], bool], max_age: float | None) -> bool:
    marker = venv / MARKER
    if not (marker.is_file() and marker.read_text().strip() == stamp):
        return False
    if max_age is not None and time.time() - marker.stat().st_mtime > max_age:
        return False
    version = installed_kedro_version(venv)
    return version is not None and accepts(version)


def _build(venv: Path, requirements: Sequence[str], stamp: str, accepts: Callable[[str], bool]) -> None:
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", str(venv)], VENV_TIMEOUT, "creating the Kedro venv")
    python = str(_bin(venv) / "python")
    _run(
        [python, "-m", "pip", "install", "--no-input", "--progress-bar", "off", *requirements],
        INSTALL_TIMEOUT,
        f"pip install {' '.join(requirements)}",
    )
    version = installed_kedro_version(venv)
    if version is None or not accepts(version):
        raise KedroUnavailable(f"{requirements[0]} installed but `import kedro` reports {version!r}")
    (venv / MARKER).write_text(stamp + "\n")


def ensure_kedro_venv(
    venv: Path | None = None,
    requirements: Sequence[str] = (f"kedro=={KEDRO_VERSION}",),
    accepts: Callable[[str], bool] = lambda version: version == KEDRO_VERSION,
    max_age: float | None = None,
    stamp: str = KEDRO_VERSION,
) -> tuple[Path, float]:
    """Make (or reuse) a Kedro venv; return its bin folder and the seconds spent building it (0 if reused).

    ``requirements`` (Kedro first) are what pip installs; ``stamp`` is written
    to the marker once they are, so a changed stamp rebuilds the venv.
    ``accepts`` checks the Kedro version the venv imports.
    """
    venv = venv or venv_dir()
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        raise KedroUnavailable("fcntl is not available to lock the Kedro venv cache") from None
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
        handle = open(venv.parent / f"{venv.name}.lock", "a+")
    except OSError as exc:
        raise KedroUnavailable(f"cannot use the cache folder {venv.parent}: {exc}") from None
    with handle:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise KedroUnavailable(
                        f"another process held {handle.name} for more than {LOCK_WAIT} s"
                    ) from None
                time.sleep(0.5)
        try:
            if _is_ready(venv, stamp, accepts, max_age):
                return _bin(venv), 0.0
            started = time.monotonic()
            try:
                _build(venv, requirements, stamp, accepts)
            except BaseException:
                shutil.rmtree(venv, ignore_errors=True)
                raise
            return _bin(venv), time.monotonic() - started
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def kedro_bin() -> Path:
    """The bin folder of a cached venv holding real ``kedro==0.19.15``; skips when it cannot be made."""
    try:
        bin_dir, seconds = ensure_kedro_venv()
    except KedroUnavailable as exc:
        pytest.skip(f"no Kedro {KEDRO_VERSION} venv: {exc}")
    if seconds:
        sys.stderr.write(f"\n[kedro_env] built {bin_dir.parent} in {seconds:.1f} s\n")
    return bin_dir


def ensure_kedro1_venv() -> tuple[Path, float]:
    """The newest Kedro 1.x, our runtime dependencies and pytest, in their own cached venv."""
    requirements = (KEDRO1_REQUIREMENT, *our_dependencies(), "pytest")
    return ensure_kedro_venv(
        kedro1_venv_dir(),
        requirements=requirements,
        stamp=" ".join(requirements),
        accepts=lambda version: version.split(".")[0] == "1",
        max_age=KEDRO1_MAX_AGE,
    )


@pytest.fixture(scope="session")
def kedro1_bin() -> Path:
    """The bin folder of a cached venv holding the newest Kedro 1.x; skips when it cannot be made."""
    try:
        bin_dir, seconds = ensure_kedro1_venv()
    except KedroUnavailable as exc:
        pytest.skip(f"no Kedro 1.x venv: {exc}")
    if seconds:
        sys.stderr.write(f"\n[kedro_env] built {bin_dir.parent} in {seconds:.1f} s\n")
    return bin_dir


def install_plugin(target: Path) -> Path:
    """Install this checkout (without dependencies) into ``target``, a folder to put on
    ``PYTHONPATH``: Kedro finds the plugin's entry point in the dist-info there, and the
    cached venv stays independent of any one checkout."""
    root = Path(__file__).resolve().parents[1]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(root)],
        env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        pytest.fail(f"installing {root} into {target} failed:\n{result.stdout}\n{result.stderr}")
    return target


def run_kedro(
    kedro_bin: Path,
    args: Sequence[str],
    cwd: Path,
    timeout: float = COMMAND_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``kedro <args>`` from the Kedro venv in ``cwd`` (a Kedro project), telemetry off.

    ``env`` adds variables (``PYTHONPATH``, say). A timeout fails the test
    with the command named; the timeout is capped at ``COMMAND_TIMEOUT``.
    """
    timeout = min(timeout, COMMAND_TIMEOUT)
    extra = dict(env or {})
    extra["PATH"] = os.pathsep.join([str(kedro_bin), os.environ.get("PATH", "")])
    command = [str(kedro_bin / "kedro"), *args]
    try:
        return subprocess.run(
            command,
            cwd=cwd,
            env=clean_env(extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`kedro {' '.join(args)}` in {cwd} timed out after {timeout:.0f} s\n{exc.stdout or ''}")
