"""Time ``micropkg status`` on a project whose ``micropkg.lock`` has very many entries.

Builds a Kedro-layout project with N installed micro-packages (default 100,000),
each one module file under ``src/<pkg>/pipelines/``, recorded in ``micropkg.lock``
with its sha256, and each depending on the one before it (so every entry has a
dependent to report). The lock is written with the tool's own renderer, so its size
is what a pull would write. Then it times, as whole processes:

* ``micropkg status`` (text: the table, and a "needed by" line for every entry);
* ``micropkg status --json``.

Each figure is given as wall clock and as CPU time (user + system) of the process.

Every run's output is checked: every entry is listed as in sync with its dependent.
The in-process time to render the lock is printed too.

Usage::

    .venv/bin/python benchmarks/lock_scale.py [--entries 100000] [--repeat 3] [--keep]

Exit codes: 0 when every run succeeded, 2 when a run failed or its output is wrong.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import find_micropkg, load_average, machine  # noqa: E402

from micropkg_tasks.core.change.bounded import MIB  # noqa: E402
from micropkg_tasks.core.lock.lockfile import MAX_LOCK_BYTES, Lock, LockEntry, render_lock  # noqa: E402

PACKAGE = "bench"


def module_name(index: int) -> str:
    return f"p{index:06d}"


def build_project(root: Path, entries: int) -> tuple[float, int]:
    """Write the project and its lock; returns (seconds to render the lock, lock bytes)."""
    pipelines = root / "src" / PACKAGE / "pipelines"
    pipelines.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        f'[tool.kedro]\npackage_name = "{PACKAGE}"\nproject_name = "{PACKAGE}"\nkedro_init_version = "0.19.15"\n'
    )
    (root / "src" / PACKAGE / "__init__.py").write_text('__version__ = "0.1"\n')
    (pipelines / "__init__.py").write_text("")
    (root / "tests").mkdir()
    (root / "conf" / "base").mkdir(parents=True)
    lock = Lock()
    for index in range(entries):
        name = module_name(index)
        data = f"def node_{index}(x):\n    return x\n".encode()
        relative = f"src/{PACKAGE}/pipelines/{name}.py"
        (root / relative).write_bytes(data)
        module = f"pipelines.{name}"
        lock.entries[module] = LockEntry(
            module=module, name=name, source=f"dist/{name}-0.1.tar.gz", version="0.1",
            sdist_sha256=hashlib.sha256(name.encode()).hexdigest(),
            files={relative: hashlib.sha256(data).hexdigest()},
            depends_on=[f"pipelines.{module_name(index - 1)}"] if index else [],
        )
    started = time.perf_counter()
    text = render_lock(lock)
    rendered = time.perf_counter() - started
    data = text.encode("utf-8")
    (root / "micropkg.lock").write_bytes(data)
    return rendered, len(data)


def check_text(stdout: str, entries: int) -> None:
    table = [line for line in stdout.splitlines() if line.startswith("pipelines.")]
    needed = [line for line in stdout.splitlines() if " is needed by " in line]
    if len(table) != entries or any(" in sync " not in line for line in table) or len(needed) != entries - 1:
        raise SystemExit(f"status listed {len(table)} entries ({len(needed)} needed-by lines), expected {entries}")


def check_json(stdout: str, entries: int) -> None:
    packages = json.loads(stdout)["packages"]
    if len(packages) != entries or any(p["state"] != "in sync" for p in packages):
        raise SystemExit(f"status --json listed {len(packages)} entries, expected {entries} in sync")
    if packages[0]["needed_by"] != [f"pipelines.{module_name(1)}"]:
        raise SystemExit(f"status --json gave the first entry's dependents as {packages[0]['needed_by']}")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall clock and CPU time (user + system) of one whole process, and its output. On a
    shared machine the CPU time says more: it does not count the waits for other processes."""
    if hasattr(os, "sync"):
        os.sync()
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    cpu = _children_cpu() - cpu
    if done.returncode != 0:
        print(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}", file=sys.stderr)
        raise SystemExit(2)
    return elapsed, cpu, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000, help="lock entries (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each command (default 3, at least 1)")
    parser.add_argument("--micropkg", help="the micropkg console script (default: next to this interpreter)")
    parser.add_argument("--keep", action="store_true", help="keep the generated project")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.entries < 2:
        parser.error("--repeat must be at least 1 and --entries at least 2")
    micropkg = str(find_micropkg(args.micropkg))
    info = machine()
    print(f"{info['cores']} cores, {info['cpu']}, Python {info['python']}, "
          f"load average {info['load_average_at_start']}")
    folder = Path(tempfile.mkdtemp(prefix="micropkg-lock-scale-"))
    root = folder / "project"
    rendered, size = build_project(root, args.entries)
    print(f"{args.entries} entries: micropkg.lock is {size / MIB:.1f} MiB (the most the tool writes and reads is "
          f"{MAX_LOCK_BYTES // MIB} MiB); rendering it took {rendered:.3f} s")
    for label, extra, check in (("status", [], check_text), ("status --json", ["--json"], check_json)):
        times, cpus = [], []
        for _ in range(args.repeat):
            elapsed, cpu, stdout = timed([micropkg, "status", *extra], root)
            check(stdout, args.entries)
            times.append(elapsed)
            cpus.append(cpu)
        print(f"micropkg {label}: wall median {statistics.median(times):.3f} s, min {min(times):.3f} s; "
              f"CPU median {statistics.median(cpus):.3f} s, min {min(cpus):.3f} s ({args.repeat} runs)")
    print(f"load average at the end {load_average()}")
    if args.keep:
        print(f"kept {root}")
    else:
        subprocess.run(["rm", "-rf", str(folder)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
