"""Interrupts: a real SIGINT in the middle of applying a pull or a sync leaves a consistent tree.

A child process runs the real ``micropkg`` CLI on prepared copies of the
fault-matrix scenarios (``tests/test_fault_matrix.py``), one run after the
other. In each run one apply sub-step is wrapped so that, at the chosen call,
a real SIGINT is delivered to the child:

* ``self``: the wrapper sends it with ``os.kill(os.getpid(), SIGINT)``, so it
  lands exactly at that call (every call index of every apply sub-step of the
  pull, and every file write of the sync);
* ``external``: the wrapper reports that it is paused there and sleeps, and
  the parent sends the SIGINT with ``os.kill(child_pid, SIGINT)``.

The CLI's own handler turns the signal into ``Interrupted``; no test code
raises it. The parent then checks that the run exited 128 + the signal's
number (130 for SIGINT) without a traceback, that the interrupted project is
byte-for-byte what it was (modes and mtimes included), that any other sync
target is untouched or completed, and that no ``.micropkg-backup`` /
``.micropkg-new`` file is left. A further set sends the signal right after
each file is moved aside, before the run can note it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from micropkg_tasks.core.errors import exit_code_for_signal
from tests.helpers import as_foreground, snapshot_tree
from tests.test_fault_matrix import (
    CHURN,
    CORE,
    FORECAST,
    FaultPoint,
    leftovers,
    pull_scenario,
    state,
    sync_scenario,
)

APPLY_STEPS = ("move-aside", "make-parents", "write", "rename-into-place", "chmod", "backup-cleanup")
# The signal arrives right after a file was moved aside: before the journal was trusted for the
# rollback, a run stopped there lost that file (its backup was left, the journal removed).
AFTER_MOVE_ASIDE = "after-move-aside"
# A second signal arrives while the first one's rollback is putting backups back: it must not cut
# the rollback short.
SECOND = "second-during-rollback"
EXTERNAL = ("write-0", "lock-write", "write-last")  # where the parent's own SIGINT is sent

CHILD = r"""
import contextlib, io, json, os, signal, sys, time
import micropkg_tasks.core.change.transaction as transaction
from micropkg_tasks._version import __version__
from micropkg_tasks.cli.collection import make_collection
from micropkg_tasks.cli.program import MicropkgProgram

REAL = {"_write_new": transaction._write_new, "_make_parents": transaction._make_parents,
        "replace": os.replace, "chmod": os.chmod, "unlink": os.unlink}
job = {}


def reached(detail):
    index = job["calls"]
    job["calls"] += 1
    if index != job["index"]:
        return
    job["fired"] = str(detail)
    if job["mode"] == "self":
        os.kill(os.getpid(), signal.SIGINT)
    else:
        # Block the stop signals, say where we are (the CLI's output is captured; the parent
        # listens on the real stdout), wait until the parent's signal is pending, then unblock:
        # the kernel delivers it to the real handler here, whenever the parent sent it.
        stop = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        print(json.dumps({"paused": job["label"]}), file=sys.__stdout__, flush=True)
        deadline = time.monotonic() + 60
        while not stop & set(signal.sigpending()) and time.monotonic() < deadline:
            time.sleep(0.005)
        if not stop & set(signal.sigpending()):
            job["fired"] = "no SIGINT arrived"
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop)


def write_new(path, content):
    if job["step"] in ("write", "second-during-rollback"):
        reached(path)
    return REAL["_write_new"](path, content)


def make_parents(path, *args):
    result = REAL["_make_parents"](path, *args)
    if job["step"] == "make-parents":
        reached(path)
    return result


def replace(src, dst, *args, **kwargs):
    if job["step"] == "move-aside" and str(dst).endswith(".micropkg-backup"):
        reached(src)
    if job["step"] == "after-move-aside" and str(dst).endswith(".micropkg-backup"):
        # The signal lands just after the file was moved aside, before the run can note it.
        result = REAL["replace"](src, dst, *args, **kwargs)
        reached(src)
        return result
    if job["step"] == "rename-into-place" and str(src).endswith(".micropkg-new"):
        reached(dst)
    if job["step"] == "second-during-rollback" and str(src).endswith(".micropkg-backup") and job["fired"] \
            and not job.get("second"):
        # A second signal while the first one's rollback puts the first backup back.
        job["second"] = str(src)
        os.kill(os.getpid(), signal.SIGTERM)
    return REAL["replace"](src, dst, *args, **kwargs)


def chmod(path, mode, *args, **kwargs):
    if job["step"] == "chmod" and not str(path).endswith(".txt.tmp"):
        reached(path)
    return REAL["chmod"](path, mode, *args, **kwargs)


def unlink(path, *args, **kwargs):
    if job["step"] == "backup-cleanup" and str(path).endswith(".micropkg-backup"):
        reached(path)
    return REAL["unlink"](path, *args, **kwargs)


transaction._write_new, transaction._make_parents = write_new, make_parents
os.replace, os.chmod, os.unlink = replace, chmod, unlink

for item in json.loads(sys.stdin.readline()):
    job.clear()
    job.update(item, calls=0, fired=None)
    os.chdir(item["cwd"])
    program = MicropkgProgram(namespace=make_collection(), version=__version__, name="micropkg",
                              binary="micropkg", binary_names=["micropkg"])
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            program.run(["micropkg", *item["argv"]], exit=True)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    print(json.dumps({"label": item["label"], "code": code, "stdout": out.getvalue(),
                      "stderr": err.getvalue(), "fired": job["fired"], "second": job.get("second")}), flush=True)
"""


@dataclass
class Run:
    label: str
    workspace: Path
    before: dict[str, Any]  # project -> snapshot_tree
    result: dict[str, Any]


def _jobs(points: list[FaultPoint], mode: str) -> list[tuple[str, FaultPoint]]:
    return [(f"{mode}-{point.label}", point) for point in points]


def _external_points(points: list[FaultPoint]) -> list[FaultPoint]:
    writes = [point for point in points if point.step.name == "write"]
    chosen = {"write-0": writes[0], "write-last": writes[-1]}
    chosen["lock-write"] = next(point for point in points if point.label.startswith("lock-write"))
    return [chosen[name] for name in EXTERNAL]


def run_child(scenario_base: Path, projects: tuple[str, ...], cwd: str, argv: list[str],
              jobs: list[tuple[str, FaultPoint, str]]) -> dict[str, Run]:
    """Prepare a copy per job, run them all in one child, send the external SIGINTs."""
    folder = Path(tempfile.mkdtemp(prefix="micropkg-interrupts-"))
    runs: dict[str, Run] = {}
    payload = []
    for number, (label, point, mode) in enumerate(jobs):
        workspace = Path(shutil.copytree(scenario_base, folder / f"run-{number}", symlinks=True))
        before = {project: snapshot_tree(workspace / project) for project in projects}
        runs[label] = Run(label, workspace, before, {})
        step = next((s for s in (AFTER_MOVE_ASIDE, SECOND) if label.startswith(f"self-{s}")), point.step.name)
        payload.append({"label": label, "cwd": str(workspace / cwd), "argv": argv, "mode": mode,
                        "step": step, "index": point.index})
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=as_foreground)
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(json.dumps(payload) + "\n")
    child.stdin.close()
    for line in child.stdout:
        message = json.loads(line)
        if "paused" in message:
            os.kill(child.pid, SIGNAL_OF_PREFIX[message["paused"].split("-", 1)[0]])
        else:
            runs[message["label"]].result = message
    stderr = child.stderr.read() if child.stderr else ""
    assert child.wait(timeout=120) == 0, stderr
    atexit_cleanup(folder)
    return runs


def atexit_cleanup(folder: Path) -> None:
    import atexit

    atexit.register(shutil.rmtree, folder, ignore_errors=True)


# What the parent sends to a paused child, by the label's first word. CI cancellation, ``timeout``
# and ``docker stop`` send SIGTERM, a closed terminal SIGHUP: both must stop a run like Ctrl-C.
SIGNAL_OF_PREFIX = {"external": signal.SIGINT, "sigterm": signal.SIGTERM, "sighup": signal.SIGHUP}


def _stop_signal_jobs(points: list[FaultPoint]) -> list[tuple[str, FaultPoint, str]]:
    return [
        (f"{prefix}-{name}", point, "external")
        for prefix in SIGNAL_OF_PREFIX
        for name, point in zip(EXTERNAL, _external_points(points))
    ]


def _second_signal_points(points: list[FaultPoint]) -> list[FaultPoint]:
    """The second, the middle and the last file write: files were moved aside before each."""
    writes = [point for point in points if point.step.name == "write"]
    return [writes[1], writes[len(writes) // 2], writes[-1]]


@functools.lru_cache(maxsize=None)
def pull_runs() -> dict[str, Run]:
    scenario = pull_scenario()
    points = [p for p in scenario.points if p.step.name in APPLY_STEPS]
    jobs = [(f"self-{p.label}", p, "self") for p in points]
    jobs += [(f"self-{AFTER_MOVE_ASIDE}-{p.label}", p, "self") for p in points if p.step.name == "move-aside"]
    jobs += [(f"self-{SECOND}-{p.label}", p, "self") for p in _second_signal_points(points)]
    jobs += _stop_signal_jobs(points)
    argv = ["pull", "../sdists/cleaning-0.2.tar.gz", "--destination", "pipelines", "--no-compile"]
    return run_child(scenario.base, ("project",), "project", argv, jobs)


@functools.lru_cache(maxsize=None)
def sync_runs() -> dict[str, Run]:
    scenario = sync_scenario()
    points = [p for p in scenario.points if p.step.name == "write"]
    jobs = [(f"self-{p.label}", p, "self") for p in points]
    jobs += _stop_signal_jobs(points)
    argv = ["sync-shared", "--no-compile", "--jobs", "1"]
    return run_child(scenario.base, (CORE, CHURN, FORECAST), ".", argv, jobs)


def _labels(kind: str) -> list[Any]:
    scenario = pull_scenario() if kind == "pull" else sync_scenario()
    steps = APPLY_STEPS if kind == "pull" else ("write",)
    points = [p for p in scenario.points if p.step.name in steps]
    params = [pytest.param(f"self-{point.label}", id=f"self-{point.label}") for point in points]
    if kind == "pull":
        params += [
            pytest.param(f"self-{AFTER_MOVE_ASIDE}-{p.label}", id=f"self-{AFTER_MOVE_ASIDE}-{p.label}")
            for p in points if p.step.name == "move-aside"
        ]
        params += [pytest.param(f"self-{SECOND}-{p.label}", id=f"self-{SECOND}-{p.label}")
                   for p in _second_signal_points(points)]
    params += [
        pytest.param(f"{prefix}-{name}", id=f"{prefix}-{name}") for prefix in SIGNAL_OF_PREFIX for name in EXTERNAL
    ]
    return params


def check_interrupted(run: Run) -> None:
    result = run.result
    assert result, f"{run.label}: the child never ran it"
    assert result["fired"] not in (None, "no SIGINT arrived"), f"{run.label}: the SIGINT was not delivered there"
    sent = SIGNAL_OF_PREFIX.get(run.label.split("-", 1)[0], signal.SIGINT)
    assert result["code"] == exit_code_for_signal(signal.Signals(sent).name), result
    assert "Traceback" not in result["stderr"]
    assert leftovers(run.workspace) == [], f"{run.label}: backup or temporary files left"


@pytest.mark.parametrize("label", _labels("pull"))
def test_sigint_during_pull_apply_leaves_the_project_exactly_as_it_was(label: str) -> None:
    run = pull_runs()[label]
    check_interrupted(run)
    if SECOND in label:
        assert run.result["second"], f"{label}: the rollback put no backup back"
    if "backup-cleanup" in label:  # after the commit point: the pull must stand, complete
        assert state(run.workspace / "project") == pull_scenario().completed["project"]
    else:
        assert snapshot_tree(run.workspace / "project") == run.before["project"]


@pytest.mark.parametrize("label", _labels("sync"))
def test_sigint_during_sync_apply_leaves_each_target_untouched_or_completed(label: str) -> None:
    run = sync_runs()[label]
    check_interrupted(run)
    scenario = sync_scenario()
    fired = run.result["fired"]
    assert snapshot_tree(run.workspace / CORE) == run.before[CORE]
    for project in (CHURN, FORECAST):
        root = run.workspace / project
        untouched = snapshot_tree(root) == run.before[project]
        if fired.startswith(str(root)):
            assert untouched, f"{project} was interrupted but not restored"
        else:
            assert untouched or state(root) == scenario.completed[project], f"{project} is in between"


# -- what an interrupted run says -------------------------------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigint_during_a_three_target_sync_says_how_each_target_was_left_and_exits_130(tmp_path, jobs):
    """Ctrl-C (SIGINT to the process group) once the first target is fully written: one line per
    target, each true of the tree, and exit 130. With ``--jobs 1`` the targets are written in this
    process one after the other; with ``--jobs 2`` in workers, which finish what they started."""
    from tests.conftest import REPO_ROOT, kedro_project
    from tests.helpers import build_file_tree
    from tests.test_signal_loops import bulk_source

    names = ("projects/alpha", "projects/beta", "projects/gamma")
    monorepo = build_file_tree(tmp_path / "monorepo", {
        "pyproject.toml": '[tool.micropkg.monorepo]\nprojects = ["projects/*"]\n\n[[tool.micropkg.shared]]\n'
        f'micropkg = "pipelines.bulk"\nsource = "projects/core"\ntargets = {json.dumps(list(names))}\n',
    }, dedent=False)
    core = kedro_project(monorepo / "projects/core", "core", extra={"tests/pipelines/__init__.py": ""})
    build_file_tree(core, bulk_source("0.1"), dedent=False)
    roots = {name: kedro_project(monorepo / name, name.split("/")[1]) for name in names}
    before = {name: snapshot_tree(root) for name, root in roots.items()}
    first_lock = roots[names[0]] / "micropkg.lock"

    child = subprocess.Popen(
        [sys.executable, "-m", "micropkg_tasks", "sync-shared", "--no-compile", "--jobs", jobs], cwd=monorepo,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True, preexec_fn=as_foreground,
    )
    try:
        deadline = time.monotonic() + 120
        # Its lock names the new entry, and its journal is gone: that target's transaction is over.
        first_journal = roots[names[0]] / ".micropkg" / "journal"
        while not (first_lock.exists() and "pipelines.bulk" in first_lock.read_text(encoding="utf-8")
                   and not first_journal.exists()):
            assert child.poll() is None and time.monotonic() < deadline, "the first target was never written"
            time.sleep(0.002)
        os.killpg(child.pid, signal.SIGINT)
        stdout, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)

    assert child.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted by SIGINT:" in stderr
    said = dict(re.findall(r"^  (projects/\w+): (.+)$", stderr, re.MULTILINE))
    assert sorted(said) == list(names), stderr
    assert said[names[0]].startswith("completed"), stderr
    for name, root in roots.items():
        assert said[name].split(" (")[0] in ("completed", "rolled back", "not started"), said[name]
        installed = (root / "micropkg.lock").exists() and "pipelines.bulk" in (root / "micropkg.lock").read_text()
        if said[name].startswith("completed"):
            assert installed and leftovers(root) == [], f"{name}: said {said[name]}"
        else:
            assert snapshot_tree(root) == before[name], f"{name}: said {said[name]}, but it changed"
