"""Install checked sdists into a project as one unit: pull, sync-shared and prerelease all do.

The sdists' imports are rewritten for the project in parallel processes; then
the whole batch is planned in memory, refused with the list of conflicting
files if anything would overwrite work that is not ours, and applied as one
transaction under the project's lock.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from micropkg_tasks.core.change.journal import Recovery, interrupted
from micropkg_tasks.core.change.staging import Staging
from micropkg_tasks.core.change.transaction import FileChange, apply_changes, project_lock
from micropkg_tasks.core.errors import ConflictError, MicropkgError, ProjectError, UsageError
from micropkg_tasks.core.lock.lockfile import fill_missing_blobs, read_project_lock, render_lock
from micropkg_tasks.core.project.micropkg_deps import Dependency
from micropkg_tasks.core.project.project import Project
from micropkg_tasks.core.rewrite.dangling import dangling_imports, modules_of
from micropkg_tasks.core.runs import new_run
from micropkg_tasks.ops.install.dependencies import (
    DependencyResolution,
    origin_of,
    refuse_missing,
    resolve_dependencies,
)
from micropkg_tasks.ops.install.files import target_files
from micropkg_tasks.ops.install.item import SdistToInstall
from micropkg_tasks.ops.install.merge_base import remember_bases
from micropkg_tasks.ops.install.parameter_clashes import refuse_duplicate_parameter_keys
from micropkg_tasks.ops.install.plan import InstallPlan, install_module, plan_install
from micropkg_tasks.ops.install.results import PullBatchResult, PullResult, Refusal
from micropkg_tasks.ops.parallel import WorkerPool, alongside, map_collecting_errors


def _unified_diff(project: Project, change: FileChange, staging: Staging) -> str:
    relative = project.relative(change.path)
    before = staging.on_disk(change.path) or b""
    after = change.content or b""
    try:
        old_lines = before.decode("utf-8").splitlines(keepends=True)
        new_lines = after.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return f"Binary file {relative} differs\n"
    fromfile = f"a/{relative}" if before else "/dev/null"
    tofile = f"b/{relative}" if change.content is not None else "/dev/null"
    return "".join(difflib.unified_diff(old_lines, new_lines, fromfile, tofile))


def _placed(project: Project, run: str, job: tuple[SdistToInstall, tuple[tuple[str, str], ...]]) -> dict[Path, bytes]:
    item, dependencies = job
    install_name = item.alias or item.sdist.name
    module = install_module(item.destination, install_name)
    return target_files(
        project, item.sdist, module=module, env=item.env, install_name=install_name, dependencies=dependencies,
        run=run,
    )


def _plan_batch(
    project: Project, items: Sequence[SdistToInstall], placed_files: Sequence[Any], chosen: Sequence[int], force: bool,
    merge: bool, dependencies: DependencyResolution,
) -> tuple[Staging, Any, dict[int, InstallPlan]]:
    """Plan the chosen sdists, in order, into one fresh staging area and a fresh copy of the lock."""
    staging = Staging(project.root)
    lock = read_project_lock(project)
    plans: dict[int, InstallPlan] = {}
    seen: dict[str, str] = {}
    # What the batch installs is there for the imports of each of its micro-packages.
    provided = modules_of((path for i in chosen for path in placed_files[i]), project.package_dir, project.package_name)
    for index in chosen:
        item = items[index]
        plan = plan_install(
            project,
            staging,
            lock,
            item.sdist,
            location=item.location,
            alias=item.alias,
            destination=item.destination,
            env=item.env,
            force=force,
            placed=placed_files[index],
            merge=merge or item.merge,
            declared=item.declared,
            commit=item.commit,
            dependencies=dependencies.references[index],
        )
        if plan.module in seen:
            raise UsageError(
                f"{item.location} and {seen[plan.module]} would both install "
                f"{plan.module}; give one of them an alias or destination"
            )
        seen[plan.module] = item.location
        entry = lock.entries[plan.module]
        entry.origin = origin_of(item.sdist)
        plan.dangling = _dangling(project, entry.origin, plan.module, placed_files[index], provided)
        entry.depends_on = dependencies.depends_on[index]
        plan.warnings += dependencies.warnings[index]
        plans[index] = plan
    return staging, lock, plans


def _dangling(project: Project, origin: str | None, module: str, placed: dict[Path, bytes],
              provided: frozenset[str]) -> str:
    """One sentence if the code about to be installed imports a module of its source project
    that this project does not have (it could never import), else ""."""
    if origin is None:
        return ""  # not one of our sdists: its source project is not known
    package_dir = project.package_dir
    code = [
        (project.relative(path), content.decode("utf-8", "replace")) for path, content in placed.items()
        if path.suffix == ".py" and path.is_relative_to(package_dir)
    ]
    found = dangling_imports(code, source_package=origin.split("#", 1)[0], target_package=project.package_name,
                             target_package_root=package_dir, provided=provided)
    return found[0].sentence(module) if found else ""


def _refusal(plan: InstallPlan) -> str:
    """Why this one micro-package cannot be installed as planned, or ""."""
    if plan.dangling:
        return plan.dangling
    if plan.refusal:
        return plan.refusal
    if plan.conflicts:
        return (
            f"{len(plan.conflicts)} file(s) would be overwritten that micropkg does not own or that were edited "
            "(use --force to overwrite them)"
        )
    return ""


@contextlib.contextmanager
def locked_for_writing(project: Project, *, dry_run: bool, timeout: float) -> Iterator[Recovery | None]:
    """The project lock for a run that writes (an interrupted run is recovered first). A dry run
    takes no lock and writes nothing: it refuses a project that a killed run left half-done,
    and names `micropkg recover`."""
    if dry_run:
        message = interrupted(project.root, project.managed_paths())
        if message:
            raise ProjectError(message)
        yield None
        return
    with project_lock(project.root, timeout=timeout, managed=project.managed_paths()) as recovery:
        yield recovery


def _file_refusal(plans: dict[int, InstallPlan], blocked: dict[int, str], verb: str) -> ConflictError:
    dangling = [plans[i].dangling for i in blocked if plans[i].dangling]
    if dangling:
        return ConflictError(f"{verb} refused: {dangling[0]}; nothing was written", details=dangling[1:])
    details = [plans[i].refusal for i in blocked if plans[i].refusal]
    details += [f"{c.path} ({c.reason})" for i in blocked for c in plans[i].conflicts]
    files = sum(len(plans[i].conflicts) for i in blocked)
    reason = (
        f"{len(blocked)} installed cop(ies) came from another source or build; nothing was written "
        "(use --force to switch the source)"
        if not files
        else f"{files} file(s) would be overwritten that micropkg does not own or that were edited; "
        "nothing was written (use --force to overwrite them)"
    )
    return ConflictError(f"{verb} refused: {reason}", details=details)


def _plan_accepted(
    project: Project, items: Sequence[SdistToInstall], placed_files: Sequence[Any], *, force: bool, merge: bool,
    dependencies: DependencyResolution, dry_run: bool, each_alone: bool, verb: str,
) -> tuple[list[int], Staging, Any, dict[int, InstallPlan], dict[int, tuple[InstallPlan, str]], list[Refusal]]:
    """Plan the batch and apply every refusal of a real run: raise it, or, with ``each_alone``, leave the
    refused micro-packages out and plan the others again. A dry run raises nothing: it notes each
    refusal the real run would raise (``Refusal``), and plans on as far as the real run would."""
    refused: dict[int, tuple[InstallPlan, str]] = {}
    refusals: list[Refusal] = []

    def refuse(error: ConflictError) -> None:
        if not dry_run:
            raise error
        refusals.append(Refusal(error.message, tuple(error.details)))

    chosen = list(range(len(items)))
    while True:
        staging, lock, plans = _plan_batch(project, items, placed_files, chosen, force, merge, dependencies)
        impossible = [line for plan in plans.values() for line in plan.requirements_conflicts]
        if impossible:
            refuse(ConflictError(
                f"{verb} refused: {len(impossible)} requirement(s) cannot hold together with requirements.in; "
                "nothing was written",
                details=impossible,
            ))
        try:
            refuse_duplicate_parameter_keys(
                project,
                staging,
                [(items[i].env, placed_files[i], plans[i]) for i in chosen],  # type: ignore[misc]
                force=force,
                verb=verb,
            )
        except ConflictError as error:
            refuse(error)
        blocked = {index: why for index, plan in plans.items() if (why := _refusal(plan))}
        if not blocked or (dry_run and each_alone):
            # A dry run reports each micro-package's refusal in its result (``refused``).
            return chosen, staging, lock, plans, refused, refusals
        if not each_alone:
            refuse(_file_refusal(plans, blocked, verb))
            return chosen, staging, lock, plans, refused, refusals
        # Each micro-package is its own unit: plan the others again without the refused ones.
        refused.update({index: (plans[index], why) for index, why in blocked.items()})
        chosen = [index for index in chosen if index not in blocked]


def install_sdists(
    project: Project,
    items: Sequence[SdistToInstall],
    *,
    force: bool = False,
    dry_run: bool = False,
    diff: bool = False,
    lock_timeout: float = 30.0,
    verb: str = "pull",
    jobs: int | None = None,
    each_alone: bool = False,
    merge: bool = False,
    dependency_hint: Callable[[SdistToInstall, Dependency], str | None] | None = None,
    workers: WorkerPool | None = None,
    run: str | None = None,
) -> PullBatchResult:
    """Plan every sdist into one staging area and apply the batch as one unit, under the project's lock.

    Raises ``ConflictError`` (unless ``dry_run``) when requirements cannot both hold, when a
    copy would be taken from its owner (another source, or another build of the same
    version), or when files would be overwritten that the lock does not give us, or that
    were edited since we installed them. With ``each_alone`` every micro-package is its
    own unit instead: one that is refused for its owner or its files is left as it was
    (and reported in its result's ``refused``), and the others are still installed. With
    ``merge``, edited files are merged three ways instead; files merged with conflicts are
    written with markers and listed in the result's ``merge_conflicts``.
    ``workers``, when given, rewrite the sdists (a pool started early); otherwise a pool of ``jobs``.
    A micro-package dependency that neither the batch nor the project has stops the batch
    first (``dependency_hint`` says where it could be fetched from).
    ``run`` names the run this batch is part of (see core/runs.py; default: a run of its own).
    """
    dependencies = resolve_dependencies(read_project_lock(project), items)
    refuse_missing(dependencies.missing, dependency_hint or (lambda item, dependency: None), verb)
    placed_files = _rewrite_all(project, items, dependencies, run=run or new_run(), workers=workers, jobs=jobs)
    with locked_for_writing(project, dry_run=dry_run, timeout=lock_timeout) as recovery:
        chosen, staging, lock, plans, refused, refusals = _plan_accepted(
            project, items, placed_files, force=force, merge=merge, dependencies=dependencies, dry_run=dry_run,
            each_alone=each_alone, verb=verb,
        )
        _stage_lock(project, staging, lock)
        changes = staging.changes()
        diff_text = "".join(_unified_diff(project, change, staging) for change in changes) if diff else ""
        if not dry_run:
            _write(project, changes, [placed_files[index] for index in chosen])
    applied = not dry_run and bool(changes)
    changed_paths = tuple(project.relative(change.path) for change in changes)
    return PullBatchResult(
        results=_results(items, plans, refused, dependencies, applied=applied, dry_run=dry_run),
        changes=changed_paths,
        diff=diff_text,
        lock_changed=project.relative(project.lock_path) in changed_paths,
        requirements_in_changed=project.relative(project.requirements_in) in changed_paths,
        applied=applied,
        dry_run=dry_run,
        recovered=recovery.message if recovery else "",
        refusals=tuple(refusals),
    )


def _rewrite_all(
    project: Project, items: Sequence[SdistToInstall], dependencies: DependencyResolution, *, run: str,
    workers: WorkerPool | None, jobs: int | None,
) -> list[dict[Path, bytes]]:
    """Every sdist's files at their project paths, imports rewritten; the first failure is raised.

    Rewriting imports is the costly part and each sdist's is independent: spread it over the cores."""
    rewrite = functools.partial(_placed, project, run)
    jobs_list = list(zip(items, dependencies.references))
    placed_files = workers.map(rewrite, jobs_list) if workers else map_collecting_errors(rewrite, jobs_list, jobs=jobs)
    for placed in placed_files:
        if isinstance(placed, MicropkgError):
            raise placed
    return placed_files  # type: ignore[return-value]


def _stage_lock(project: Project, staging: Staging, lock: Any) -> None:
    """Stage the new lock. Staging drops writes that change nothing, so an idempotent pull
    leaves the lock alone."""
    staging.write(project.lock_path, render_lock(lock).encode("utf-8"))
    # The lock is rewritten anyway: entries from before blob ids were recorded get theirs.
    if staging.changes() and fill_missing_blobs(project.root, lock):
        staging.write(project.lock_path, render_lock(lock).encode("utf-8"))


def _write(project: Project, changes: Sequence[FileChange], placed: Sequence[dict[Path, bytes]]) -> None:
    """Write the changes as one transaction. What is installed is the base of any later merge:
    keep it where git is not needed, while the project's files are written (both mostly wait on the disk)."""
    installed = [content for files in placed for content in files.values()]
    with alongside(remember_bases, installed):
        if changes:
            apply_changes(project.root, changes, managed=project.managed_paths())


def _results(
    items: Sequence[SdistToInstall], plans: dict[int, InstallPlan], refused: dict[int, tuple[InstallPlan, str]],
    dependencies: DependencyResolution, *, applied: bool, dry_run: bool,
) -> tuple[PullResult, ...]:
    """What happened to each sdist, in the order given."""
    results = []
    for index, item in enumerate(items):
        if index in refused:
            plan, why = refused[index]
            results.append(replace(_result(item, plan, applied=False, dry_run=dry_run), refused=why))
        else:
            plan = plans[index]
            result = replace(
                _result(item, plan, applied=applied, dry_run=dry_run),
                depends_on=tuple(dependencies.depends_on[index]), dependency_of=item.dependency_of,
            )
            results.append(replace(result, refused=_refusal(plan)) if dry_run else result)
    return tuple(results)


def _result(item: SdistToInstall, plan: InstallPlan, *, applied: bool, dry_run: bool) -> PullResult:
    return PullResult(
        location=plan.location,
        module=plan.module,
        name=item.sdist.name,
        version=item.sdist.version,
        sha256=item.sdist.sha256,
        files=tuple(plan.files),
        requirements_added=tuple(plan.requirements_added),
        requirements_present=tuple(plan.requirements_present),
        requirements_conflicts=tuple(plan.requirements_conflicts),
        requirements_removed=tuple(plan.requirements_removed),
        warnings=tuple(plan.warnings),
        applied=applied,
        dry_run=dry_run,
        requirements_overlaps=tuple(plan.requirements_overlaps),
    )
