"""Run the main micropkg workflow on a scratch copy of ``examples/monorepo`` and show what happened.

    python3 dev.py demo            # from the repository root (sets up .venv first)
    python examples/demo.py [DIR]  # with micropkg-tasks already installed

Steps: ``package --all`` at the monorepo root (every project's package manifest)
and a look inside one sdist; ``pull --all`` at the root (each project's pull
manifest, whose ``../core#<module>`` entries are packaged from source); a check that
the shared copies are in step with their source; an edit upstream, caught by
``sync-shared --check`` and fixed by ``sync-shared``; ``status`` for the whole
monorepo; the pulled tests run under pytest where they landed; and the
pre-release checks over every project. The scratch
copy is left in place for you to explore; its path is printed at the start and
at the end.
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


def micropkg(args: list[str], cwd: Path, *, expect: int = 0) -> None:
    print(f"$ (cd {cwd.name} && micropkg {' '.join(args)})", flush=True)
    completed = subprocess.run([*MICROPKG, *args], cwd=cwd)
    if completed.returncode != expect:
        sys.exit(f"demo: 'micropkg {' '.join(args)}' exited {completed.returncode}, expected {expect}")
    if expect:
        print(f"(exit code {completed.returncode}, as expected)", flush=True)


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

    step("package --all from the root: every project's [tool.kedro.micropkg.package] manifest")
    micropkg(["package", "--all"], monorepo)

    sdist = projects / "core" / "dist" / "data_cleaning-0.3.0.tar.gz"
    step(f"inside {sdist.name}")
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile():
                print(f"  {member.name}")

    step("pull --all from the root: every project's [tool.kedro.micropkg.pull] manifest")
    micropkg(["pull", "--all"], monorepo)

    step("pull-all (the same thing) again: nothing changes")
    micropkg(["pull-all"], monorepo)

    step("sync-shared: install [[tool.micropkg.shared]] from source into every target")
    micropkg(["sync-shared"], monorepo)

    nodes = projects / "core/src/core/pipelines/data_cleaning/nodes.py"
    step(f"edit the source upstream ({nodes.relative_to(monorepo)}), then check for drift as CI would")
    nodes.write_text(nodes.read_text().replace("Remove the given keys", "Drop the given keys"))
    micropkg(["sync-shared", "--check"], monorepo, expect=1)

    step("sync-shared brings every target up to date")
    micropkg(["sync-shared"], monorepo)
    micropkg(["sync-shared", "--check"], monorepo)

    step("status of every project")
    micropkg(["status"], monorepo)

    step("the pulled tests pass where they landed")
    run_tests(projects / "churn", "tests")
    run_tests(projects / "forecast", "src/tests")

    step("prerelease: reproducible, installable, round-trip, in sync, requirements current, lock clean")
    micropkg(["prerelease"], monorepo)

    print(f"\ndone; explore the result in {monorepo}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
