"""Shared fixtures: real project trees on disk and a way to run the CLI in-process."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers import build_file_tree
from tests.wheelhouse import offline_pip, wheelhouse  # noqa: F401  (fixtures for every test module)

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_MONOREPO = REPO_ROOT / "examples" / "monorepo"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never depend on the caller's SOURCE_DATE_EPOCH, debug settings or cache, and
    no test reaches a package index by accident: pip is told there is none. Tests that
    compile use the ``offline_pip`` fixture, which points pip at a local wheelhouse."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.delenv("MICROPKG_DEBUG", raising=False)
    # Run under GitHub Actions, every report would also carry annotations: tests ask for them.
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setenv("MICROPKG_CACHE_DIR", str(tmp_path_factory.mktemp("micropkg-cache")))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    """A scratch copy of ``examples/monorepo``."""
    target = tmp_path / "monorepo"
    shutil.copytree(EXAMPLE_MONOREPO, target, ignore=shutil.ignore_patterns("__pycache__", "dist", "*.pyc"))
    return target


def kedro_project(
    root: Path,
    package_name: str = "spaceflights",
    *,
    legacy: bool = False,
    extra: dict[str, str | bytes] | None = None,
    pyproject_extra: str = "",
) -> Path:
    """A minimal Kedro-layout project: 0.19 by default, 0.17/0.18 with ``legacy``."""
    tests = "src/tests" if legacy else "tests"
    requirements = "src/requirements.txt" if legacy else "requirements.txt"
    spec: dict[str, str | bytes] = {
        "pyproject.toml": (
            "[tool.kedro]\n"
            f'package_name = "{package_name}"\n'
            f'project_name = "{package_name}"\n'
            f'kedro_init_version = "{"0.18.14" if legacy else "0.19.15"}"\n'
            + pyproject_extra
        ),
        requirements: "pyyaml>=6.0\n",
        f"src/{package_name}/__init__.py": '__version__ = "0.1"\n',
        f"src/{package_name}/pipelines/__init__.py": "",
        f"{tests}/__init__.py": "",
        "conf/base/parameters.yml": "seed: 1\n",
        "conf/local/.gitkeep": "",
    }
    spec.update(extra or {})
    return build_file_tree(root, spec, dedent=False)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_micropkg(argv: list[str], cwd: Path) -> CliResult:
    """Run the ``micropkg`` Program in-process, as a user would from ``cwd``."""
    from micropkg_tasks._version import __version__
    from micropkg_tasks.cli.collection import make_collection
    from micropkg_tasks.cli.program import MicropkgProgram

    program = MicropkgProgram(
        namespace=make_collection(), version=__version__, name="micropkg", binary="micropkg",
        binary_names=["micropkg"],
    )
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with _cwd(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            program.run(["micropkg", *argv], exit=True)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_micropkg


@pytest.fixture
def venv_bin() -> Path:
    """The folder holding this interpreter's console scripts (``micropkg``, ``pip``)."""
    return Path(sys.executable).parent
