"""The Nox helper (``micropkg_tasks.nox``) and ``examples/monorepo/noxfile.py``: one test session per
project and one prerelease session, listed by ``nox -l``, and one project's session run for real."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from micropkg_tasks import nox as micropkg_nox
from micropkg_tasks.core.errors import MicropkgError
from tests.conftest import EXAMPLE_MONOREPO, kedro_project

# This machine's pip settings, read before the autouse fixture replaces them with "no index".
MACHINE_PIP_ENV = {key: value for key, value in os.environ.items() if key.startswith("PIP_")}

PROJECTS = ["projects/churn", "projects/core", "projects/forecast"]
SESSION_LINE = re.compile(r"^([*-]) (\S+)(?: -> .*)?$")


def nox_available() -> bool:
    try:
        import nox  # noqa: F401
    except ImportError:
        return False
    return True


needs_nox = pytest.mark.skipif(not nox_available(), reason="nox is not installed (pip install micropkg-tasks[nox])")


# -- the helper -----------------------------------------------------------------------------------


def test_projects_are_listed_relative_to_the_monorepo_root(monorepo: Path) -> None:
    assert micropkg_nox.projects(monorepo) == PROJECTS
    # From a project folder, from a file such as the noxfile, or as a string: the same list.
    assert micropkg_nox.projects(monorepo / "projects/core/src") == PROJECTS
    assert micropkg_nox.projects(str(monorepo / "noxfile.py")) == PROJECTS
    assert micropkg_nox.monorepo_root(monorepo / "projects/churn") == monorepo.resolve()


def test_a_new_project_shows_up_in_the_list(monorepo: Path) -> None:
    kedro_project(monorepo / "projects/billing", "billing")
    assert micropkg_nox.projects(monorepo) == ["projects/billing", *PROJECTS]


def test_layout_helpers_follow_each_projects_layout(monorepo: Path) -> None:
    root = monorepo.resolve()
    assert micropkg_nox.project_root("projects/core", monorepo) == root / "projects/core"
    assert micropkg_nox.project("projects/core", monorepo).package_name == "core"
    # Kedro 0.19 layout: requirements and tests at the project root.
    assert micropkg_nox.requirements_file("projects/core", monorepo) == root / "projects/core/requirements.txt"
    assert micropkg_nox.tests_dir("projects/core", monorepo) == root / "projects/core/tests"
    assert micropkg_nox.source_dir("projects/core", monorepo) == root / "projects/core/src"
    # Kedro 0.18 layout: both under src/.
    assert micropkg_nox.requirements_file("projects/forecast", monorepo) == root / "projects/forecast/src/requirements.txt"
    assert micropkg_nox.tests_dir("projects/forecast", monorepo) == root / "projects/forecast/src/tests"
    # An absolute project folder works from anywhere.
    assert micropkg_nox.source_dir(root / "projects/churn", "/") == root / "projects/churn/src"


def test_outside_a_monorepo_the_error_is_clear(tmp_path: Path) -> None:
    with pytest.raises(MicropkgError, match="no monorepo found at or above"):
        micropkg_nox.projects(tmp_path)


def test_the_helper_works_without_nox_installed() -> None:
    code = (
        "import sys\n"
        "sys.modules['nox'] = None  # makes `import nox` fail\n"
        f"from micropkg_tasks import nox as helper\n"
        f"print(helper.projects({str(EXAMPLE_MONOREPO)!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(PROJECTS)


# -- the noxfile ----------------------------------------------------------------------------------


def list_sessions(noxfile: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(noxfile), "-l"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [match.group(2) for match in map(SESSION_LINE.match, done.stdout.splitlines()) if match]


@needs_nox
def test_nox_lists_one_test_session_per_project_and_prerelease() -> None:
    sessions = list_sessions(EXAMPLE_MONOREPO / "noxfile.py")
    assert sessions == [f"tests({project})" for project in PROJECTS] + ["prerelease"]
    assert not (EXAMPLE_MONOREPO / ".nox").exists()  # listing creates nothing


@needs_nox
def test_the_sessions_follow_the_monorepo(monorepo: Path) -> None:
    kedro_project(monorepo / "projects/billing", "billing")
    sessions = list_sessions(monorepo / "noxfile.py")
    assert sessions == [f"tests({p})" for p in ["projects/billing", *PROJECTS]] + ["prerelease"]


def machine_pip_environment() -> dict[str, str]:
    """The environment with this machine's own pip settings, as before the test fixtures."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "UV_"))}
    env.update(MACHINE_PIP_ENV)
    return env


@needs_nox
def test_a_project_session_runs_for_real(monorepo: Path, tmp_path: Path) -> None:
    """Slow (a fresh virtualenv and a pip install): runs `tests(projects/core)` from a scratch copy."""
    env = machine_pip_environment()
    try:
        probe = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--timeout", "15", "-d", str(tmp_path / "probe"),
             "pytest"],
            env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("no package index answered within 120 s")
    if probe.returncode != 0:
        pytest.skip(f"no package index reachable: {(probe.stderr.strip().splitlines() or ['?'])[-1]}")

    done = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(monorepo / "noxfile.py"), "-s", "tests(projects/core)",
         "--envdir", str(tmp_path / "envs")],
        env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "pip install -r " + str((monorepo / "projects/core/requirements.txt").resolve()) in output
    assert re.search(r"^6 passed in [\d.]+s$", output, re.MULTILINE), output
    assert "Session tests(projects/core) was successful" in output
