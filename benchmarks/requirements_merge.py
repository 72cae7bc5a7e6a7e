"""Time merging requirements into a large ``requirements.in`` (the pure function pull and sync use).

For each size N, ``requirements.in`` holds N lines ``pkgI>=1`` and the incoming
micro-package asks for N requirements: half already present, half overlapping
(``pkgI<5``), so every line is matched, added and reported. The merge must grow
linearly: the figure printed last is the time per line at the largest size
divided by the time per line at the smallest, which stays near 1 for a linear
merge and grows with N for a quadratic one.

Usage::

    .venv/bin/python benchmarks/requirements_merge.py [--sizes 1000,10000,30000] [--repeat 3]

Exit code 0 when every merge gave the expected result and the largest size took
under ``--limit`` seconds (default 10), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from micropkg_tasks.core.requirements.merge import merge_requirements


def _inputs(size: int) -> tuple[str, list[str]]:
    existing = "".join(f"pkg{i}>=1\n" for i in range(size))
    incoming = [f"pkg{i}>=1" if i % 2 == 0 else f"pkg{i}<5" for i in range(size)]
    return existing, incoming


def measure(size: int, repeat: int) -> float:
    existing, incoming = _inputs(size)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = merge_requirements(existing, incoming, origin="pipelines.big")
        best = min(best, time.perf_counter() - started)
    if len(result.overlaps) != size // 2 or len(result.already_present) != size - size // 2:
        raise SystemExit(f"size {size}: unexpected merge result")
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,30000", help="comma-separated line counts")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the best is kept")
    parser.add_argument("--limit", type=float, default=10.0, help="seconds allowed for the largest size")
    options = parser.parse_args(argv)
    sizes = sorted(int(part) for part in options.sizes.split(","))
    timings = {size: measure(size, options.repeat) for size in sizes}
    for size, seconds in timings.items():
        print(f"{size:>7} lines: {seconds:7.3f} s  ({seconds / size * 1e6:6.1f} us per line)")
    growth = (timings[sizes[-1]] / sizes[-1]) / (timings[sizes[0]] / sizes[0])
    print(f"time per line, largest / smallest size: {growth:.2f} (about 1 when linear)")
    return 0 if timings[sizes[-1]] < options.limit else 1


if __name__ == "__main__":
    sys.exit(main())
