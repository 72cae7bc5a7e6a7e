"""Fault matrix: fail ``pull`` and ``sync-shared`` at every step, and check nothing is left in between.

Each scenario is an update that exercises every kind of change at once:
files created (in new folders), updated (one of them executable), deleted
(dropped upstream), ``requirements.in`` merged and ``micropkg.lock`` rewritten.

The fault points are enumerated, not guessed: a serial run without faults
counts how often each step's function is called (``_write_new`` once per file
written, ``os.replace`` once per file moved aside, ...), and every call index
of every step becomes its own test that fails exactly there. After each
fault the project (for sync: each target project) must be either

* byte-for-byte what it was, with modes and mtimes (``snapshot_tree``), or
* exactly the state a run without faults reaches (same files, bytes, modes),

never anything in between, and no ``.micropkg-backup`` / ``.micropkg-new`` /
compile temporary file may remain. Which of the two is required is fixed per
step: every step up to and including the last write of the transaction must
roll back; a failure to remove a backup after the commit point must leave the
completed change, with that one backup (which cannot be removed) the only stray
file; a failing compile must leave the completed pull with ``requirements.txt``
unchanged.

Faults are injected by monkeypatching the step's function to raise at the
chosen call (the one kind of mock the hardening issue allows), with the error
a real failure there would raise: ``OSError`` for file-system steps,
``MicropkgError`` for fetch, extract, build and compile, ``ProjectError`` for
the rewriter, ``RuntimeError`` (an unexpected bug) for staging.
"""

from __future__ import annotations

import atexit
import errno
import functools
import hashlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

import micropkg_tasks.core.change.staging as staging_module
import micropkg_tasks.core.change.transaction as transaction
import micropkg_tasks.core.rewrite.restore as restore_module
import micropkg_tasks.ops.compile.compile as compile_module
import micropkg_tasks.ops.install.files as install_files
import micropkg_tasks.ops.pull.pull as pull_module
import micropkg_tasks.ops.sync.sync as sync_module
import micropkg_tasks.ops.sync.target as sync_target_module
from micropkg_tasks import package
from micropkg_tasks.core.errors import MicropkgError, ProjectError
from micropkg_tasks.core.project.manifest import PullEntry
from micropkg_tasks.ops.inspect.recover import recover_project
from micropkg_tasks.ops.pull.pull import pull_batch
from micropkg_tasks.ops.sync.sync import sync_shared
from tests.conftest import EXAMPLE_MONOREPO, kedro_project
from tests.helpers import build_file_tree, snapshot_tree

LEFTOVER_SUFFIXES = (".micropkg-backup", ".micropkg-new", ".txt.tmp")

# -- states -------------------------------------------------------------------------------------------


def state(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder below ``root`` with its content hash and mode (no mtimes): two
    separate copies that went through the same steps have equal states."""
    result: dict[str, tuple[str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            path = Path(dirpath, name)
            result[path.relative_to(root).as_posix() + "/"] = ("dir", 0)
        for name in filenames:
            path = Path(dirpath, name)
            mode = path.lstat().st_mode
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(mode) else "other"
            result[path.relative_to(root).as_posix()] = (digest, stat.S_IMODE(mode))
    return result


def leftovers(root: Path) -> list[str]:
    """Temporary and backup files, and transaction journals (``.micropkg/journal``), below ``root``."""
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.name.endswith(LEFTOVER_SUFFIXES) or (path.name.startswith(".requirements.") and "tmp" in path.name)
        or (path.parent.name == ".micropkg" and path.name.startswith("journal"))
    )


def scratch_folder(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def copy_workspace(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


# -- fault injection ----------------------------------------------------------------------------------


class Trigger:
    """Counts the calls of one step and raises at call ``fail_at`` (never, when None)."""

    def __init__(
        self, fail_at: int | None, error: Callable[[str], BaseException],
        context: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.fail_at = fail_at
        self.error = error
        self.context = context  # where the run is when the fault fires (sync: the target)
        self.calls = 0
        self.details: list[str] = []  # what each call was about (a path, usually)
        self.fired: str | None = None
        self.fired_context: str | None = None

    def hit(self, detail: str = "") -> None:
        index = self.calls
        self.calls += 1
        self.details.append(detail)
        if index == self.fail_at:
            self.fired = detail or f"call {index}"
            self.fired_context = self.context()
            raise self.error(detail)


def _disk_error(code: int) -> Callable[[str], BaseException]:
    return lambda detail: OSError(code, f"{os.strerror(code)} (injected)", detail or None)


@dataclass(frozen=True)
class Step:
    """One step of pull or sync-shared and how to make it fail at a given call."""

    name: str
    install: Callable[[pytest.MonkeyPatch, Trigger], None]
    error: Callable[[str], BaseException]
    expect: str = "before"  # "before": rolled back; "completed": the finished run


def _wrap_function(module: Any, attribute: str, describe: Callable[..., str] = lambda *a, **k: ""):
    def install(monkeypatch: pytest.MonkeyPatch, trigger: Trigger) -> None:
        real = getattr(module, attribute)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            trigger.hit(describe(*args, **kwargs))
            return real(*args, **kwargs)

        monkeypatch.setattr(module, attribute, wrapper)

    return install


def _wrap_functions(places: list[tuple[Any, str]], describe: Callable[..., str] = lambda *a, **k: ""):
    """``_wrap_function`` for one function called from several modules: one step, every call counts."""
    installs = [_wrap_function(module, attribute, describe) for module, attribute in places]

    def install(monkeypatch: pytest.MonkeyPatch, trigger: Trigger) -> None:
        for each in installs:
            each(monkeypatch, trigger)

    return install


def _wrap_after(module: Any, attribute: str):
    """Fail right after the real call did its work (for ``_make_parents``: after the folders exist)."""

    def install(monkeypatch: pytest.MonkeyPatch, trigger: Trigger) -> None:
        real = getattr(module, attribute)

        def wrapper(path: Path, *args: Any) -> Any:
            result = real(path, *args)
            trigger.hit(str(path))
            return result

        monkeypatch.setattr(module, attribute, wrapper)

    return install


def _wrap_os(attribute: str, selects: Callable[..., bool]):
    """Wrap ``os.<attribute>`` as ``core/change/transaction.py`` calls it; only calls ``selects`` accepts count."""

    def install(monkeypatch: pytest.MonkeyPatch, trigger: Trigger) -> None:
        real = getattr(transaction.os, attribute)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if selects(*args, **kwargs):
                trigger.hit(str(args[0]))
            return real(*args, **kwargs)

        monkeypatch.setattr(transaction.os, attribute, wrapper)

    return install


def _first_path(*args: Any, **kwargs: Any) -> str:
    return str(args[0]) if args else ""


def _staging_write(monkeypatch: pytest.MonkeyPatch, trigger: Trigger) -> None:
    real = staging_module.Staging.write

    def wrapper(self: Any, path: Path, content: bytes) -> None:
        trigger.hit(str(path))
        real(self, path, content)

    monkeypatch.setattr(staging_module.Staging, "write", wrapper)


def _is_chmod_of_project_file(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
    return not Path(path).name.endswith(".txt.tmp")  # compile's own chmod is not an apply step


# The apply sub-steps of core/change/transaction.py apply_changes, in the order they happen per file.
APPLY_STEPS = [
    Step("move-aside", _wrap_os("replace", lambda src, dst, *a, **k: str(dst).endswith(".micropkg-backup")),
         _disk_error(errno.EXDEV)),
    Step("make-parents", _wrap_after(transaction, "_make_parents"), _disk_error(errno.ENOSPC)),
    Step("write", _wrap_function(transaction, "_write_new", _first_path), _disk_error(errno.ENOSPC)),
    Step("rename-into-place", _wrap_os("replace", lambda src, dst, *a, **k: str(src).endswith(".micropkg-new")),
         _disk_error(errno.EIO)),
    Step("chmod", _wrap_os("chmod", _is_chmod_of_project_file), _disk_error(errno.EPERM)),
    # After the commit point: the changes are all in place and only the backups are left to remove.
    Step("backup-cleanup", _wrap_os("unlink", lambda path, *a, **k: str(path).endswith(".micropkg-backup")),
         _disk_error(errno.EBUSY), expect="completed"),
]
PLAN_STEPS = [
    Step("extract", _wrap_function(pull_module, "read_sdist"),
         lambda d: MicropkgError("Cannot read sdist: corrupt (injected).")),
    # Our own sdists are rewritten where their restore records are checked; others in install_files.
    Step("rewrite", _wrap_functions([(install_files, "rewrite_module"), (restore_module, "rewrite_module")],
                                    lambda *a, **k: k.get("filename", "")),
         lambda d: ProjectError(f"{d}, line 1: cannot parse Python source (injected)")),
    Step("stage", _staging_write, lambda d: RuntimeError(f"unexpected failure staging {d} (injected)")),
]
def _compile_folder(command: Any, **kwargs: Any) -> str:
    return str(kwargs.get("cwd", ""))


COMPILE_STEPS = [
    Step("compile-fails", _wrap_function(compile_module, "_run", _compile_folder),
         lambda d: MicropkgError("pip-compile failed (injected); requirements.txt was left as it was"),
         expect="completed"),
    Step("compile-interrupted", _wrap_function(compile_module, "_run", _compile_folder),
         lambda d: KeyboardInterrupt(), expect="completed"),
]


def offline_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below the fault, pip-compile itself fails the way it does without an index, so a compile
    that is not the faulted one never reaches the network and leaves requirements.txt alone."""
    import subprocess

    def no_index(command: list[str], **kwargs: Any) -> Any:
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for small-c\n")

    monkeypatch.setattr(compile_module, "_run", no_index)
PULL_STEPS = [
    Step("fetch", _wrap_function(pull_module, "fetch_sdist", _first_path),
         lambda d: MicropkgError(f"could not read {d}: timed out (injected)")),
    *PLAN_STEPS,
    *APPLY_STEPS,
    *COMPILE_STEPS,
]
SYNC_STEPS = [
    Step("build", _wrap_function(sync_module, "build_from_inputs", lambda project, inputs, *rest: inputs.module_path),
         lambda d: MicropkgError(f"{d}: cannot be packaged (injected)")),
    Step("extract", _wrap_function(sync_target_module, "read_sdist"),
         lambda d: MicropkgError("Cannot read sdist: corrupt (injected).")),
    *PLAN_STEPS[1:],
    *APPLY_STEPS,
    *COMPILE_STEPS,
]


@dataclass(frozen=True)
class FaultPoint:
    step: Step
    index: int
    label: str  # the test id: step, call index and what the call was about

    @property
    def expect(self) -> str:
        return self.step.expect


def install(
    monkeypatch: pytest.MonkeyPatch, step: Step, fail_at: int | None,
    context: Callable[[], str | None] = lambda: None,
) -> Trigger:
    if step in COMPILE_STEPS:
        offline_compile(monkeypatch)
    trigger = Trigger(fail_at, step.error, context)
    step.install(monkeypatch, trigger)
    return trigger


def enumerate_points(steps: list[Step], run: Callable[[], None]) -> list[FaultPoint]:
    """Run once without faults, counting every step's calls; each call becomes a fault point."""
    triggers: dict[str, Trigger] = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        if any(step in COMPILE_STEPS for step in steps):
            offline_compile(monkeypatch)
        for step in steps:
            triggers[step.name] = Trigger(None, step.error)
            step.install(monkeypatch, triggers[step.name])
        run()
    points = []
    for step in steps:
        details = triggers[step.name].details
        for index, detail in enumerate(details):
            shown = Path(detail).name if detail else ""
            label = f"{step.name}-{index}" + (f"-{shown}" if shown else "")
            if step.name == "write" and shown == "micropkg.lock":
                label = f"lock-write-{index}"
            points.append(FaultPoint(step, index, label))
    return points


# -- the pull scenario --------------------------------------------------------------------------------

SOURCE_V1 = {
    "src/core/pipelines/cleaning/__init__.py": '"""Cleaning steps."""\n\n__version__ = "0.1"\n',
    "src/core/pipelines/cleaning/nodes.py": (
        "from core.pipelines.cleaning.helpers import strip\n\n\ndef clean(value):\n    return strip(value)\n"
    ),
    "src/core/pipelines/cleaning/helpers.py": "def strip(value):\n    return value.strip()\n",
    "src/core/pipelines/cleaning/old.py": "OLD = 1\n",
    "src/core/pipelines/cleaning/requirements.txt": "small-b>=1.0\n",
    "tests/pipelines/__init__.py": "",
    "tests/pipelines/cleaning/__init__.py": "",
    "tests/pipelines/cleaning/test_nodes.py": (
        "from core.pipelines.cleaning.nodes import clean\n\n\ndef test_clean():\n    assert clean(' a ') == 'a'\n"
    ),
    "conf/base/parameters_cleaning.yml": "threshold: 1\n",
}
SOURCE_V2 = {
    **SOURCE_V1,
    "src/core/pipelines/cleaning/__init__.py": '"""Cleaning steps."""\n\n__version__ = "0.2"\n',
    "src/core/pipelines/cleaning/nodes.py": (
        "from core.pipelines.cleaning.helpers import strip\nfrom core.pipelines.cleaning.sub.deep import DEPTH\n\n\n"
        "def clean(value):\n    return strip(value) * DEPTH\n"
    ),
    "src/core/pipelines/cleaning/sub/__init__.py": "",
    "src/core/pipelines/cleaning/sub/deep.py": "DEPTH = 1\n",
    "src/core/pipelines/cleaning/requirements.txt": "small-b>=1.0\nsmall-c>=0.5\n",
    "tests/pipelines/cleaning/sub/__init__.py": "",
    "tests/pipelines/cleaning/sub/test_deep.py": "from core.pipelines.cleaning.sub.deep import DEPTH\n\n\n"
    "def test_depth():\n    assert DEPTH == 1\n",
    "conf/base/parameters_cleaning.yml": "threshold: 2\n",
}
DROPPED = "src/core/pipelines/cleaning/old.py"
EXECUTABLE = "src/churn/pipelines/cleaning/helpers.py"  # installed, then made executable by its owner


@dataclass
class Scenario:
    base: Path  # the workspace every test starts from (copied)
    completed: dict[str, dict[str, tuple[str, int]]]  # project (relative to base) -> state after a clean run
    projects: tuple[str, ...]  # the projects that must each be "before" or "completed"
    points: list[FaultPoint] = field(default_factory=list)


def run_pull(workspace: Path, *, recompile: bool = False) -> Any:
    return pull_batch(
        workspace / "project",
        [PullEntry(str(workspace / "sdists/cleaning-0.2.tar.gz"), destination="pipelines")],
        recompile=recompile,
        lock_timeout=5,
    )


def build_pull_workspace(folder: Path) -> Path:
    """``sdists/`` with cleaning 0.1 and 0.2, and ``project/`` (churn) with 0.1 installed."""
    source = build_file_tree(folder / "source", {"pyproject.toml": '[tool.kedro]\npackage_name = "core"\n',
                                                 "src/core/__init__.py": "", "src/core/pipelines/__init__.py": "",
                                                 "tests/__init__.py": "", **SOURCE_V1}, dedent=False)
    workspace = folder / "workspace"
    package(source, "pipelines.cleaning", destination=str(workspace / "sdists"))
    (source / DROPPED).unlink()
    build_file_tree(source, SOURCE_V2, dedent=False)
    (source / DROPPED).unlink()
    package(source, "pipelines.cleaning", destination=str(workspace / "sdists"))
    project = kedro_project(workspace / "project", "churn")
    pull_batch(project, [PullEntry(str(workspace / "sdists/cleaning-0.1.tar.gz"), destination="pipelines")])
    os.chmod(project / EXECUTABLE, 0o755)
    shutil.rmtree(source)
    return workspace


@functools.lru_cache(maxsize=None)
def pull_scenario() -> Scenario:
    folder = scratch_folder("micropkg-faults-pull-")
    base = build_pull_workspace(folder)
    reference = copy_workspace(base, folder / "reference")
    points = enumerate_points(PULL_STEPS, lambda: run_pull(reference, recompile=False))
    # The compile steps only run when compiling: count them in a run that compiles.
    compiled = copy_workspace(base, folder / "reference-compile")
    points += enumerate_points(COMPILE_STEPS, lambda: run_pull(compiled, recompile=True))
    return Scenario(base, {"project": state(reference / "project")}, ("project",), points)


# -- the sync-shared scenario ---------------------------------------------------------------------------

CORE, CHURN, FORECAST = "projects/core", "projects/churn", "projects/forecast"
SOURCE_CLEANING = "projects/core/src/core/pipelines/data_cleaning"


def edit_upstream(monorepo: Path) -> None:
    """Change a module, drop another, add a sub-package and a requirement in core's data_cleaning."""
    source = monorepo / SOURCE_CLEANING
    nodes = source / "nodes.py"
    nodes.write_text(nodes.read_text(encoding="utf-8") + "\n\nSTEP = 2\n", encoding="utf-8")
    (source / "pipeline.py").unlink()
    (source / "__init__.py").write_text('"""Cleaning."""\n\n__version__ = "0.3.0"\n', encoding="utf-8")
    build_file_tree(source, {"extra/__init__.py": "", "extra/steps.py": "STEPS = 3\n"}, dedent=False)
    requirements = source / "requirements.txt"
    requirements.write_text(requirements.read_text(encoding="utf-8") + "small-c>=0.5\n", encoding="utf-8")


def run_sync(monorepo: Path, *, recompile: bool = False):
    return sync_shared(monorepo, jobs=1, lock_timeout=5, recompile=recompile)


def build_sync_workspace(folder: Path) -> Path:
    monorepo = folder / "monorepo"
    shutil.copytree(EXAMPLE_MONOREPO, monorepo, ignore=shutil.ignore_patterns("__pycache__", "dist", "*.pyc"))
    result = run_sync(monorepo)
    assert result.exit_code == 0, result
    for project, executable in ((CHURN, "src/churn/utils/io/readers.py"),
                                (FORECAST, "src/forecast/pipelines/cleaning/nodes.py")):
        os.chmod(monorepo / project / executable, 0o755)
    edit_upstream(monorepo)
    return monorepo


@functools.lru_cache(maxsize=None)
def sync_scenario() -> Scenario:
    folder = scratch_folder("micropkg-faults-sync-")
    base = build_sync_workspace(folder)
    reference = copy_workspace(base, folder / "reference")
    points = enumerate_points(SYNC_STEPS, lambda: _assert_ok(run_sync(reference)))
    compiled = copy_workspace(base, folder / "reference-compile")
    points += enumerate_points(COMPILE_STEPS, lambda: run_sync(compiled, recompile=True))
    completed = {project: state(reference / project) for project in (CORE, CHURN, FORECAST)}
    return Scenario(base, completed, (CHURN, FORECAST), points)


def _assert_ok(result: Any) -> None:
    assert result.exit_code == 0, result


# -- the tests ----------------------------------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name, scenario in (("pull_point", pull_scenario), ("sync_point", sync_scenario)):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, [pytest.param(point, id=point.label) for point in scenario().points])


def run_with_fault(
    point: FaultPoint, monkeypatch: pytest.MonkeyPatch, run: Callable[[], Any],
    context: Callable[[], str | None] = lambda: None,
) -> tuple[Trigger, Any]:
    trigger = install(monkeypatch, point.step, point.index, context)
    outcome: Any
    try:
        outcome = run()
    except BaseException as exc:  # KeyboardInterrupt included: that is the point
        outcome = exc
    finally:
        monkeypatch.undo()
    return trigger, outcome


def check_consistent(
    scenario: Scenario, workspace: Path, before: dict[str, Any], point: FaultPoint, fired_in: str | None,
    trigger: Trigger,
) -> None:
    stray = []
    if point.step.name == "backup-cleanup":
        # After the commit a backup that cannot be removed can only be left where it is: the one
        # whose removal failed, and no other, may remain next to the completed change, with the
        # committed journal that lets the next run remove it.
        backup = Path(trigger.fired or "").relative_to(workspace.resolve())
        real = workspace.resolve()
        owner = next(p for p in scenario.projects if real / p in (real / backup).parents)
        stray = sorted([backup.as_posix(), f"{owner}/.micropkg/journal"])
    assert leftovers(workspace) == stray, f"temporary or backup files left after {point.label}"
    for project in scenario.projects:
        root = workspace / project
        prefix = f"{project}/" if project != "." else ""
        ignored = {path[len(prefix):] for path in stray if path.startswith(prefix)}
        if snapshot_tree(root) == before[project]:
            outcome = "before"
        elif {k: v for k, v in state(root).items() if k not in ignored} == scenario.completed[project]:
            outcome = "completed"
        else:
            outcome = "in between"
        assert outcome != "in between", f"{project} is neither untouched nor completed after {point.label}"
        if project == fired_in:
            assert outcome == point.expect, f"{project}: expected {point.expect}, got {outcome}"
    if stray:
        # The next run rolls the committed transaction forward: the backup goes, nothing else changes.
        for project in scenario.projects:
            recover_project(workspace / project)
        assert leftovers(workspace) == [], f"{point.label}: recovery left files behind"
        for project in scenario.projects:
            assert state(workspace / project) == scenario.completed[project] or \
                snapshot_tree(workspace / project) == before[project]


def test_pull_fault_leaves_the_project_untouched_or_completed(pull_point: FaultPoint, tmp_path, monkeypatch):
    scenario = pull_scenario()
    workspace = copy_workspace(scenario.base, tmp_path / "workspace")
    project = workspace / "project"
    before = {"project": snapshot_tree(project)}
    requirements_txt = (project / "requirements.txt").read_bytes()
    recompile = pull_point.step.name.startswith("compile")

    trigger, outcome = run_with_fault(pull_point, monkeypatch, lambda: run_pull(workspace, recompile=recompile))

    assert trigger.fired is not None, f"{pull_point.label} was never reached"
    if pull_point.expect == "before":
        assert isinstance(outcome, BaseException), "the fault must be reported"
    if pull_point.step.name == "compile-fails":
        assert not isinstance(outcome, BaseException)
        assert [c.error for c in outcome.compiled] == [
            "pip-compile failed (injected); requirements.txt was left as it was"
        ]
    if pull_point.expect == "completed" and pull_point.step.name != "compile-interrupted":
        assert not isinstance(outcome, BaseException), f"a complete pull must not report {outcome!r}"
    check_consistent(scenario, workspace, before, pull_point, "project", trigger)
    assert (project / "requirements.txt").read_bytes() == requirements_txt


def test_sync_fault_leaves_each_target_untouched_or_completed(sync_point: FaultPoint, tmp_path, monkeypatch):
    scenario = sync_scenario()
    workspace = copy_workspace(scenario.base, tmp_path / "monorepo")
    before = {project: snapshot_tree(workspace / project) for project in (CORE, *scenario.projects)}
    requirements = {p: (workspace / p).joinpath(r).read_bytes()
                    for p, r in ((CHURN, "requirements.txt"), (FORECAST, "src/requirements.txt"))}
    recompile = sync_point.step.name.startswith("compile")
    # Observe (not change) which target sync is working on, to know where the fault fired.
    current: dict[str, str] = {}
    real_sync_target = sync_module.sync_target

    def observed(job: Any) -> Any:
        current["target"] = Path(job.root).relative_to(workspace.resolve()).as_posix()
        return real_sync_target(job)

    monkeypatch.setattr(sync_module, "sync_target", observed)

    trigger, outcome = run_with_fault(
        sync_point, monkeypatch, lambda: run_sync(workspace, recompile=recompile), lambda: current.get("target")
    )

    assert trigger.fired is not None, f"{sync_point.label} was never reached"
    fired_in = trigger.fired_context
    if sync_point.step.name.startswith("compile"):
        fired_in = next(p for p in scenario.projects if trigger.fired.startswith(str((workspace / p).resolve())))
    if sync_point.step.name == "build":
        # The source is never written; the targets that needed the failed build are untouched.
        assert not isinstance(outcome, BaseException) and outcome.exit_code == 1
        failed = [t.project for t in outcome.targets if t.outcome == "failed"]
        assert len(failed) == 1
        fired_in = failed[0]
    elif sync_point.expect == "before":
        failed = isinstance(outcome, BaseException) or any(t.outcome == "failed" for t in outcome.targets)
        assert failed, "the fault must be reported"
    assert snapshot_tree(workspace / CORE) == before[CORE]
    if sync_point.step.name == "backup-cleanup":
        assert not isinstance(outcome, BaseException) and outcome.exit_code == 0, outcome
    check_consistent(scenario, workspace, before, sync_point, fired_in, trigger)
    for project, content in requirements.items():
        assert (workspace / project).joinpath(
            "requirements.txt" if project == CHURN else "src/requirements.txt"
        ).read_bytes() == content


def test_every_step_of_pull_and_sync_has_fault_points():
    pull_steps = {point.step.name for point in pull_scenario().points}
    sync_steps = {point.step.name for point in sync_scenario().points}
    assert pull_steps == {step.name for step in PULL_STEPS}
    assert sync_steps == {step.name for step in SYNC_STEPS}
    for points in (pull_scenario().points, sync_scenario().points):
        assert any(point.label.startswith("lock-write") for point in points)


def fault_point_table() -> str:
    """Fault points per step, for docs/reliability.md: ``python -m tests.test_fault_matrix``."""
    lines = []
    for name, scenario, steps in (("pull", pull_scenario(), PULL_STEPS), ("sync-shared", sync_scenario(), SYNC_STEPS)):
        counts = {step.name: 0 for step in steps}
        for point in scenario.points:
            counts[point.step.name] += 1
        lines.append(f"{name}: {len(scenario.points)} fault points: "
                     + ", ".join(f"{step} {count}" for step, count in counts.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    print(fault_point_table())


# -- real SIGKILLs over the apply window ------------------------------------------------------------------
#
# A zygote process imports the CLI once, then forks one child per kill. The child runs the real
# ``micropkg`` CLI with every file-system mutation inside the workspace (``os.replace``, ``rename``,
# ``unlink``, ``chmod``, ``mkdir``, ``rmdir``, and each new file's write) counted; at the chosen call it reports its pid and
# pauses, and this process kills it with SIGKILL: nothing runs after that, no rollback, no
# ``finally``. The next run (``micropkg recover``) must leave each project exactly before (mtimes
# included) or exactly after, and the run after that (the same command again) must complete it.
# For sync-shared the targets are applied in worker processes (``--jobs 2``): every worker must be
# gone once the parent is killed.

KILL_ZYGOTE = r"""
import contextlib, io, json, multiprocessing, os, sys, time
from micropkg_tasks._version import __version__
from micropkg_tasks.cli.collection import make_collection
from micropkg_tasks.cli.program import MicropkgProgram

NAMES = ("replace", "rename", "unlink", "chmod", "mkdir", "rmdir")
REAL = {name: getattr(os, name) for name in NAMES}
CALLS = multiprocessing.Value("q", 0)  # shared memory: counts across the child and its workers
job = {}


def reached(path):
    if not job or not os.fspath(path).startswith(job["within"]):
        return
    with CALLS.get_lock():
        index = CALLS.value
        CALLS.value += 1
    if index == job["index"]:
        message = {"paused": os.getpid(), "main": job["main"], "at": f"{index}: {os.fspath(path)}"}
        os.write(job["report"], (json.dumps(message) + "\n").encode())
        time.sleep(60)  # the SIGKILL ends this


def wrap(name):
    real = REAL[name]

    def wrapper(path, *args, **kwargs):
        reached(path)
        return real(path, *args, **kwargs)

    return wrapper


for name in NAMES:
    setattr(os, name, wrap(name))
import micropkg_tasks.core.change.transaction as transaction  # also pause before each new file is written
real_write_new = transaction._write_new


def write_new(path, content):
    reached(path)
    return real_write_new(path, content)


transaction._write_new = write_new
print("ready", flush=True)
for line in sys.stdin:
    item = json.loads(line)
    CALLS.value = 0
    pid = os.fork()
    if pid == 0:
        job.update(item, report=sys.stdout.fileno(), main=os.getpid())
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
        report = {"done": code, "calls": CALLS.value, "stderr": err.getvalue()}
        os.write(sys.stdout.fileno(), (json.dumps(report) + "\n").encode())
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    signal_number = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    print(json.dumps({"exited": pid, "signal": signal_number}), flush=True)
"""
# Every counted mutation is a kill point, spread evenly when there are more than the cap; at least
# the minimum must be reached. The sync runs are slower (packaging, a process pool), hence fewer.
KILLS_PER_PULL, MIN_PULL_KILLS = 60, 40
KILLS_PER_SYNC, MIN_SYNC_KILLS = 24, 20


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


class Zygote:
    def __init__(self) -> None:
        import subprocess
        import sys

        self.process = subprocess.Popen([sys.executable, "-c", KILL_ZYGOTE], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready"

    def _message(self) -> dict[str, Any]:
        import json

        line = self.process.stdout.readline()
        assert line, "the zygote died"
        return json.loads(line)

    def run(self, cwd: Path, argv: list[str], within: Path, index: int) -> dict[str, Any]:
        """Run ``argv`` in a fresh child; SIGKILL it when the ``index``-th mutation is reached."""
        import json
        import signal
        import time

        job = {"cwd": str(cwd), "argv": argv, "within": str(within), "index": index}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        outcome: dict[str, Any] = {}
        while True:
            message = self._message()
            if "paused" in message:
                workers = _children(message["main"])
                os.kill(message["main"], signal.SIGKILL)
                outcome.update(killed_at=message["at"], workers=workers)
            elif "done" in message:
                outcome.update(done=message)
            else:
                outcome.update(exited=message)
                break
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in outcome.get("workers", [])) and time.monotonic() < deadline:
            time.sleep(0.02)
        outcome["orphans"] = [pid for pid in outcome.get("workers", []) if _alive(pid)]
        for pid in outcome["orphans"]:  # do not leave them to the next test
            os.kill(pid, signal.SIGKILL)
        return outcome

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def _mutation_count(zygote: Zygote, base: Path, folder: Path, cwd: str, argv: list[str]) -> int:
    workspace = copy_workspace(base, folder / "count")
    outcome = zygote.run(workspace / cwd, argv, workspace.resolve(), index=-1)
    assert outcome["done"]["done"] == 0, outcome
    return outcome["done"]["calls"]


def _spread(total: int, count: int) -> list[int]:
    """``count`` call indexes spread evenly over ``range(total)`` (all of them if there are fewer)."""
    if total <= count:
        return list(range(total))
    return sorted({round(i * (total - 1) / (count - 1)) for i in range(count)})


def _kill_loop(
    scenario: Scenario, tmp_path: Path, cwd: str, argv: list[str], kills: tuple[int, int], kind: str
) -> None:
    from tests.conftest import run_micropkg

    zygote = Zygote()
    try:
        total = _mutation_count(zygote, scenario.base, tmp_path, cwd, argv)
        indexes = _spread(total, kills[0])
        assert len(indexes) >= kills[1], f"only {total} mutations in the apply window"
        for index in indexes:
            workspace = copy_workspace(scenario.base, tmp_path / f"kill-{index}")
            before = {project: snapshot_tree(workspace / project) for project in scenario.projects}
            outcome = zygote.run(workspace / cwd, argv, workspace.resolve(), index)
            label = f"{kind} killed at mutation {outcome.get('killed_at')}"
            assert "killed_at" in outcome and outcome["exited"]["signal"] == 9, outcome
            assert outcome["orphans"] == [], f"{label}: workers outlived their parent"

            # The next run: recover. Each project is exactly before or exactly after.
            recovered = run_micropkg(["recover", "--all-projects"] if kind == "sync" else ["recover"],
                                     workspace / cwd)
            assert recovered.exit_code == 0, recovered.stderr
            for project in scenario.projects:
                root = workspace / project
                if snapshot_tree(root) != before[project]:
                    assert state(root) == scenario.completed[project], f"{label}: {project} is in between"
            assert leftovers(workspace) == [], label
            assert not any(workspace.rglob("journal*")), label

            # And the run after that completes the work: no conflict over our own leftovers.
            again = run_micropkg(argv, workspace / cwd)
            assert again.exit_code == 0, f"{label}: the next run failed: {again.stderr}"
            for project in scenario.projects:
                assert state(workspace / project) == scenario.completed[project], f"{label}: {project}"
            assert leftovers(workspace) == [], label
            shutil.rmtree(workspace)
    finally:
        zygote.close()


def test_sigkill_anywhere_in_a_pull_apply_window_is_recovered_exactly(tmp_path):
    argv = ["pull", "../sdists/cleaning-0.2.tar.gz", "--destination", "pipelines", "--no-compile"]
    _kill_loop(pull_scenario(), tmp_path, "project", argv, (KILLS_PER_PULL, MIN_PULL_KILLS), "pull")


def test_sigkill_of_sync_shared_kills_its_workers_and_is_recovered_exactly(tmp_path):
    argv = ["sync-shared", "--no-compile", "--jobs", "2"]
    _kill_loop(sync_scenario(), tmp_path, ".", argv, (KILLS_PER_SYNC, MIN_SYNC_KILLS), "sync")


def test_status_after_a_kill_reports_it_and_recover_rolls_it_back(tmp_path):
    """A read-only command that finds a journal reports the project as interrupted and names
    ``micropkg recover``, changing nothing; ``recover`` then rolls the run back and says so."""
    from tests.conftest import run_micropkg

    scenario = pull_scenario()
    argv = ["pull", "../sdists/cleaning-0.2.tar.gz", "--destination", "pipelines", "--no-compile"]
    workspace = copy_workspace(scenario.base, tmp_path / "workspace")
    project = workspace / "project"
    before = snapshot_tree(project)
    zygote = Zygote()
    try:
        outcome = zygote.run(project, argv, workspace.resolve(), index=12)
    finally:
        zygote.close()
    assert outcome["exited"]["signal"] == 9 and (project / ".micropkg/journal").is_file()
    killed = snapshot_tree(project)

    result = run_micropkg(["status"], project)

    assert result.exit_code == 0, result.stderr
    assert "interrupted" in result.stdout and "micropkg recover" in result.stderr
    assert snapshot_tree(project) == killed  # read-only: nothing rolled back or forward
    recovered = run_micropkg(["recover"], project)
    assert recovered.exit_code == 0, recovered.stderr
    assert "an interrupted micropkg run was rolled back" in recovered.stdout
    assert snapshot_tree(project) == before
    again = run_micropkg(["status"], project)
    assert again.exit_code == 0 and "interrupted" not in again.stderr + again.stdout
    assert "cleaning" in again.stdout and "in sync" in again.stdout
    assert snapshot_tree(project) == before


def test_dry_runs_and_checks_create_no_state_folder(tmp_path):
    """Read-only runs never take the project lock nor recover: on a clean checkout
    ``pull --dry-run`` and ``sync-shared --check`` leave no ``.micropkg/`` behind (real runs do,
    and it ignores itself in git)."""
    from tests.conftest import run_micropkg

    monorepo = shutil.copytree(EXAMPLE_MONOREPO, tmp_path / "monorepo",
                               ignore=shutil.ignore_patterns("__pycache__", "dist", "*.pyc"))
    assert run_micropkg(["sync-shared", "--check"], monorepo).exit_code == 1  # nothing installed yet
    assert run_micropkg(["sync-shared", "--dry-run", "--no-compile"], monorepo).exit_code == 0
    assert list(monorepo.rglob(".micropkg")) == []
    assert run_micropkg(["sync-shared", "--no-compile"], monorepo).exit_code == 0
    assert sorted(p.parent.name for p in monorepo.rglob(".micropkg")) == ["churn", "forecast"]


def test_a_recovery_killed_part_way_is_finished_by_the_next_one(tmp_path):
    """Every recovery step can be repeated: kill ``micropkg recover`` itself at each of its
    mutations, and the recovery after that still leaves the project exactly as before the pull."""
    from tests.conftest import run_micropkg

    scenario = pull_scenario()
    argv = ["pull", "../sdists/cleaning-0.2.tar.gz", "--destination", "pipelines", "--no-compile"]
    template = copy_workspace(scenario.base, tmp_path / "template")
    before = snapshot_tree(template / "project")
    zygote = Zygote()
    try:
        total = _mutation_count(zygote, scenario.base, tmp_path, "project", argv)
        killed = zygote.run(template / "project", argv, template.resolve(), index=total - 12)
        assert killed["exited"]["signal"] == 9
        journal = (template / "project/.micropkg/journal").read_text(encoding="utf-8")
        assert '"state": "applying"' in journal  # killed before the commit: recovery rolls back
        count = copy_workspace(template, tmp_path / "count-recover")
        steps = zygote.run(count / "project", ["recover"], count.resolve(), index=-1)["done"]["calls"]
        assert steps >= 10
        for index in range(steps):
            workspace = copy_workspace(template, tmp_path / f"recover-{index}")
            outcome = zygote.run(workspace / "project", ["recover"], workspace.resolve(), index)
            assert outcome["exited"]["signal"] == 9, outcome
            result = run_micropkg(["recover"], workspace / "project")
            assert result.exit_code == 0, result.stdout + result.stderr
            # Killed before the journal went: this one rolls back; after: nothing was left to do.
            assert "rolled back" in result.stdout or "nothing to recover" in result.stdout
            assert snapshot_tree(workspace / "project") == before, f"recover killed at {outcome['killed_at']}"
            assert leftovers(workspace) == []
            shutil.rmtree(workspace)
    finally:
        zygote.close()



# -- the order of the journal and the file moves ------------------------------------------------------
#
# Crash safety rests on an order: the journal is on disk (written, flushed, renamed into place, its
# folder flushed) before the first file is moved aside, and it is removed only once the last backup
# is gone, whether the run completes or rolls back. These tests record every fsync, rename and
# unlink of a real pull and check that order.


def _record_file_operations(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> list[tuple[str, str, str]]:
    events: list[tuple[str, str, str]] = []
    real = {name: getattr(os, name) for name in ("fsync", "replace", "rename", "unlink")}
    inside = str(workspace.resolve())

    def fsync(descriptor: int) -> None:
        where = os.readlink(f"/proc/self/fd/{descriptor}")
        if where.startswith(inside):
            events.append(("fsync", where[len(inside):], ""))
        real["fsync"](descriptor)

    def move(name: str):
        def wrapper(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
            if os.fspath(source).startswith(inside):
                events.append((name, os.fspath(source)[len(inside):], os.fspath(target)[len(inside):]))
            real[name](source, target, *args, **kwargs)

        return wrapper

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        if os.fspath(path).startswith(inside):
            events.append(("unlink", os.fspath(path)[len(inside):], ""))
        real["unlink"](path, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", move("replace"))
    monkeypatch.setattr(os, "rename", move("rename"))
    monkeypatch.setattr(os, "unlink", unlink)
    return events


def _journal_written_before_the_first_move(events: list[tuple[str, str, str]]) -> None:
    journal, temp, folder = "/project/.micropkg/journal", "/project/.micropkg/journal.tmp", "/project/.micropkg"
    first_move = next(i for i, (op, _, target) in enumerate(events) if target.endswith(".micropkg-backup"))
    flushed = events.index(("fsync", temp, ""))
    in_place = events.index(("rename", temp, journal))
    folder_flushed = events.index(("fsync", folder, ""), in_place)
    assert flushed < in_place < folder_flushed < first_move, events[: first_move + 1]


def test_the_journal_is_on_disk_before_the_first_move_and_goes_after_the_last_backup(tmp_path, monkeypatch):
    workspace = copy_workspace(pull_scenario().base, tmp_path / "workspace")
    events = _record_file_operations(monkeypatch, workspace)

    run_pull(workspace)
    monkeypatch.undo()

    _journal_written_before_the_first_move(events)
    removed = events.index(("unlink", "/project/.micropkg/journal", ""))
    backups_gone = [i for i, (op, path, _) in enumerate(events) if op == "unlink" and path.endswith(".micropkg-backup")]
    assert backups_gone and max(backups_gone) < removed
    assert state(workspace / "project") == pull_scenario().completed["project"]


def test_a_rollback_removes_the_journal_only_after_every_backup_is_back(tmp_path, monkeypatch):
    workspace = copy_workspace(pull_scenario().base, tmp_path / "workspace")
    before = snapshot_tree(workspace / "project")
    events = _record_file_operations(monkeypatch, workspace)
    writes = []
    real_write = transaction._write_new

    def failing_write(path: Path, content: bytes) -> None:
        writes.append(path)
        if len(writes) == 6:
            raise OSError(errno.ENOSPC, "No space left on device (injected)", str(path))
        real_write(path, content)

    monkeypatch.setattr(transaction, "_write_new", failing_write)

    with pytest.raises(ProjectError, match="the project was restored unchanged"):
        run_pull(workspace)
    monkeypatch.undo()

    _journal_written_before_the_first_move(events)
    removed = events.index(("unlink", "/project/.micropkg/journal", ""))
    moved_aside = [(path, target) for op, path, target in events if target.endswith(".micropkg-backup")]
    put_back = [i for i, (op, path, target) in enumerate(events) if path.endswith(".micropkg-backup")]
    assert len(moved_aside) >= 3 and len(put_back) == len(moved_aside)
    assert max(put_back) < removed
    assert snapshot_tree(workspace / "project") == before
    assert leftovers(workspace) == []
