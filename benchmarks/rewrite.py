"""Time the import rewriter alone, in process, on a realistic mix of files.

A quarter of the files import the micro-package by its absolute path and need a
libcst rewrite; a quarter only use relative imports (scanned, left as they are);
half never mention the package (probed and skipped). The first run of each size
also pays for loading libcst, so it is reported apart from the median.

Usage::

    .venv/bin/python benchmarks/rewrite.py [--sizes 50,200,800] [--repeat 5]

Exit codes: 0 when every run rewrote exactly the expected files, 2 otherwise.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from micropkg_tasks.core.rewrite.rewriter import ModuleMove, rewrite_module  # noqa: E402

PACKAGE = "spaceflights"
MOVES = [ModuleMove(f"{PACKAGE}.pipelines.data_cleaning", "data_cleaning")]


def corpus(size: int) -> list[str]:
    body = "\n".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(40))
    needs_rewrite = f"from {PACKAGE}.pipelines.data_cleaning.nodes import clean\n" + body
    scanned_only = "from .nodes import clean\nfrom ..utils import io\n" + body
    probed_only = "import os\nfrom .nodes import clean\n" + body
    quarter = size // 4
    kinds = [needs_rewrite] * quarter + [scanned_only] * quarter + [probed_only] * (size - 2 * quarter)
    # Every file different, so no file is served by another's parse (the rewriter keeps trees by text).
    return [f"# file {index}\n{text}" for index, text in enumerate(kinds)]


def rewrite_all(files: list[str]) -> float:
    # Each run parses every file, as a new process would: the rewriter keeps trees by text,
    # so a line naming the run makes every file new to it.
    run = uuid.uuid4().hex
    files = [f"# run {run}\n{text}" for text in files]
    start = time.perf_counter()
    results = [
        rewrite_module(text, MOVES, project_package=PACKAGE, package_depth=0, filename="x.py") for text in files
    ]
    elapsed = time.perf_counter() - start
    changed = sum(result.changed for result in results)
    if changed != len(files) // 4:
        raise SystemExit(f"rewrite.py: expected {len(files) // 4} rewritten files, got {changed}")
    return elapsed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,800")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print("| files | first run (s) | median (s) | min (s) | per file (ms) |")
    print("|---:|---:|---:|---:|---:|")
    for size in (int(part) for part in args.sizes.split(",")):
        files = corpus(size)
        first = rewrite_all(files)
        times = [rewrite_all(files) for _ in range(args.repeat)]
        median = statistics.median(times)
        print(f"| {size} | {first:.3f} | {median:.3f} | {min(times):.3f} | {1000 * median / size:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
