"""Signal loops: SIGTERM, SIGINT and SIGHUP at varied moments of the apply window of ``pull`` and ``sync-shared``.

Each run is a real ``python -m micropkg_tasks`` process (the console script, from
this checkout), in its own session; each run changes about 85 files per
project. The test waits until the run's journal appears (its apply window has
begun), so every signal can be aimed at the apply window however short; it waits
a further delay drawn from a seeded generator over most of the window's
measured length (a loaded machine stretches some runs and shortens others), and sends the signal: SIGTERM to the process (as ``kill`` and
``timeout`` do), SIGINT and SIGHUP to its process group (as Ctrl-C and a
closed terminal do). Then:

* no backup file may be left without a journal, and no traceback printed;
* the run exits 128 + the signal's number (or 0 if it had finished), and says
  for each project whether it was completed, rolled back or not started;
* after ``micropkg recover``, each project is exactly as before (mtimes
  included) or exactly the state a clean run reaches, as the run said.

The runs go back and forth between two versions, so the tree one run leaves
is the starting point of the next. The figures (kills that landed while a
journal was on disk, outcomes) are printed at the end of each loop (``-s``).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from micropkg_tasks import package
from micropkg_tasks.core.change.interrupts import COMPLETED, NOT_STARTED, ROLLED_BACK
from micropkg_tasks.core.errors import exit_code_for_signal
from tests.conftest import REPO_ROOT, kedro_project, run_micropkg
from tests.helpers import as_foreground, build_file_tree, snapshot_tree

MODULES = 80  # files in the micro-package (each run also writes the lock, parameters and tests)
# Per loop: (signal, how many), sent in a shuffled order.
KILLS = ((signal.SIGTERM, 40), (signal.SIGINT, 40), (signal.SIGHUP, 20))
TO_GROUP = {signal.SIGINT, signal.SIGHUP}  # Ctrl-C and a closed terminal reach the whole group
WAIT_SECONDS = 60  # every wait is bounded: a run that hangs fails the test instead
SEED = 23
AIM = 0.8  # signals are sent within this share of the clean run's apply window
# Signals that must land while a journal is on disk, of 100: the loop's check on itself that it
# tests the apply window (timing varies with the machine's load; the rest still must end before
# or after).
MIN_DURING_APPLY = 30


def bulk_source(version: str) -> dict[str, str]:
    """A micro-package whose every file changes from one version to the other."""
    files = {
        "src/core/pipelines/bulk/__init__.py": f'__version__ = "{version}"\n',
        "conf/base/parameters_bulk.yml": f"bulk_level: '{version}'\n",
        "tests/pipelines/bulk/__init__.py": "",
        "tests/pipelines/bulk/test_first.py": "from core.pipelines.bulk.m000 import VALUE_0\n\n\n"
        f"def test_first():\n    assert VALUE_0 == '{version}'\n",
    }
    for index in range(MODULES):
        files[f"src/core/pipelines/bulk/m{index:03d}.py"] = (
            f"from core.pipelines.bulk import m000\n\nVALUE_{index} = '{version}'\n"
        )
    return files


def content(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder with its bytes' hash and mode (no mtimes), without the run lock."""
    found: dict[str, tuple[str, int]] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(".micropkg") and path.name in (".micropkg", "lock", ".gitignore"):
            continue
        if path.is_dir() and not path.is_symlink():
            found[relative + "/"] = ("dir", 0)
        else:
            found[relative] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.lstat().st_mode & 0o7777)
    return found


def backups(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.name.endswith((".micropkg-backup", ".micropkg-new"))]


def journals(roots: list[Path]) -> list[Path]:
    return [root / ".micropkg" / "journal" for root in roots if (root / ".micropkg" / "journal").exists()]


def start(argv: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MICROPKG_DEBUG": ""}
    with open(log / "stdout", "wb") as out, open(log / "stderr", "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "micropkg_tasks", *argv], cwd=cwd, env=environment, stdout=out, stderr=err,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=as_foreground,
        )


def finish(process: subprocess.Popen) -> int:
    try:
        return process.wait(timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=WAIT_SECONDS)
        raise AssertionError(f"the run did not stop within {WAIT_SECONDS} s") from None


def wait_for_journal(process: subprocess.Popen, roots: list[Path]) -> float | None:
    """Poll until a journal appears in one of ``roots``; the time it appeared, or None if the run
    ended first."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if journals(roots):
            return time.monotonic()
        if process.poll() is not None:
            return None
        time.sleep(0.002)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError(f"no journal appeared within {WAIT_SECONDS} s")


def apply_window(argv: Callable[[str], list[str]], cwd: Path, roots: list[Path], log: Path, version: str) -> float:
    """Run cleanly once; how long a journal was on disk (the apply window, as seen from outside)."""
    process = start(argv(version), cwd, log)
    appeared = wait_for_journal(process, roots)
    assert appeared is not None, (log / "stderr").read_text()
    while journals(roots) and process.poll() is None:
        time.sleep(0.002)
    window = time.monotonic() - appeared
    assert finish(process) == 0, (log / "stderr").read_text()
    return window


REPORTED = re.compile(r"^  (\S+): (completed|rolled back|not started)", re.MULTILINE)


@dataclass
class Loop:
    """One signal loop: a command that flips between two versions of its projects."""

    cwd: Path
    roots: dict[str, Path]  # as the run names them -> project root
    argv: Callable[[str], list[str]]  # the command that brings the projects to a version
    prepare: Callable[[str], None]  # what the test does before such a run (sync: edit the source)
    recover: list[str]
    tally: Counter = field(default_factory=Counter)

    def run(self, log: Path) -> float:
        versions = ("0.1", "0.2")
        reference: dict[str, dict[str, dict[str, tuple[str, int]]]] = {}
        windows = []
        for version in ("0.2", "0.1"):  # clean runs both ways: the states each version leaves
            self.prepare(version)
            windows.append(apply_window(self.argv, self.cwd, list(self.roots.values()), log, version))
            reference[version] = {name: content(root) for name, root in self.roots.items()}
        window = min(windows)
        current = "0.1"
        schedule = [number for number, count in KILLS for _ in range(count)]
        generator = random.Random(SEED)
        generator.shuffle(schedule)
        for count, number in enumerate(schedule):
            target = versions[1 - versions.index(current)]
            self.prepare(target)
            before = {name: snapshot_tree(root) for name, root in self.roots.items()}
            delay = generator.uniform(0, AIM * window)
            process = start(self.argv(target), self.cwd, log)
            appeared = wait_for_journal(process, list(self.roots.values()))
            if appeared is not None:
                time.sleep(max(0.0, appeared + delay - time.monotonic()))
                during = bool(journals(list(self.roots.values())))
                with_signal = os.killpg if number in TO_GROUP else os.kill
                try:
                    with_signal(process.pid, number)
                except ProcessLookupError:
                    during = False
            else:
                during = False
            code = finish(process)
            stderr = (log / "stderr").read_text(encoding="utf-8")
            label = f"kill {count} ({signal.Signals(number).name} {delay:.3f} s into the apply window)"
            self.check(label, number, code, stderr, before, reference[target])
            after = {name: content(root) == reference[target][name] for name, root in self.roots.items()}
            if all(after.values()):
                current = target
            elif any(after.values()):  # one target done, the other not: bring the other along
                self.prepare(target)
                assert run_micropkg(self.argv(target), self.cwd).exit_code == 0, label
                current = target
            self.tally[f"{signal.Signals(number).name}"] += 1
            self.tally["during apply"] += during
            self.tally[f"exit {code}"] += 1
        return window

    def check(self, label: str, number: int, code: int, stderr: str, before, after) -> None:
        assert "Traceback" not in stderr, f"{label}: {stderr}"
        # 0: it had finished; -number: the signal ended it after its task had returned, by the
        # default action, as it ends any program (the shell shows 128 + number all the same).
        assert code in (0, -number, exit_code_for_signal(signal.Signals(number).name)), f"{label}: exit {code}"
        roots = list(self.roots.values())
        for root in roots:
            # A backup is never left without the journal that lists it.
            assert not backups(root) or journals([root]), f"{label}: backup without a journal in {root}"
        said = dict(REPORTED.findall(stderr))
        if code > 0:
            assert f"interrupted by {signal.Signals(number).name}" in stderr, f"{label}: {stderr}"
            assert sorted(said) == sorted(self.roots), f"{label}: not one line per project: {stderr}"
        recovered = run_micropkg(self.recover, self.cwd)
        assert recovered.exit_code == 0, f"{label}: {recovered.stderr}"
        for name, root in self.roots.items():
            assert not backups(root) and not journals([root]), f"{label}: {name}: leftovers after recover"
            if snapshot_tree(root) == before[name]:
                outcome = "before"
            else:
                assert content(root) == after[name], f"{label}: {name} is neither before nor after"
                outcome = "after"
            self.tally[f"{Path(name).name} {outcome}"] += 1
            assert code >= 0 or outcome == "after", f"{label}: {name} was left before by a finished run"
            if name in said:
                self.tally[f"said {said[name]}"] += 1
                expected = "after" if said[name] == COMPLETED else "before"
                assert said[name] in (COMPLETED, ROLLED_BACK, NOT_STARTED)
                assert outcome == expected, f"{label}: {name}: said {said[name]!r}, but the project is {outcome}"


def _report(kind: str, loop: Loop, window: float, started: float) -> None:
    print(f"\n{kind}: apply window {window:.3f} s, {dict(sorted(loop.tally.items()))}, "
          f"{time.monotonic() - started:.0f} s")


def test_signals_during_pull_leave_the_project_before_or_after(tmp_path: Path) -> None:
    started = time.monotonic()
    source = build_file_tree(tmp_path / "source", {
        "pyproject.toml": '[tool.kedro]\npackage_name = "core"\n', "src/core/__init__.py": "",
        "src/core/pipelines/__init__.py": "", "tests/__init__.py": "", "tests/pipelines/__init__.py": "",
    }, dedent=False)
    for version in ("0.1", "0.2"):
        build_file_tree(source, bulk_source(version), dedent=False)
        package(source, "pipelines.bulk", destination=str(tmp_path / "sdists"))
    project = kedro_project(tmp_path / "project", "churn")
    argv = lambda version: [  # noqa: E731
        "pull", str(tmp_path / f"sdists/bulk-{version}.tar.gz"), "--destination", "pipelines", "--no-compile",
    ]
    assert run_micropkg(argv("0.1"), project).exit_code == 0
    log = tmp_path / "log"
    log.mkdir()
    loop = Loop(project, {str(project): project}, argv, lambda version: None, ["recover"])
    window = loop.run(log)
    _report("pull", loop, window, started)
    assert sum(loop.tally[signal.Signals(n).name] for n, _ in KILLS) == 100
    # Most signals must land while the journal is on disk, or the loop tests little.
    assert loop.tally["during apply"] >= MIN_DURING_APPLY, loop.tally


def test_signals_during_sync_shared_leave_each_target_before_or_after(tmp_path: Path) -> None:
    started = time.monotonic()
    monorepo = build_file_tree(tmp_path / "monorepo", {
        "pyproject.toml": '[tool.micropkg.monorepo]\nprojects = ["projects/*"]\n\n'
        '[[tool.micropkg.shared]]\nmicropkg = "pipelines.bulk"\nsource = "projects/core"\n'
        'targets = ["projects/churn", "projects/forecast"]\n',
    }, dedent=False)
    core = kedro_project(monorepo / "projects/core", "core", extra={"tests/pipelines/__init__.py": ""})
    targets = {name: kedro_project(monorepo / "projects" / name, name) for name in ("churn", "forecast")}
    def prepare(version: str) -> None:
        shutil.rmtree(core / "src/core/pipelines/bulk", ignore_errors=True)
        build_file_tree(core, bulk_source(version), dedent=False)

    # Half the runs apply both targets in this process, half in two worker processes.
    runs = iter(range(1000))
    argv = lambda version: ["sync-shared", "--no-compile", "--jobs", str(1 + next(runs) % 2)]  # noqa: E731
    prepare("0.1")
    assert run_micropkg(argv("0.1"), monorepo).exit_code == 0
    log = tmp_path / "log"
    log.mkdir()
    roots = {f"projects/{name}": root for name, root in targets.items()}
    loop = Loop(monorepo, roots, argv, prepare, ["recover", "--all-projects"])
    window = loop.run(log)
    _report("sync-shared", loop, window, started)
    assert sum(loop.tally[signal.Signals(n).name] for n, _ in KILLS) == 100
    assert loop.tally["during apply"] >= MIN_DURING_APPLY, loop.tally
