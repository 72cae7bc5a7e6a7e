"""How much of the code libcst parses when ``package --all`` runs on a generated project.

The rewriter hands libcst only the top-level statements that need rewriting
(``core/rewrite/regions.py``). This script generates the benchmark project (see
``generate.py``), packages it in process with one job, and counts, for every file
the rewriter passes to libcst, the lines it parses: the regions' lines, or the whole
file when the file must be parsed whole. It prints those lines as a share of the
lines of every Python file packaged, and of the files that had something to rewrite.
Nothing is timed: the figures depend only on the generator and the rewriter.

Usage::

    .venv/bin/python benchmarks/rewrite_share.py [--micropkgs 20] [--files 10]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate_project  # noqa: E402

from micropkg_tasks.core.rewrite import cst as rewrite_cst  # noqa: E402
from micropkg_tasks.ops.package.package import package_all  # noqa: E402


def _lines(text: str) -> int:
    return text.count("\n") + (0 if text.endswith("\n") or not text else 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--micropkgs", type=int, default=20, help="micro-packages in the project (default 20)")
    parser.add_argument("--files", type=int, default=10, help="Python modules per micro-package (default 10)")
    args = parser.parse_args(argv)

    counts = {"rewritten files": 0, "rewritten lines": 0, "parsed lines": 0, "whole files": 0}
    regions = rewrite_cst.regions

    def counting(text, tree, hot):  # type: ignore[no-untyped-def]
        found = regions(text, tree, hot)
        counts["rewritten files"] += 1
        counts["rewritten lines"] += _lines(text)
        if found is None:
            counts["whole files"] += 1
            counts["parsed lines"] += _lines(text)
        else:
            counts["parsed lines"] += sum(_lines(text[region.start:region.end]) for region in found)
        return found

    rewrite_cst.regions = counting
    folder = Path(tempfile.mkdtemp(prefix="micropkg-rewrite-share-"))
    try:
        project = generate_project(folder / "project", args.micropkgs, args.files)
        python = [path for path in (project.root / "src").rglob("*.py") if "pipelines" in path.parts]
        python += list((project.root / "tests").rglob("*.py"))
        total = sum(_lines(path.read_text(encoding="utf-8")) for path in python)
        batch = package_all(project.root, jobs=1, destination=str(folder / "dist"))
        if len(batch.results) != args.micropkgs:
            print(f"packaging gave {len(batch.results)} sdists, expected {args.micropkgs}", file=sys.stderr)
            return 2
    finally:
        rewrite_cst.regions = regions
        shutil.rmtree(folder, ignore_errors=True)
    parsed = counts["parsed lines"]
    print(f"{args.micropkgs} micro-packages of {args.files} modules: {len(python)} Python files, {total} lines")
    print(f"files with something to rewrite: {counts['rewritten files']} ({counts['rewritten lines']} lines), "
          f"{counts['whole files']} of them parsed whole")
    print(f"lines libcst parsed: {parsed}, {100 * parsed / total:.1f}% of all lines, "
          f"{100 * parsed / max(counts['rewritten lines'], 1):.1f}% of the lines of the files it rewrote")
    return 0


if __name__ == "__main__":
    sys.exit(main())
