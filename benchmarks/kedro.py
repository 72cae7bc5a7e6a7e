"""Kedro 0.19.15 and micropkg side by side, on the same generated project, in the same run.

Builds (or reuses) the cached virtualenv holding real ``kedro==0.19.15`` that the
interop tests use (``tests/kedro_env.py``; Kedro is never installed into our
own environment), generates one project with N micro-packages of F modules
(``generate.py``), then times as whole processes, wall clock:

* ``kedro micropkg package --all`` and ``micropkg package --all`` in that project
  (``dist/`` emptied before each run);
* ``kedro micropkg pull --all`` of Kedro's sdists and ``micropkg pull --all
  --no-compile`` of ours, each into a fresh copy of a consumer project whose
  pull manifest lists them (Kedro's pull never compiles requirements, so
  ``--no-compile`` is the like-for-like comparison).

Each run's output is checked (every sdist written, every micro-package
installed), so a broken run fails instead of giving a fast number. Kedro's
package builds every sdist in an isolated build environment that pip fills
from the package index, so this needs the index pip is configured with.

Usage::

    .venv/bin/python benchmarks/kedro.py [--micropkgs 20] [--files 10] [--repeat 3]

Exit codes: 0 when both ratios reach the target, 1 when one does not, 2 when a
run failed or Kedro's venv could not be made.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from generate import GeneratedProject, generate_consumer, generate_project  # noqa: E402
from run import BenchmarkError, expected_sdists, find_micropkg, load_average, machine, run_timed  # noqa: E402

from tests.kedro_env import KEDRO_VERSION, KedroUnavailable, clean_env, ensure_kedro_venv  # noqa: E402

TARGET_RATIO = 60.0  # Kedro's median over ours, for package and for pull


def kedro_env(kedro_bin: Path, project: Path) -> dict[str, str]:
    extra = {"PYTHONPATH": str(project / "src"), "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
             "PATH": os.pathsep.join([str(kedro_bin), os.environ.get("PATH", "")])}
    return clean_env(extra)


def check_sdists(project: GeneratedProject, dist: Path, who: str) -> list[Path]:
    wanted = expected_sdists(project)
    found = {path.name for path in dist.glob("*.tar.gz")}
    missing = sorted(set(wanted.values()) - found)
    if missing:
        raise BenchmarkError(f"{who} package --all did not write {', '.join(missing)} in {dist}")
    return [dist / wanted[module] for module in project.module_paths]


def check_pulled(consumer: Path, project: GeneratedProject, who: str) -> None:
    for module in project.module_paths:
        name = module.rsplit(".", 1)[-1]
        init = consumer / "src" / "consumer" / "pipelines" / name / "__init__.py"
        if not init.is_file():
            raise BenchmarkError(f"{who} pull --all did not install {name} ({init} is missing)")


def time_package(command: Sequence[str | Path], project: GeneratedProject, repeat: int, who: str,
                 env: dict[str, str] | None) -> tuple[list[float], list[Path]]:
    dist = project.root / "dist"
    runs: list[float] = []
    sdists: list[Path] = []
    for attempt in range(repeat + 1):  # the first round warms caches and is not counted
        shutil.rmtree(dist, ignore_errors=True)
        seconds, _ = run_timed(command, project.root, env=env)
        sdists = check_sdists(project, dist, who)
        if attempt:
            runs.append(seconds)
    # Keep the last run's sdists for the pull; dist/ is reused by the other tool.
    kept = project.root.parent / f"{who}-sdists"
    shutil.rmtree(kept, ignore_errors=True)
    kept.mkdir()
    return runs, [Path(shutil.copy2(sdist, kept)) for sdist in sdists]


def time_pull(command: Sequence[str | Path], project: GeneratedProject, sdists: list[Path], repeat: int, who: str,
              env_for: Callable[[Path], dict[str, str]] | None) -> list[float]:
    template = project.root.parent / f"{who}-consumer"
    shutil.rmtree(template, ignore_errors=True)
    generate_consumer(template, sdists)
    runs = []
    for attempt in range(repeat + 1):
        copy = project.root.parent / f"{who}-consumer-{attempt}"
        shutil.copytree(template, copy)
        env = env_for(copy) if env_for is not None else None
        seconds, _ = run_timed(command, copy, env=env)
        check_pulled(copy, project, who)
        if attempt:
            runs.append(seconds)
        shutil.rmtree(copy)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--micropkgs", type=int, default=20)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--micropkg", help="console script to time (default: the one next to this interpreter)")
    args = parser.parse_args(argv)
    micropkg = find_micropkg(args.micropkg)
    info = machine()
    try:
        kedro_bin, built = ensure_kedro_venv()
    except KedroUnavailable as exc:
        print(f"the Kedro {KEDRO_VERSION} virtualenv could not be made: {exc}", file=sys.stderr)
        return 2
    kedro = kedro_bin / "kedro"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
    with tempfile.TemporaryDirectory(prefix="micropkg-kedro-bench-") as folder:
        project = generate_project(Path(folder) / "project", args.micropkgs, args.files)
        try:
            kedro_package, kedro_sdists = time_package(
                [kedro, "micropkg", "package", "--all"], project, args.repeat, "kedro",
                kedro_env(kedro_bin, project.root),
            )
            ours_package, our_sdists = time_package(
                [micropkg, "package", "--all", "--quiet"], project, args.repeat, "micropkg", None
            )
            kedro_pull = time_pull([kedro, "micropkg", "pull", "--all"], project, kedro_sdists, args.repeat,
                                   "kedro", lambda consumer: kedro_env(kedro_bin, consumer))
            ours_pull = time_pull([micropkg, "pull", "--all", "--no-compile", "--quiet"], project, our_sdists,
                                  args.repeat, "micropkg", None)
        except BenchmarkError as exc:
            print(f"benchmark run failed: {exc}", file=sys.stderr)
            return 2
    print(f"machine: {info['cores']} cores, {info['cpu']}, Python {info['python']}; "
          f"load average {info['load_average_at_start']} at start, {load_average()} at end")
    print(f"commit {commit.stdout.strip() or 'unknown'}; Kedro {KEDRO_VERSION} venv "
          f"{'built in %.0f s' % built if built else 'reused'}; N = {args.micropkgs} micro-packages, "
          f"F = {args.files}; {args.repeat} timed runs each, whole processes")
    print()
    print("| operation | Kedro 0.19.15 median (min) | micropkg median (min) | ratio |")
    print("|---|---:|---:|---:|")
    status = 0
    for label, theirs, ours in (
        (f"package --all, {args.micropkgs} micro-packages", kedro_package, ours_package),
        (f"pull --all of {args.micropkgs} sdists (ours --no-compile)", kedro_pull, ours_pull),
    ):
        ratio = statistics.median(theirs) / statistics.median(ours)
        status = status or ratio < TARGET_RATIO
        print(f"| {label} | {statistics.median(theirs):.2f} s ({min(theirs):.2f}) | "
              f"{statistics.median(ours):.3f} s ({min(ours):.3f}) | {ratio:.0f}x |")
    print(f"target: at least {TARGET_RATIO:g}x for both: {'FAIL' if status else 'PASS'}")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
