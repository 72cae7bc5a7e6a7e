"""prerelease runs the round-trip tests with the project's own Python.

``[tool.micropkg.prerelease] python`` names it; otherwise the project's ``.venv``
is used, and only then the Python running micropkg. The Kedro case builds (once,
in the test cache folder, like ``tests/kedro_env.py``) a second virtualenv holding
Kedro and pytest, and is skipped only when that cannot be made (no index reachable).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

from tests.conftest import run_micropkg
from tests.kedro_env import KEDRO_VERSION, KedroUnavailable, cache_root, clean_env

CORE = "projects/core"
KEDRO_TEST = '''"""The pipeline wiring needs Kedro itself."""

from kedro.pipeline import Pipeline

from core.pipelines.data_cleaning.pipeline import create_pipeline


def test_the_pipeline_is_a_kedro_pipeline():
    assert isinstance(create_pipeline(), Pipeline)
'''
MARKER = ".micropkg-prerelease-ready"
INSTALL_TIMEOUT = 300
LOCK_WAIT = 400


def _with_kedro_test(monorepo: Path) -> Path:
    core = monorepo / CORE
    (core / "tests/pipelines/data_cleaning/test_pipeline.py").write_text(KEDRO_TEST)
    return core


def _set_python(project: Path, python: str) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.micropkg.prerelease]\npython = "{python}"\n')


def _round_trip(result) -> str:
    lines = [line for line in result.stdout.splitlines() + result.stderr.splitlines() if "round-trip" in line]
    return "\n".join(lines)


def _python_of(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _build_kedro_venv(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    command = [str(_python_of(folder)), "-m", "pip", "install", "--no-input", "--progress-bar", "off",
               f"kedro=={KEDRO_VERSION}", "pytest"]
    try:
        done = subprocess.run(command, env=clean_env(), capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise KedroUnavailable(f"pip install kedro pytest timed out after {INSTALL_TIMEOUT} s") from None
    if done.returncode != 0:
        raise KedroUnavailable("pip install kedro pytest failed: " + " ".join(done.stderr.strip().splitlines()[-3:]))
    (folder / MARKER).write_text(KEDRO_VERSION + "\n")


@pytest.fixture(scope="session")
def kedro_python() -> Path:
    """A cached venv with Kedro and pytest (not micropkg's own); skipped when it cannot be built."""
    import fcntl

    folder = cache_root() / f"prerelease-kedro-{KEDRO_VERSION}-py{sys.version_info[0]}.{sys.version_info[1]}"
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with open(folder.parent / f"{folder.name}.lock", "a+") as handle:
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise KedroUnavailable(f"another process held {handle.name} too long") from None
                    time.sleep(0.5)
            try:
                ready = (folder / MARKER).is_file() and _python_of(folder).is_file()
                if not ready:
                    try:
                        _build_kedro_venv(folder)
                    except BaseException:
                        shutil.rmtree(folder, ignore_errors=True)
                        raise
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except (KedroUnavailable, OSError) as exc:
        pytest.skip(f"no venv with Kedro {KEDRO_VERSION} and pytest: {exc}")
    return _python_of(folder)


def _micropkg_has_no_kedro() -> None:
    if subprocess.run([sys.executable, "-c", "import kedro"], capture_output=True).returncode == 0:
        pytest.skip("Kedro is installed where micropkg runs, so the project's Python would make no difference")


def test_with_the_configured_python_the_kedro_round_trip_passes(monorepo, kedro_python):
    _micropkg_has_no_kedro()
    core = _with_kedro_test(monorepo)

    without = run_micropkg(["prerelease", "--project", CORE, "--keep-going"], monorepo)
    assert without.exit_code == 1
    assert f"module 'kedro' is not installed in {sys.executable}" in _round_trip(without)

    _set_python(core, str(kedro_python))
    configured = run_micropkg(["prerelease", "--project", CORE, "--verbose"], monorepo)
    assert configured.exit_code == 0, configured.stdout + configured.stderr
    assert "tests passed for 2 (with " in configured.stdout
    assert "[tool.micropkg.prerelease] python" in configured.stdout


def test_the_project_venv_is_found_without_configuration(monorepo, kedro_python):
    _micropkg_has_no_kedro()
    core = _with_kedro_test(monorepo)
    (core / ".venv").symlink_to(kedro_python.parent.parent, target_is_directory=True)
    result = run_micropkg(["prerelease", "--project", CORE, "--verbose"], monorepo)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "(with the project's .venv/bin/python)" in result.stdout


def test_a_python_without_a_dependency_is_named_in_one_sentence(monorepo, tmp_path):
    bare = tmp_path / "bare"
    venv.EnvBuilder(with_pip=False).create(bare)  # no pytest in it
    core = monorepo / CORE
    _set_python(core, str(_python_of(bare)))
    result = run_micropkg(["prerelease", "--project", CORE], monorepo)
    assert result.exit_code == 1
    assert f"FAIL {CORE}: round-trip: " in result.stderr
    # Each micro-package's failure is one sentence naming the interpreter and the missing module.
    assert (
        f"  pipelines.data_cleaning: packaged tests cannot run: module 'pytest' is not installed in {_python_of(bare)}; "
        "install it there" in result.stderr
    )
    assert f"  utils.io does not import: module 'yaml' is not installed in {_python_of(bare)}" in result.stderr


def test_a_configured_python_that_does_not_exist_is_a_usage_error(monorepo):
    _set_python(monorepo / CORE, "no/such/python")
    result = run_micropkg(["prerelease", "--project", CORE], monorepo)
    assert result.exit_code == 2
    assert "[tool.micropkg.prerelease] python is 'no/such/python', which does not exist" in result.stderr
    assert result.stderr.count("\n") == 1
