"""Concurrency: runs started at the same moment on the same project never interleave their writes.

Two long-lived worker processes run the real ``micropkg`` CLI (``pull`` or
``sync-shared``) on the same fresh project or monorepo, released together at a
shared start time, iteration after iteration. Each worker records, from inside
its own process, when every transaction (``apply_changes``) began and ended;
the parent then checks, per iteration:

* no two transactions on the same project overlap in time (no interleaving);
* each run succeeded, or (with ``lock_timeout = 0``) failed with the clear
  "busy" message and exit code 1, having written nothing (a run that waited longer
  than its ``lock_timeout`` would fail the same way, so success means it did not);
* the final tree equals the tree a serial run of the same inputs gives, in a
  separate copy (for two different pulls: one of the two serial orders);
* no ``.micropkg-backup`` / ``.micropkg-new`` file is left behind.

``ITERATIONS`` and ``SYNC_ITERATIONS`` are the figures in ``docs/reliability.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from micropkg_tasks import package, pull
from micropkg_tasks.core.change.transaction import project_lock
from micropkg_tasks.core.errors import BusyError
from micropkg_tasks.ops.sync.sync import sync_shared
from tests.conftest import EXAMPLE_MONOREPO, kedro_project
from tests.helpers import build_file_tree
from tests.test_fault_matrix import leftovers, state

ITERATIONS = 20
SYNC_ITERATIONS = 20
LOCK_TIMEOUT = 20  # seconds a waiting run may wait; far more than a pull or sync takes here

# Runs the micropkg CLI for each job read from stdin, released at the job's start time, and
# reports its exit code, output and every apply_changes interval (monotonic ns).
WORKER = r"""
import contextlib, io, json, os, sys, time
import micropkg_tasks.ops.install.apply as install_module
from micropkg_tasks._version import __version__
from micropkg_tasks.cli.collection import make_collection
from micropkg_tasks.cli.program import MicropkgProgram

applies = []
real_apply = install_module.apply_changes

def observed_apply(root, changes, **options):
    start = time.monotonic_ns()
    try:
        return real_apply(root, changes, **options)
    finally:
        applies.append([str(root), start, time.monotonic_ns(), len(changes)])

install_module.apply_changes = observed_apply
print("ready", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    applies.clear()
    os.chdir(job["cwd"])
    os.environ["INVOKE_MICROPKG_LOCK_TIMEOUT"] = str(job["lock_timeout"])
    program = MicropkgProgram(namespace=make_collection(), version=__version__, name="micropkg",
                              binary="micropkg", binary_names=["micropkg"])
    out, err = io.StringIO(), io.StringIO()
    code = 0
    delay = job["start_at"] - time.time()
    if delay > 0:
        time.sleep(delay)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            program.run(["micropkg", *job["argv"]], exit=True)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    print(json.dumps({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(), "applies": applies}),
          flush=True)
"""


class Worker:
    def __init__(self, tmpdir: Path | None = None) -> None:
        env = None
        if tmpdir is not None:  # another shell, IDE or CI step: its own temp folder
            env = {**os.environ, "TMPDIR": str(tmpdir), "TEMP": str(tmpdir), "TMP": str(tmpdir)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready"

    def send(self, cwd: Path, argv: list[str], start_at: float, lock_timeout: float) -> None:
        job = {"cwd": str(cwd), "argv": argv, "start_at": start_at, "lock_timeout": lock_timeout}
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "worker died"
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def workers() -> Iterator[tuple[Worker, Worker]]:
    pair = (Worker(), Worker())
    try:
        yield pair
    finally:
        for worker in pair:
            worker.close()


@pytest.fixture
def workers_with_own_tmpdirs(tmp_path: Path) -> Iterator[tuple[Worker, Worker]]:
    """Two workers whose ``$TMPDIR`` differ, as runs started from two shells or a CI step do."""
    folders = [tmp_path / "tmp-one", tmp_path / "tmp-two"]
    for folder in folders:
        folder.mkdir()
    pair = (Worker(folders[0]), Worker(folders[1]))
    try:
        yield pair
    finally:
        for worker in pair:
            worker.close()


def race(workers: tuple[Worker, Worker], jobs: list[tuple[Path, list[str], float]]) -> list[dict[str, Any]]:
    start_at = time.time() + 0.05  # both workers sleep until the same moment, then run
    for worker, (cwd, argv, timeout) in zip(workers, jobs):
        worker.send(cwd, argv, start_at, timeout)
    return [worker.result() for worker in workers]


def assert_no_overlap(results: list[dict[str, Any]]) -> None:
    """No transaction of one worker overlaps in time with one of the other on the same project."""
    first, second = ([tuple(a) for a in r["applies"]] for r in results)
    for root_a, start_a, end_a, _ in first:
        for root_b, start_b, end_b, _ in second:
            if root_a == root_b:
                assert end_a <= start_b or end_b <= start_a, f"writes to {root_a} interleaved"


# -- two pulls of different micro-packages into one project -------------------------------------------


@pytest.fixture(scope="module")
def pull_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``sdists/`` with two micro-packages (both adding requirements), a fresh ``project/``, and
    the final state of each serial order of the two pulls."""
    root = tmp_path_factory.mktemp("pull-race")
    template = root / "template"
    source = build_file_tree(root / "source", {
        "pyproject.toml": '[tool.kedro]\npackage_name = "core"\n',
        "src/core/__init__.py": "",
        "src/core/pipelines/__init__.py": "",
        "tests/__init__.py": "",
        **{f"src/core/pipelines/{name}/{f}": text for name in ("alpha", "beta") for f, text in {
            "__init__.py": f'"""{name}."""\n__version__ = "0.1"\n',
            "nodes.py": f"from core.pipelines.{name}.util import VALUE\n\n\ndef run():\n    return VALUE\n",
            "util.py": "VALUE = 1\n",
            "requirements.txt": f"small-{'a' if name == 'alpha' else 'b'}>=1.0\n",
        }.items()},
    }, dedent=False)
    for name in ("alpha", "beta"):
        package(source, f"pipelines.{name}", destination=str(template / "sdists"))
    kedro_project(template / "project", "churn")
    finals = []
    for order in (("alpha", "beta"), ("beta", "alpha")):
        copy = shutil.copytree(template, root / f"serial-{'-'.join(order)}")
        for name in order:
            pull(copy / "project", str(copy / f"sdists/{name}-0.1.tar.gz"), destination="pipelines")
        finals.append(state(copy / "project"))
    assert finals[0] != finals[1]  # requirements.in keeps the order of the pulls
    return {"root": root, "template": template, "finals": finals}


def pull_argv(workspace: Path, name: str) -> list[str]:
    return ["pull", str(workspace / f"sdists/{name}-0.1.tar.gz"), "--destination", "pipelines", "--no-compile"]


def test_two_pulls_started_together_wait_for_each_other_and_never_interleave(workers, pull_template):
    for iteration in range(ITERATIONS):
        workspace = shutil.copytree(pull_template["template"], pull_template["root"] / f"race-{iteration}")
        project = workspace / "project"
        results = race(workers, [
            (project, pull_argv(workspace, "alpha"), LOCK_TIMEOUT),
            (project, pull_argv(workspace, "beta"), LOCK_TIMEOUT),
        ])
        for result in results:
            assert result["code"] == 0, result["stderr"]
            assert len(result["applies"]) == 1
        assert_no_overlap(results)
        assert leftovers(workspace) == []
        assert state(project) in pull_template["finals"], f"iteration {iteration}: not a serial outcome"


def test_two_pulls_with_different_tmpdirs_never_interleave(workers_with_own_tmpdirs, pull_template):
    """The lock lives in the project (``.micropkg/lock``), not under ``$TMPDIR``: two runs that
    do not share a temp folder still wait for each other, and no pull's lock or requirements
    entries are lost."""
    for iteration in range(ITERATIONS):
        workspace = shutil.copytree(pull_template["template"], pull_template["root"] / f"tmpdir-race-{iteration}")
        project = workspace / "project"
        results = race(workers_with_own_tmpdirs, [
            (project, pull_argv(workspace, "alpha"), LOCK_TIMEOUT),
            (project, pull_argv(workspace, "beta"), LOCK_TIMEOUT),
        ])
        for result in results:
            assert result["code"] == 0, result["stderr"]
            assert len(result["applies"]) == 1
        assert_no_overlap(results)
        assert leftovers(workspace) == []
        assert state(project) in pull_template["finals"], f"iteration {iteration}: not a serial outcome"


def test_a_pull_with_no_wait_reports_busy_clearly_or_runs_after(workers, pull_template):
    """With ``lock_timeout = 0`` the second run either gets the lock once it is free or stops at
    once with the busy message, having written nothing; the tree is a serial outcome either way."""
    solo = {}
    for name in ("alpha", "beta"):
        copy = shutil.copytree(pull_template["template"], pull_template["root"] / f"solo-{name}")
        pull(copy / "project", str(copy / f"sdists/{name}-0.1.tar.gz"), destination="pipelines")
        solo[name] = state(copy / "project")
    refusals = []
    for iteration in range(ITERATIONS):
        workspace = shutil.copytree(pull_template["template"], pull_template["root"] / f"busy-{iteration}")
        project = workspace / "project"
        results = race(workers, [
            (project, pull_argv(workspace, "alpha"), 0),
            (project, pull_argv(workspace, "beta"), 0),
        ])
        busy = [r for r in results if r["code"] != 0]
        refusals += busy
        for result in busy:
            assert result["code"] == 1
            assert "Traceback" not in result["stderr"] and result["applies"] == []
        assert len(busy) <= 1
        assert_no_overlap(results)
        assert leftovers(workspace) == []
        if busy:
            winner = "beta" if busy[0] is results[0] else "alpha"
            assert state(project) == solo[winner]
        else:
            assert state(project) in pull_template["finals"]
    # Two runs released together overlap in nearly every race, so some run must have been turned
    # away (19 or 20 of the 20 races here); with none, the runs waited instead of refusing.
    assert refusals, "no run was refused in any race: a lock_timeout of 0 waited"
    for result in refusals:
        assert result["stderr"].strip().endswith("is busy: another micropkg run is working on it (waited 0 s)")
        assert len(result["stderr"].strip().splitlines()) == 1


def test_a_timeout_of_zero_refuses_at_once_a_lock_that_frees_up_later(tmp_path):
    """Another holder keeps the project's lock until this run gives up, or for 5 s at most.
    ``timeout=0`` must refuse at once: a run that waited instead would get the lock once the
    holder lets go, and enter the block."""
    root = kedro_project(tmp_path / "project", "churn")
    held, given_up = threading.Event(), threading.Event()

    def holder() -> None:
        with project_lock(root, timeout=5):
            held.set()
            given_up.wait(timeout=5)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(timeout=30)
        with pytest.raises(BusyError) as caught:
            with project_lock(root, timeout=0):
                pytest.fail("timeout=0 waited for the lock and got it")
    finally:
        given_up.set()
        thread.join(timeout=30)
    assert str(caught.value) == f"project {root.resolve()} is busy: another micropkg run is working on it (waited 0 s)"
    with project_lock(root, timeout=0):  # free again: timeout=0 takes a free lock
        pass


# -- two sync-shared runs on one monorepo ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sync_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("sync-race")
    template = root / "template"
    shutil.copytree(EXAMPLE_MONOREPO, template, ignore=shutil.ignore_patterns("__pycache__", "dist", "*.pyc"))
    serial = shutil.copytree(template, root / "serial")
    assert sync_shared(serial, jobs=1).exit_code == 0
    assert sync_shared(serial, jobs=1).exit_code == 0  # the second of two serial runs changes nothing
    return {"root": root, "template": template, "final": state(serial)}


def test_two_sync_shared_runs_started_together_never_interleave(workers, sync_template):
    for iteration in range(SYNC_ITERATIONS):
        monorepo = shutil.copytree(sync_template["template"], sync_template["root"] / f"race-{iteration}")
        argv = ["sync-shared", "--no-compile", "--jobs", "1"]
        results = race(workers, [(monorepo, argv, LOCK_TIMEOUT), (monorepo, argv, LOCK_TIMEOUT)])
        for result in results:
            assert result["code"] == 0, result["stderr"]
        # Each target is written once, by whichever run got there first; the other finds it in sync
        # or, having planned before the first finished, waits and then writes nothing new.
        assert_no_overlap(results)
        assert leftovers(monorepo) == []
        assert state(monorepo) == sync_template["final"], f"iteration {iteration}: not the serial outcome"
