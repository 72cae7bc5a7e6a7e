"""Time ``micropkg status`` at a monorepo root whose shared micro-package heads a long dependency chain.

The generated monorepo has two projects. In ``projects/core``, ``chain.m0000``
imports ``chain.m0001``, which imports ``chain.m0002``, and so on, ``--depth``
links deep; the package manifest lists every link. One ``[[tool.micropkg.shared]]``
entry shares ``chain.m0000`` with ``projects/app``, so ``status`` works out the
whole chain as the closure that ``sync-shared`` would install. Each link should be
analysed once: the time per link stays about the same as the chain grows.

Usage::

    .venv/bin/python benchmarks/chain.py [--depths 100,500] [--repeat 3] [--micropkg PATH]

Exit code 0 when every run succeeded and listed every link, 2 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import _project_skeleton, _write  # noqa: E402


def link(index: int) -> str:
    return f"m{index:04d}"


def generate_monorepo(root: Path, depth: int) -> Path:
    """A monorepo whose ``projects/core`` holds a chain of ``depth`` micro-packages."""
    _write(root / "pyproject.toml", (
        '[tool.micropkg.monorepo]\nprojects = ["projects/*"]\n\n[[tool.micropkg.shared]]\n'
        f'micropkg = "chain.{link(0)}"\nsource = "projects/core"\ntargets = ["projects/app"]\n'
    ))
    core = root / "projects/core"
    manifest = "[tool.kedro.micropkg.package]\n" + "".join(f'"chain.{link(i)}" = {{}}\n' for i in range(depth))
    _project_skeleton(core, "core_pkg", manifest, ["pyyaml"])
    _write(core / "src/core_pkg/chain/__init__.py", "")
    for i in range(depth):
        body = "def step(x):\n    return x + 1\n"
        if i + 1 < depth:
            body = (f"from core_pkg.chain.{link(i + 1)}.ops import step as nxt\n\n\n"
                    "def step(x):\n    return nxt(x) + 1\n")
        _write(core / f"src/core_pkg/chain/{link(i)}/__init__.py", '__version__ = "0.1"\n')
        _write(core / f"src/core_pkg/chain/{link(i)}/ops.py", body)
    _project_skeleton(root / "projects/app", "app_pkg", "", ["pyyaml"])
    return root


def time_status(micropkg: str, root: Path, depth: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = subprocess.run([micropkg, "status", "--json"], cwd=root, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if result.returncode not in (0, 1):
            raise SystemExit(f"depth {depth}: status exited {result.returncode}: {result.stderr.strip()}")
        rows = [row for row in json.loads(result.stdout)["rows"] if row["project"] == "projects/app"]
        if len(rows) != depth:
            raise SystemExit(f"depth {depth}: status listed {len(rows)} shared copies for projects/app, not {depth}")
        best = min(best, elapsed)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="100,500", help="comma-separated chain lengths")
    parser.add_argument("--repeat", type=int, default=3, help="runs per depth; the best is kept")
    parser.add_argument("--micropkg", default=str(Path(sys.executable).with_name("micropkg")),
                        help="console script to time (default: the one next to this interpreter)")
    options = parser.parse_args(argv)
    depths = sorted(int(part) for part in options.depths.split(","))
    timings = {}
    with tempfile.TemporaryDirectory() as folder:
        for depth in depths:
            root = generate_monorepo(Path(folder) / f"mono{depth}", depth)
            timings[depth] = time_status(options.micropkg, root, depth, options.repeat)
            print(f"depth {depth:>5}: micropkg status at the root {timings[depth]:7.2f} s "
                  f"({timings[depth] / depth * 1000:6.1f} ms per link)")
    if len(depths) > 1:
        growth = (timings[depths[-1]] / depths[-1]) / (timings[depths[0]] / depths[0])
        print(f"time per link, deepest / shallowest: {growth:.2f} (about 1 when linear)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
