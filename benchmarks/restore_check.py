"""Time the check a pull makes on every restore record, in process, on the benchmark projects' sdists.

Generates the producer project of ``run.py`` (``--micropkgs`` micro-packages of
``--files`` modules), packages it with the ``micropkg`` console script, then takes
every file whose restore record changes it and times, over all of them:

* the token check a pull makes first (``ExactRestore._proven_by_tokens``);
* the rewriter's check it falls back to: packaging the restored text again
  (``rewrite_module`` with the packaging moves; kept syntax trees dropped first, as
  in a new process).

Every file must pass the token check, which is what keeps a pull off the
rewriter's path; the script exits 2 otherwise.

Usage::

    .venv/bin/python benchmarks/restore_check.py [--micropkgs 20] [--files 10] [--repeat 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate_project  # noqa: E402

from micropkg_tasks.core.rewrite.restore import ExactRestore, restore, restore_source  # noqa: E402
from micropkg_tasks.core.rewrite.rewriter import ModuleMove, rewrite_module  # noqa: E402
from micropkg_tasks.core.sdist.read import read_sdist  # noqa: E402

Case = tuple[ExactRestore, str, str, str, str]  # check, key, packaged, restored, installed


def cases(dist: Path) -> list[Case]:
    found: list[Case] = []
    for path in sorted(dist.glob("*.tar.gz")):
        sdist = read_sdist(path.read_bytes(), source=str(path))
        ours = restore_source(sdist.micropkg, sdist.files, sdist.source, sdist.name)
        assert ours is not None
        records, project, module = ours
        full = (ModuleMove(f"{project}.{module}", f"consumer.pipelines.{sdist.name}"),)
        packaging = (ModuleMove(f"{project}.{module}", sdist.name), ModuleMove(f"tests.{module}", "tests"))
        for prefix, files in ((f"{sdist.name}/", sdist.package_files()), ("tests/", sdist.test_files())):
            check = ExactRestore(records, full, prefix, packaging, sdist.source)
            for relative, data in files.items():
                key, packaged = f"{prefix}{relative}", data.decode()
                restored = restore(packaged, records[key]) if key in records else packaged
                if relative.endswith(".py") and restored is not None and restored != packaged:
                    installed = rewrite_module(restored, list(full)).code
                    found.append((check, key, packaged, restored, installed))
    return found


def best(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--micropkgs", type=int, default=20)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; the best is kept")
    parser.add_argument("--micropkg", default=str(Path(sys.executable).with_name("micropkg")))
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        generated = generate_project(Path(folder) / "producer", options.micropkgs,
                                     files_per_micropkg=options.files)
        subprocess.run([options.micropkg, "package", "--all", "--quiet"], cwd=generated.root, check=True)
        found = cases(generated.root / "dist")
    proven = sum(check._proven_by_tokens(check.records[key], packaged, installed)
                 for check, key, packaged, _, installed in found)
    if proven != len(found):
        print(f"only {proven} of {len(found)} records passed the token check", file=sys.stderr)
        return 2

    def tokens() -> None:
        for check, key, packaged, _, installed in found:
            check._proven_by_tokens(check.records[key], packaged, installed)

    def rewriter() -> None:
        run = f"# run {uuid.uuid4().hex}\n"  # every text new to the rewriter's kept trees: parsed again
        for check, _, _, restored, _ in found:
            rewrite_module(run + restored, list(check.packaging_moves))

    token_time, rewriter_time = best(tokens, options.repeat), best(rewriter, options.repeat)
    print(f"{len(found)} files with a record that changes them, all proven by tokens")
    print(f"token check    {token_time * 1000:8.1f} ms  ({token_time / len(found) * 1e6:6.0f} us per file)")
    print(f"rewriter check {rewriter_time * 1000:8.1f} ms  ({rewriter_time / len(found) * 1e6:6.0f} us per file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
