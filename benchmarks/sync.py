"""Time ``micropkg sync-shared`` on a generated monorepo.

The monorepo has P projects: one source with M shared micro-packages of F
modules each (see ``generate.py``), and P-1 empty targets that receive every
one of them. Timed as whole processes, wall clock, warm file cache:

* a cold sync (``sync-shared --no-compile`` on a fresh copy: P-1 × M installs);
* a no-op sync (the same command again: hashes only, nothing built or written);
* ``sync-shared --check`` on the synced monorepo.

Usage::

    .venv/bin/python benchmarks/sync.py [--projects 10] [--micropkgs 10] [--files 10] [--repeat 5]

Exit codes: 0 when the targets pass, 1 when one fails, 2 when a run failed or
left the wrong output.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate_consumer, generate_project  # noqa: E402
from run import BenchmarkError, find_micropkg, load_average, machine, run_timed  # noqa: E402

# Targets from the monorepo issue, for 10 projects x 10 shared micro-packages, F=10.
TARGETS = {"no-op": 1.5, "cold": 10.0}


def generate_monorepo(root: Path, projects: int, micropkgs: int, files: int) -> list[str]:
    """Write the monorepo; return the module paths of the shared micro-packages."""
    source = generate_project(root / "projects" / "source", micropkgs, files, package_name="source_pkg")
    for index in range(projects - 1):
        generate_consumer(root / "projects" / f"target{index:02d}", [], package_name=f"target{index:02d}")
    entries = "".join(
        f'\n[[tool.micropkg.shared]]\nmicropkg = "{module}"\nsource = "projects/source"\n'
        for module in source.module_paths
    )
    (root / "pyproject.toml").write_text(f'[tool.micropkg.monorepo]\nprojects = ["projects/*"]\n{entries}')
    return source.module_paths


def check_synced(root: Path, projects: int, modules: Sequence[str]) -> None:
    for index in range(projects - 1):
        lock = root / "projects" / f"target{index:02d}" / "micropkg.lock"
        if not lock.is_file():
            raise BenchmarkError(f"{lock} was not written")
        installed = set(tomllib.loads(lock.read_text())["micropkg"])
        if installed != set(modules):
            raise BenchmarkError(f"{lock} lists {sorted(installed)}, expected {sorted(modules)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time micropkg sync-shared on a generated monorepo.")
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--micropkgs", type=int, default=10)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--micropkg", help="console script to time (default: the one next to this interpreter)")
    args = parser.parse_args(argv)
    micropkg = find_micropkg(args.micropkg)
    info = machine()
    cold: list[float] = []
    noop: list[float] = []
    check: list[float] = []
    with tempfile.TemporaryDirectory(prefix="micropkg-sync-bench-") as folder:
        template = Path(folder) / "template"
        modules = generate_monorepo(template, args.projects, args.micropkgs, args.files)
        try:
            for attempt in range(args.repeat + 1):  # the first round warms caches and is not counted
                copy = Path(folder) / f"run{attempt}"
                shutil.copytree(template, copy)
                seconds, _ = run_timed([micropkg, "sync-shared", "--no-compile", "--quiet"], copy)
                check_synced(copy, args.projects, modules)
                again, done = run_timed([micropkg, "sync-shared", "--no-compile"], copy)
                if "everything was already in sync" not in done.stdout:
                    raise BenchmarkError(f"the second sync-shared changed something:\n{done.stdout[-2000:]}")
                checked, _ = run_timed([micropkg, "sync-shared", "--check", "--quiet"], copy)
                if attempt:
                    cold.append(seconds)
                    noop.append(again)
                    check.append(checked)
                shutil.rmtree(copy)
        except BenchmarkError as exc:
            print(f"benchmark run failed: {exc}", file=sys.stderr)
            return 2
    installs = (args.projects - 1) * args.micropkgs
    print(f"machine: {info['cores']} cores, {info['cpu']}, Python {info['python']}; "
          f"load average {info['load_average_at_start']} at start, {load_average()} at end")
    print(f"monorepo: {args.projects} projects, {args.micropkgs} shared micro-packages of {args.files} modules, "
          f"{installs} installs; {args.repeat} timed runs each")
    status = 0
    rows = [("cold", "sync-shared --no-compile, fresh copy", cold),
            ("no-op", "sync-shared --no-compile, already in sync", noop),
            ("check", "sync-shared --check, in sync", check)]
    for key, label, runs in rows:
        median = statistics.median(runs)
        line = f"{label:<45} median {median:6.3f} s  min {min(runs):6.3f} s"
        if key in TARGETS:
            verdict = "PASS" if median < TARGETS[key] else "FAIL"
            status = status or (verdict == "FAIL")
            line += f"   target < {TARGETS[key]:g} s: {verdict}"
        print(line)
    print(f"cold sync per install: {statistics.median(cold) / installs * 1000:.1f} ms")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
