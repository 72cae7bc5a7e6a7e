"""``pull-all``: ``pull --all`` in every project of the monorepo.

Projects are independent, so they are pulled in parallel. A failing project
is reported and does not stop the others.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from micropkg_tasks.core.change.interrupts import interrupted
from micropkg_tasks.core.change.transaction import log_mark
from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.project.manifest import read_pull_manifest
from micropkg_tasks.core.project.monorepo import Monorepo, require_monorepo
from micropkg_tasks.core.project.project import load_project
from micropkg_tasks.core.runs import new_run
from micropkg_tasks.ops.compile.batch import CompileOutcome, activity_of, compile_projects
from micropkg_tasks.ops.parallel import InterruptedBatch, how_left, map_collecting_errors
from micropkg_tasks.ops.pull.pull import PullBatchResult, pull_all


@dataclass(frozen=True)
class ProjectPull:
    project: str  # relative to the monorepo root
    batch: PullBatchResult | None = None
    error: str = ""
    details: tuple[str, ...] = ()
    skipped: bool = False  # no pull manifest


@dataclass(frozen=True)
class PullAllResult:
    root: str
    projects: tuple[ProjectPull, ...]
    compiled: tuple[CompileOutcome, ...] = ()

    @property
    def failed(self) -> tuple[ProjectPull, ...]:
        return tuple(p for p in self.projects if p.error)

    @property
    def changed_projects(self) -> tuple[str, ...]:
        return tuple(p.project for p in self.projects if p.batch is not None and p.batch.applied)


def _pull_one(root: Path, options: dict) -> PullBatchResult:
    return pull_all(load_project(root), **options)


def pull_all_projects(
    root: Path | str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    dry_run: bool = False,
    diff: bool = False,
    jobs: int | None = None,
    lock_timeout: float = 30.0,
    use_cache: bool = True,
    recompile: bool = False,
    compile_config: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    with_deps: bool = False,
) -> PullAllResult:
    """Pull every project's manifest; collect per-project failures instead of stopping.

    With ``with_deps``, each project also fetches the micro-packages its sdists import
    that it lacks, as ``pull --all --with-deps`` does in one project.

    With ``recompile``, each project whose ``requirements.in`` changed is compiled
    once, after all the pulls.
    """
    monorepo = require_monorepo(root)
    with_manifest, rows = _projects_with_manifest(monorepo)
    for path in with_manifest:
        if progress is not None:
            progress(f"pulling {monorepo.relative(path)}")
    # One run: a worker pulling the same sdist into several projects rewrites it once.
    options = dict(
        force=force, dry_run=dry_run, diff=diff, lock_timeout=lock_timeout, use_cache=use_cache, with_deps=with_deps,
        run=new_run(),
    )
    rows.update(_pull_projects(monorepo, with_manifest, options, jobs=jobs))
    ordered = tuple(rows[path] for path in sorted(rows))
    compiled: tuple[CompileOutcome, ...] = ()
    if recompile:
        changed = [
            path for path in sorted(rows)
            if rows[path].batch is not None and rows[path].batch.applied and rows[path].batch.requirements_in_changed
        ]
        compiled = compile_projects(
            changed, invoke_config=compile_config, lock_timeout=lock_timeout,
            shown={path: monorepo.relative(path) for path in changed}, jobs=jobs, activity=activity_of(progress),
        )
    return PullAllResult(str(monorepo.root), ordered, compiled)


def _projects_with_manifest(monorepo: Monorepo) -> tuple[list[Path], dict[Path, ProjectPull]]:
    """The projects whose pull manifest lists something, and a row for each other one:
    skipped (nothing to pull) or failed (its manifest cannot be read)."""
    with_manifest: list[Path] = []
    rows: dict[Path, ProjectPull] = {}
    for path in monorepo.projects:
        shown = monorepo.relative(path)
        try:
            has_manifest = bool(read_pull_manifest(load_project(path)))
        except MicropkgError as exc:
            rows[path] = ProjectPull(shown, error=str(exc), details=tuple(exc.details))
            continue
        if has_manifest:
            with_manifest.append(path)
        else:
            rows[path] = ProjectPull(shown, skipped=True)
    return with_manifest, rows


def _pull_projects(
    monorepo: Monorepo, paths: Sequence[Path], options: dict, *, jobs: int | None
) -> dict[Path, ProjectPull]:
    """Pull each project's manifest (in parallel); one project's failure is its own row. An
    interruption says how each project was left."""
    mark = log_mark()
    try:
        outcomes = map_collecting_errors(functools.partial(_pull_one, options=options), paths, jobs=jobs)
    except InterruptedBatch as stop:
        raise interrupted(stop, [
            (monorepo.relative(path), how_left(result, path, mark)) for path, result in zip(paths, stop.results)
        ]) from None
    rows = {}
    for path, outcome in zip(paths, outcomes):
        shown = monorepo.relative(path)
        if isinstance(outcome, MicropkgError):
            rows[path] = ProjectPull(shown, error=str(outcome), details=tuple(outcome.details))
        else:
            rows[path] = ProjectPull(shown, batch=outcome)
    return rows
