"""Compile each changed project once, at the end of a batch (pull, pull-all, sync-shared).

Compiling is slow (it resolves against an index), so a batch that touches a
project's ``requirements.in`` several times compiles it only once, after the
last change, and never while that project's lock is held.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from micropkg_tasks.core.errors import InstalledNotCompiledError, MicropkgError
from micropkg_tasks.core.project.monorepo import monorepo_settings
from micropkg_tasks.core.project.project import Project, load_project
from micropkg_tasks.core.requirements.compile_settings import CompileSettings, compile_settings
from micropkg_tasks.ops.compile.compile import CompileResult, compile_requirements
from micropkg_tasks.ops.compile.failure import (
    CAUSE_INDEX_REFUSED,
    CAUSE_INDEX_UNREACHABLE,
    CAUSE_OTHER,
    CAUSE_RESOLUTION,
    CAUSE_TIMEOUT,
    CompileError,
)
from micropkg_tasks.ops.parallel import worker_count


@dataclass(frozen=True)
class CompileOutcome:
    """One project's compile after a batch: its result, or why it failed."""

    project: str
    result: CompileResult | None = None
    error: str = ""
    details: tuple[str, ...] = ()
    cause: str = ""  # why it failed: one of the CAUSE_* words of ops/compile/failure.py


@runtime_checkable
class Activity(Protocol):
    """Told when each compile starts and ends, so a long compile never looks frozen."""

    def begin(self, label: str) -> None: ...

    def end(self, label: str) -> None: ...


def settings_for(project: Project, invoke_config: Mapping[str, Any] | None = None) -> CompileSettings:
    """Project settings over the monorepo's over the invoke config's (``micropkg.compile``)."""
    shared, path = monorepo_settings(project.root)
    return compile_settings(project, monorepo=shared, invoke_config=invoke_config, monorepo_path=path)


def _compile_one(
    root: Path, label: str, *, invoke_config: Mapping[str, Any] | None, upgrade: bool, force: bool,
    lock_timeout: float, activity: Activity | None,
) -> CompileOutcome:
    if activity is not None:
        activity.begin(f"compiling {label}")
    try:
        project = load_project(root)
        result = compile_requirements(
            project,
            upgrade=upgrade,
            force=force,
            settings=settings_for(project, invoke_config),
            lock_timeout=lock_timeout,
        )
    except MicropkgError as exc:
        cause = exc.cause if isinstance(exc, CompileError) else CAUSE_OTHER
        return CompileOutcome(label, error=str(exc), details=tuple(exc.details), cause=cause)
    finally:
        if activity is not None:
            activity.end(f"compiling {label}")
    return CompileOutcome(label, result=result)


def compile_projects(
    roots: Sequence[Path],
    *,
    invoke_config: Mapping[str, Any] | None = None,
    upgrade: bool = False,
    force: bool = False,
    lock_timeout: float = 30.0,
    shown: Mapping[Path, str] | None = None,
    jobs: int | None = None,
    activity: Activity | None = None,
) -> tuple[CompileOutcome, ...]:
    """Compile each project once; a failure is recorded and the others still run.

    Projects are independent, so up to ``jobs`` compile at once (pip-compile runs in
    its own process; threads only wait for it). Results come back in the order given.
    ``activity`` hears when each compile begins and ends.
    """
    unique = list(dict.fromkeys(Path(r) for r in roots))
    labels = [(shown or {}).get(root, str(root)) for root in unique]

    def run(pair: tuple[Path, str]) -> CompileOutcome:
        return _compile_one(
            pair[0], pair[1], invoke_config=invoke_config, upgrade=upgrade, force=force, lock_timeout=lock_timeout,
            activity=activity,
        )

    workers = worker_count(jobs, len(unique))
    if workers <= 1:
        return tuple(run(pair) for pair in zip(unique, labels))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return tuple(pool.map(run, zip(unique, labels)))


def activity_of(progress: Any) -> Activity | None:
    """The progress reporter, if it can also show steps that run side by side."""
    return progress if isinstance(progress, Activity) else None


def failed(outcomes: Sequence[CompileOutcome]) -> tuple[CompileOutcome, ...]:
    return tuple(outcome for outcome in outcomes if outcome.error)


# Each cause in the words of the sentence that follows an install.
_CAUSE_WORDS = {
    CAUSE_INDEX_UNREACHABLE: "the package index could not be reached",
    CAUSE_INDEX_REFUSED: "the package index refused access",
    CAUSE_RESOLUTION: "the requirements cannot be satisfied together (a resolution conflict)",
    CAUSE_TIMEOUT: "pip-compile ran out of time",
}


def after_install(
    outcomes: Sequence[CompileOutcome], *, name_projects: bool = True, partial: bool = False
) -> InstalledNotCompiledError | None:
    """The error for compiles that failed after the install committed, or None when none failed.

    It says that the install happened (``partial``: only where it was not refused or failed),
    that requirements.txt was left as it was, the cause (in each project, with
    ``name_projects``), and what to run once that is fixed.
    """
    failures = failed(outcomes)
    if not failures:
        return None
    words = [_CAUSE_WORDS.get(outcome.cause, "the compile failed, as said above") for outcome in failures]
    causes = words[0] if not name_projects else "; ".join(
        f"in {outcome.project}, {word}" for outcome, word in zip(failures, words)
    )
    installed = "the micro-packages that could be installed were" if partial else "the micro-packages were"
    return InstalledNotCompiledError(
        f"{installed} installed, but requirements.txt could not be compiled and was left as it was "
        f"({causes}); run `micropkg compile-reqs` once that is fixed"
    )
