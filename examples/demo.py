"""Run the main micropkg workflow on a scratch copy of ``examples/monorepo`` and show what happened.

    python3 dev.py demo            # from the repository root (sets up .venv first)
    python examples/demo.py [DIR]  # with micropkg-tasks already installed

Steps: ``micropkg package --all`` in ``projects/core``, a look inside one
sdist, ``micropkg pull --all`` in ``projects/churn`` and ``projects/forecast``,
a second pull that changes nothing, ``micropkg status``, and the pulled tests
run under pytest in each consumer. The scratch copy is left in place for you
to explore; its path is printed at the start and at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MICROPKG = [sys.executable, "-m", "micropkg_tasks"]


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def micropkg(args: list[str], cwd: Path) -> None:
    print(f"$ (cd {cwd.name} && micropkg {' '.join(args)})", flush=True)
    completed = subprocess.run([*MICROPKG, *args], cwd=cwd)
    if completed.returncode != 0:
        sys.exit(f"demo: 'micropkg {' '.join(args)}' failed with exit code {completed.returncode}")


def run_tests(project: Path, tests: str) -> None:
    print(f"$ (cd {project.name} && PYTHONPATH=src pytest -q {tests})", flush=True)
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tests], cwd=project, env=env
    )
    if completed.returncode != 0:
        sys.exit(f"demo: the pulled tests failed in {project.name}")


def main(argv: list[str]) -> int:
    scratch = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="micropkg-demo-"))
    monorepo = scratch / "monorepo"
    if monorepo.exists():
        shutil.rmtree(monorepo)
    shutil.copytree(HERE / "monorepo", monorepo, ignore=shutil.ignore_patterns("__pycache__", "dist"))
    print(f"scratch copy: {monorepo}")
    projects = monorepo / "projects"

    step("package every micro-package listed in projects/core/pyproject.toml")
    micropkg(["package", "--all"], projects / "core")

    sdist = projects / "core" / "dist" / "data_cleaning-0.3.0.tar.gz"
    step(f"inside {sdist.name}")
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile():
                print(f"  {member.name}")

    step("pull them into the sibling projects (their [tool.kedro.micropkg.pull] manifests)")
    micropkg(["pull", "--all"], projects / "churn")
    micropkg(["pull", "--all"], projects / "forecast")

    step("pull again: nothing changes")
    micropkg(["pull", "--all"], projects / "forecast")

    step("what is installed, and is it still as installed?")
    micropkg(["status"], projects / "forecast")

    step("the pulled tests pass where they landed")
    run_tests(projects / "churn", "tests")
    run_tests(projects / "forecast", "src/tests")

    print(f"\ndone; explore the result in {monorepo}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
