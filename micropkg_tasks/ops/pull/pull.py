"""``pull``: fetch sdists, check them, and install them into a project as one unit.

Every option is validated and every sdist fetched and checked before the
project is touched; ``ops/install/apply.py`` then installs the batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from micropkg_tasks.core.change.interrupts import interrupted
from micropkg_tasks.core.change.transaction import log_mark, outcome_since
from micropkg_tasks.core.errors import UsageError
from micropkg_tasks.core.project.manifest import (
    PULL_TABLES,
    PullEntry,
    manifest_to_name,
    present_table,
    read_pull_manifest,
)
from micropkg_tasks.core.project.micropkg_deps import Dependency
from micropkg_tasks.core.project.names import validate_alias, validate_destination_module, validate_env
from micropkg_tasks.core.project.project import Project, as_project
from micropkg_tasks.core.rewrite.rewriter import REWRITER_MODULES
from micropkg_tasks.core.sdist.read import SdistContents, SdistLimits, read_sdist
from micropkg_tasks.ops.install.apply import install_sdists
from micropkg_tasks.ops.install.dependencies import fetch_missing_dependencies, sibling_location
from micropkg_tasks.ops.install.item import FetchedFrom, SdistToInstall
from micropkg_tasks.ops.install.results import PullBatchResult, PullResult
from micropkg_tasks.ops.parallel import WorkerPool
from micropkg_tasks.ops.sources.git import git_timeout, recorded_commit
from micropkg_tasks.ops.sources.locations import GIT, PATH, SIBLING, fetch_sdist, location_kind, split_sibling

__all__ = ["PullBatchResult", "PullResult", "SdistToInstall", "install_sdists", "pull", "pull_all", "pull_batch"]


@dataclass(frozen=True)
class _Request:
    location: str
    alias: str | None = None
    destination: str | None = None
    env: str = "base"
    fs_args: str | None = None
    merge: bool = False  # the manifest entry says merge = true


def _validate(request: _Request) -> _Request:
    """The request with its options checked, and a folder-form destination made dotted."""
    if request.alias is not None:
        validate_alias(request.alias)
    validate_env(request.env)
    if request.destination is not None:
        return replace(request, destination=validate_destination_module(request.destination))
    return request


def recorded_location(project: Project, location: str, base: Path | None) -> str:
    """How a location is recorded in the lock: local paths relative to the project root (so
    the lock means the same on every checkout), URLs and package specs as given."""
    kind = location_kind(location, base or Path.cwd())
    if kind == SIBLING:
        folder, module = split_sibling(location)  # type: ignore[misc]
        return f"{recorded_location(project, folder, base)}#{module}"
    if kind != PATH:
        return location
    path = Path(location)
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return Path(os.path.relpath(os.path.normpath(path), project.root)).as_posix()


def _pull_requests(
    project: Project,
    requests: Sequence[_Request],
    *,
    force: bool,
    dry_run: bool,
    diff: bool,
    limits: SdistLimits,
    lock_timeout: float,
    base: Path | None,
    use_cache: bool,
    merge: bool = False,
    with_deps: bool = False,
    declared: bool = False,
    update: bool = False,
    run: str | None = None,
) -> PullBatchResult:
    requests = [_validate(request) for request in requests]
    with WorkerPool(None, len(requests), preload=REWRITER_MODULES) as workers:
        # Fetch and check every archive before taking the lock or touching anything.
        items: list[SdistToInstall] = []
        for request in requests:
            data = fetch_sdist(
                request.location, fs_args=request.fs_args, base=base, use_cache=use_cache, alias=request.alias,
                env=request.env, commit=None if update else recorded_commit(project, request.location),
                git_timeout=git_timeout(project) if location_kind(request.location) == GIT else None,
            )
            item = SdistToInstall(
                sdist=read_sdist(data.data, source=data.location, limits=limits),
                location=recorded_location(project, data.location, base),
                alias=request.alias,
                destination=request.destination,
                env=request.env,
                declared=declared,
                merge=request.merge,
                commit=data.commit,
                fetched_from=FetchedFrom(request.location, data.kind, request.fs_args, request.env),
            )
            items.append(item)
        if with_deps:

            def fetch(location: str, origin: FetchedFrom) -> tuple[SdistContents, str, str]:
                data = fetch_sdist(location, fs_args=origin.fs_args, base=base, use_cache=use_cache, env=origin.env)
                sdist = read_sdist(data.data, source=data.location, limits=limits)
                return sdist, recorded_location(project, data.location, base), data.kind

            items += fetch_missing_dependencies(project, items, fetch)

        def hint(item: SdistToInstall, dependency: Dependency) -> str | None:
            origin = item.fetched_from
            return sibling_location(origin.location, origin.kind, dependency) if origin else None

        return install_sdists(
            project, items, force=force, dry_run=dry_run, diff=diff, lock_timeout=lock_timeout, merge=merge,
            dependency_hint=hint, workers=workers, run=run,
        )


def pull(
    project: Project | str | os.PathLike[str],
    location: str,
    alias: str | None = None,
    destination: str | None = None,
    env: str = "base",
    force: bool = False,
    dry_run: bool = False,
    *,
    fs_args: str | None = None,
    diff: bool = False,
    limits: SdistLimits | None = None,
    lock_timeout: float = 30.0,
    use_cache: bool = True,
    merge: bool = False,
    with_deps: bool = False,
    update: bool = False,
) -> PullResult:
    """Install the sdist at ``location`` into ``project``.

    ``destination`` is a dotted module path inside the project package.
    A relative local ``location`` resolves against the current folder.
    """
    batch = pull_batch(
        project,
        [PullEntry(location, alias, destination, env, fs_args)],
        force=force,
        dry_run=dry_run,
        diff=diff,
        limits=limits,
        lock_timeout=lock_timeout,
        use_cache=use_cache,
        merge=merge,
        with_deps=with_deps,
        update=update,
    )
    return batch.results[0]


def pull_batch(
    project: Project | str | os.PathLike[str],
    entries: Sequence[PullEntry],
    *,
    force: bool = False,
    dry_run: bool = False,
    diff: bool = False,
    limits: SdistLimits | None = None,
    lock_timeout: float = 30.0,
    base: Path | None = None,
    use_cache: bool = True,
    recompile: bool = False,
    compile_config: Mapping[str, Any] | None = None,
    merge: bool = False,
    with_deps: bool = False,
    declared: bool = False,
    update: bool = False,
    run: str | None = None,
) -> PullBatchResult:
    """Pull several sdists as one unit: all of them are installed, or none.

    With ``with_deps``, micro-packages they import that the project lacks are fetched from
    next to them and installed in the same unit.

    Relative local locations resolve against ``base`` (default: the current folder).
    ``declared``: the entries come from the pull manifest (recorded in the lock, see ``status``).
    A git source at the ref the lock records is packaged from the commit it records, unless
    ``update`` (then from the commit the ref names now).
    ``run`` names the run this pull is part of (see core/runs.py; default: a run of its own).
    With ``recompile``, a changed ``requirements.in`` is compiled once afterwards
    (``compile_config`` is the invoke config's ``micropkg.compile``).
    """
    resolved = as_project(project)
    requests = [_Request(e.location, e.alias, e.destination, e.env, e.fs_args, e.merge) for e in entries]
    mark = log_mark()
    try:
        batch = _pull_requests(
            resolved,
            requests,
            force=force,
            dry_run=dry_run,
            diff=diff,
            limits=limits or SdistLimits(),
            lock_timeout=lock_timeout,
            base=base,
            use_cache=use_cache,
            merge=merge,
            with_deps=with_deps,
            declared=declared,
            update=update,
            run=run,
        )
        if recompile and batch.applied and batch.requirements_in_changed:
            from micropkg_tasks.ops.compile.batch import compile_projects  # only when there is something to compile

            compiled = compile_projects([resolved.root], invoke_config=compile_config, lock_timeout=lock_timeout)
            batch = replace(batch, compiled=compiled)
    except KeyboardInterrupt as exc:
        raise interrupted(exc, [(str(resolved.root), outcome_since(mark, resolved.root))]) from None
    return batch


def pull_all(
    project: Project | str | os.PathLike[str],
    *,
    force: bool = False,
    dry_run: bool = False,
    diff: bool = False,
    limits: SdistLimits | None = None,
    lock_timeout: float = 30.0,
    use_cache: bool = True,
    recompile: bool = False,
    compile_config: Mapping[str, Any] | None = None,
    merge: bool = False,
    with_deps: bool = False,
    update: bool = False,
    run: str | None = None,
) -> PullBatchResult:
    """Pull everything listed in the project's pull manifest, as one unit (``run``: see ``pull_batch``)."""
    resolved = as_project(project)
    entries = read_pull_manifest(resolved)
    if not entries:
        table = present_table(resolved, PULL_TABLES)
        if table is not None:
            # Kedro 0.19 treated an empty manifest as "nothing to pull", not as a mistake.
            return PullBatchResult(results=(), empty_manifest=f"[{table}] in {resolved.pyproject_path}")
        raise UsageError(
            f"{resolved.pyproject_path} has no [{manifest_to_name(resolved, 'pull')}] manifest; "
            "list the sdists to pull there, or give a location on the command line"
        )
    return pull_batch(
        resolved, entries, force=force, dry_run=dry_run, diff=diff, limits=limits,
        lock_timeout=lock_timeout, base=resolved.root, use_cache=use_cache,
        recompile=recompile, compile_config=compile_config, merge=merge, with_deps=with_deps, declared=True,
        update=update,
        run=run,
    )
