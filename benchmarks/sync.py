"""Time ``micropkg sync-shared`` on a generated monorepo.

The monorepo has P projects: one source with M shared micro-packages of F
modules each (see ``generate.py``), and P-1 empty targets that receive every
one of them. Timed as whole processes, wall clock, warm file cache:

* a cold sync (``sync-shared --no-compile`` on a fresh copy: P-1 × M installs);
* a no-op sync (the same command again: hashes only, nothing built or written);
* ``sync-shared --check`` on the synced monorepo.

With several project counts (``--projects 10,20,40,80``) it is a size sweep:
one row per size, and least-squares fits of how the cold sync grows with the
number of installs and the no-op sync with the number of projects.

Usage::

    .venv/bin/python benchmarks/sync.py [--projects 10[,20,...]] [--micropkgs 10] [--files 10] [--repeat 5]

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
from run import BenchmarkError, find_micropkg, fit_line, load_average, machine, run_timed  # noqa: E402

# Targets in seconds (medians) for 10 shared micro-packages of F=10, by project count.
TARGETS = {10: {"no-op": 1.5, "cold": 10.0}, 40: {"no-op": 1.0, "cold": 10.0}}


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


def measure(micropkg: Path, folder: Path, projects: int, micropkgs: int, files: int, repeat: int) -> dict[str, list[float]]:
    """Cold, no-op and check timings for one monorepo size; the first round warms caches and is not counted."""
    timings: dict[str, list[float]] = {"cold": [], "no-op": [], "check": []}
    template = folder / f"template-{projects}"
    modules = generate_monorepo(template, projects, micropkgs, files)
    for attempt in range(repeat + 1):
        copy = folder / f"run-{projects}-{attempt}"
        shutil.copytree(template, copy)
        seconds, _ = run_timed([micropkg, "sync-shared", "--no-compile", "--quiet"], copy)
        check_synced(copy, projects, modules)
        again, done = run_timed([micropkg, "sync-shared", "--no-compile"], copy)
        if "everything was already in sync" not in done.stdout:
            raise BenchmarkError(f"the second sync-shared changed something:\n{done.stdout[-2000:]}")
        checked, _ = run_timed([micropkg, "sync-shared", "--check", "--quiet"], copy)
        if attempt:
            timings["cold"].append(seconds)
            timings["no-op"].append(again)
            timings["check"].append(checked)
        shutil.rmtree(copy)
    shutil.rmtree(template)
    return timings


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 2:
        raise SystemExit("sizes are project counts of at least 2 (one source and a target), e.g. 10,20,40,80")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time micropkg sync-shared on generated monorepos.")
    parser.add_argument("--projects", default="10", help="project counts, comma-separated for a sweep (10,20,40,80)")
    parser.add_argument("--micropkgs", type=int, default=10)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--micropkg", help="console script to time (default: the one next to this interpreter)")
    args = parser.parse_args(argv)
    sizes = parse_sizes(args.projects)
    micropkg = find_micropkg(args.micropkg)
    info = machine()
    results: dict[int, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="micropkg-sync-bench-") as folder:
        try:
            for projects in sizes:
                results[projects] = measure(micropkg, Path(folder), projects, args.micropkgs, args.files, args.repeat)
        except BenchmarkError as exc:
            print(f"benchmark run failed: {exc}", file=sys.stderr)
            return 2
    print(f"machine: {info['cores']} cores, {info['cpu']}, Python {info['python']}; "
          f"load average {info['load_average_at_start']} at start, {load_average()} at end")
    print(f"monorepos: {args.micropkgs} shared micro-packages of {args.files} modules, from one source project "
          f"to every other project; {args.repeat} timed runs each, whole processes, medians (min)")
    print()
    # "per install" is the cold sync divided by its installs, start-up and the one-off build of each
    # micro-package included; "marginal" is what each install added over the size before (the
    # slope between neighbouring sizes), the cost that must not grow with the monorepo.
    print("| projects | installs | cold sync (s) | per install (ms) | marginal per install (ms) | no-op sync (s) "
          "| --check (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    status = 0
    cold_points, noop_points = [], []
    marginals: list[float] = []
    for projects in sizes:
        runs = results[projects]
        installs = (projects - 1) * args.micropkgs
        cold, noop, check = (statistics.median(runs[key]) for key in ("cold", "no-op", "check"))
        marginal = ""
        if cold_points:
            previous_installs, previous_cold = cold_points[-1]
            marginals.append((cold - previous_cold) / (installs - previous_installs) * 1000)
            marginal = f"{marginals[-1]:.1f}"
        cold_points.append((installs, cold))
        noop_points.append((projects, noop))
        print(f"| {projects} | {installs} | {cold:.3f} ({min(runs['cold']):.3f}) | {cold / installs * 1000:.1f} "
              f"| {marginal or '-'} | {noop:.3f} ({min(runs['no-op']):.3f}) | {check:.3f} ({min(runs['check']):.3f}) |")
        target = TARGETS.get(projects)
        if target and args.micropkgs == 10 and args.files == 10:
            for key, limit in target.items():
                verdict = "PASS" if statistics.median(runs[key]) < limit else "FAIL"
                status = status or (verdict == "FAIL")
                print(f"  target: {key} sync of {projects} projects under {limit:g} s: {verdict}")
    if len(sizes) > 1:
        a, b = fit_line(cold_points)
        c, d = fit_line(noop_points)
        per_install = [cold / installs * 1000 for installs, cold in cold_points]
        spread = (max(per_install) - min(per_install)) / statistics.fmean(per_install) * 100
        print(f"cold sync = {a:.3f} s + {b * 1000:.1f} ms per install; the cost per install (fixed costs "
              f"included) varies by {spread:.0f}% across the sizes")
        print(f"no-op sync = {c:.3f} s + {d * 1000:.1f} ms per project")
        if args.micropkgs == 10 and args.files == 10 and min(sizes) <= 10 and max(sizes) >= 80:
            # Each marginal cost within 20% of their mean: installs cost the same in a big monorepo.
            mean = statistics.fmean(marginals)
            worst = max(abs(value - mean) / mean * 100 for value in marginals)
            verdict = "PASS" if worst <= 20 else "FAIL"
            status = status or (verdict == "FAIL")
            print(f"  target: marginal cost per install flat within ±20% from {min(sizes)} to {max(sizes)} "
                  f"projects (furthest {worst:.0f}% from the mean of {mean:.1f} ms): {verdict}")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
