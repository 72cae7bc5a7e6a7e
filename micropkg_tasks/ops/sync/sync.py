"""``sync-shared``: keep every target's copy of a shared micro-package in step with its source.

For each ``[[tool.micropkg.shared]]`` entry the source files are hashed first;
a target whose lock records the same hash and whose files are unedited is
already in sync, and nothing is built for it. Otherwise the micro-package is
packaged once, in memory, and installed into each target that needs it
through the pull machinery, with update semantics. Each target is its own
transaction: one refused or failing target leaves the others to be synced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from micropkg_tasks.core.change.interrupts import COMPLETED, Interrupted, interrupted
from micropkg_tasks.core.change.transaction import log_mark, outcome_since
from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.lock.copy_state import (
    IN_SYNC,
    INTERRUPTED,
    LOCK_UNREADABLE,
    PASSING,
    SOURCE_MISSING,
    copy_state,
    local_facts,
)
from micropkg_tasks.core.lock.lockfile import Lock, read_project_lock
from micropkg_tasks.core.project.monorepo import Monorepo, SharedEntry, require_monorepo, select_shared
from micropkg_tasks.core.project.project import Project, load_project
from micropkg_tasks.core.runs import new_run
from micropkg_tasks.ops.compile.batch import CompileOutcome, activity_of, compile_projects
from micropkg_tasks.ops.copies.copy_state import broken_import
from micropkg_tasks.ops.copies.upstream import shared_upstream, source_location
from micropkg_tasks.ops.inspect.recover import finish_interrupted
from micropkg_tasks.ops.package.build import build_from_inputs
from micropkg_tasks.ops.package.dependencies import MicropackageSet
from micropkg_tasks.ops.package.inputs import PackageInputs
from micropkg_tasks.ops.parallel import InterruptedBatch, how_left, map_collecting_errors
from micropkg_tasks.ops.sync.dependencies import shared_inputs, source_micropackages
from micropkg_tasks.ops.sync.git_entries import resolve_git_entries
from micropkg_tasks.ops.sync.results import SyncResult, TargetState, TargetSync
from micropkg_tasks.ops.sync.target import TargetInstall, TargetJob, sync_target


def compare(monorepo: Monorepo, entry: SharedEntry, target_root: Path, module: str, digest: str, lock: Lock) -> TargetState:
    """The state of one target, from hashes alone: nothing is built. The state is the one
    model's (``ops/copies/copy_state.py``), so ``--check`` and ``status`` cannot disagree."""
    installed = lock.entries.get(module)
    upstream = shared_upstream(source_location(entry, target_root), target_root, installed, digest, entry.commit)
    local = local_facts(target_root, installed)
    broken = bool(installed and broken_import(load_project(target_root), installed))
    return TargetState(
        project=monorepo.relative(target_root),
        module=module,
        micropkg=entry.micropkg,
        source=monorepo.source_of(entry),
        state=copy_state(interrupted=False, local=local, upstream=upstream, broken=broken),
        edited=tuple(sorted(local.edited + local.missing)),
        upstream=upstream,
    )


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _build(item: tuple[Project, PackageInputs, MicropackageSet]) -> bytes:
    source, inputs, micropackages = item
    return build_from_inputs(source, inputs, micropackages).data


def sync_shared(
    root: Path | str | os.PathLike[str] | None = None,
    *,
    check: bool = False,
    dry_run: bool = False,
    diff: bool = False,
    force: bool = False,
    only: str | None = None,
    jobs: int | None = None,
    lock_timeout: float = 30.0,
    recompile: bool = False,
    compile_config: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    merge: bool = False,
) -> SyncResult:
    """Bring every target of every shared micro-package in step with its source.

    With ``merge``, files edited in a target are merged three ways with upstream's
    changes instead of refusing the target (see ``install_sdists``).

    ``check`` writes nothing and reports each target's state (see ``SyncResult.exit_code``).
    ``root`` is the monorepo root, or any folder below it (default: the current folder).
    With ``recompile``, each target whose ``requirements.in`` changed is compiled once at the end.
    """
    monorepo = require_monorepo(root)
    entries = select_shared(monorepo, only)
    named = {monorepo.relative(target.project): target.project for entry in entries for target in entry.targets}
    mark = log_mark()
    try:
        return _sync_entries(
            monorepo, entries, check=check, dry_run=dry_run, diff=diff, force=force, jobs=jobs,
            lock_timeout=lock_timeout, recompile=recompile, compile_config=compile_config, progress=progress,
            merge=merge,
        )
    except KeyboardInterrupt as exc:
        if isinstance(exc, Interrupted) and exc.outcomes:
            raise
        # Stopped before the targets were synced, or after: what the transactions did says which.
        raise interrupted(exc, [(name, outcome_since(mark, root)) for name, root in sorted(named.items())]) from None


def _how_left(done: Sequence[TargetSync], jobs: Sequence[TargetJob], results: Sequence[Any], mark: int,
              monorepo: Monorepo) -> list[tuple[str, str]]:
    """Each target after an interrupted sync: completed (with what it did), rolled back, or not started."""
    lines = [(target.project, f"{COMPLETED} ({target.outcome})") for target in done]
    for job, result in zip(jobs, results):
        shown = monorepo.relative(job.root)
        if isinstance(result, TargetSync):
            lines.append((shown, f"{COMPLETED} ({result.outcome})"))
        else:
            lines.append((shown, how_left(result, job.root, mark)))
    return sorted(lines)


def _sync_entries(
    monorepo: Monorepo,
    entries: Sequence[SharedEntry],
    *,
    check: bool,
    dry_run: bool,
    diff: bool,
    force: bool,
    jobs: int | None,
    lock_timeout: float,
    recompile: bool,
    compile_config: Mapping[str, Any] | None,
    progress: Callable[[str], None] | None,
    merge: bool,
) -> SyncResult:
    recovered, halted = _finish_interrupted_runs(monorepo, entries, read_only=check or dry_run,
                                                 lock_timeout=lock_timeout)
    # Each git source's ref is resolved once for the whole run, and its files read from the cache.
    entries, unreadable = resolve_git_entries(monorepo, entries)
    survey = _survey_targets(monorepo, entries, halted, unreadable)
    built = _build_needed(monorepo, survey, jobs=jobs, progress=progress)
    results, jobs_to_run, source_errors = _plan_targets(
        survey, built, force=force, dry_run=dry_run or check, diff=diff, lock_timeout=lock_timeout, merge=merge,
        run=new_run(),
    )
    results += _run_targets(monorepo, results, jobs_to_run, source_errors, check=check, jobs=jobs, progress=progress)
    results.sort(key=lambda target: target.project)
    warnings = recovered + monorepo.warnings + tuple(
        w for i in survey.inputs.values() if not isinstance(i, MicropkgError) for w in i.warnings
    )
    warnings += tuple(t.recovered for t in results if t.recovered)
    compiled: tuple[CompileOutcome, ...] = ()
    if recompile and not (check or dry_run):
        compiled = _recompile(monorepo, results, compile_config=compile_config, lock_timeout=lock_timeout,
                              jobs=jobs, progress=progress)
    return SyncResult(
        str(monorepo.root), tuple(results), check=check, dry_run=dry_run, warnings=warnings, compiled=compiled
    )


def _finish_interrupted_runs(
    monorepo: Monorepo, entries: Sequence[SharedEntry], *, read_only: bool, lock_timeout: float
) -> tuple[tuple[str, ...], dict[Path, MicropkgError]]:
    """Step 0: a run killed earlier is finished first, so hashes are compared with a consistent tree;
    --check and --dry-run only report it. A project whose journal cannot be acted on fails
    alone: its targets are reported, and the other targets still sync."""
    sources = {entry.source for entry in entries if entry.source is not None}  # not a git source's
    involved = sorted(sources | {t.project for e in entries for t in e.targets})
    return finish_interrupted(
        involved, read_only=read_only, lock_timeout=lock_timeout,
        shown={path: monorepo.relative(path) for path in involved},
    )


@dataclass
class _Survey:
    """What hashing found, before anything is built."""

    entries: tuple[SharedEntry, ...]  # the shared entries, then those of what they import
    inputs: dict[int, PackageInputs | MicropkgError]  # each entry's source, read (or why it cannot be)
    locks: dict[Path, Lock | MicropkgError]  # each target's lock (or why it cannot be used)
    per_target: dict[Path, list[tuple[SharedEntry, TargetState]]]


def _survey_targets(
    monorepo: Monorepo, entries: Sequence[SharedEntry], halted: Mapping[Path, MicropkgError],
    unreadable: Mapping[int, MicropkgError],
) -> _Survey:
    """Step 1: hash every source and compare with each target's lock: no building yet.
    A source that cannot be read (``unreadable``: git sources) fails its own targets, never the other entries."""
    failed = {entry.index: halted[entry.source] for entry in entries if entry.source in halted}
    failed.update(unreadable)
    # What the shared micro-packages import goes along, as entries of its own.
    inputs, closure = shared_inputs(monorepo, entries, failed)
    survey = _Survey((*entries, *closure.entries), inputs, {}, {})
    locks = survey.locks
    for entry in survey.entries:
        for target in entry.targets:
            if target.project in halted:
                locks[target.project] = halted[target.project]
            if target.project not in locks:
                try:
                    locks[target.project] = read_project_lock(load_project(target.project))
                except MicropkgError as exc:  # one unreadable target must not stop the others
                    locks[target.project] = exc
            state = _target_state(monorepo, entry, target, survey, halted)
            needed_by = closure.dependents.get((entry.index, target.project))
            if needed_by:
                state = replace(state, dependency_of=", ".join(needed_by))
            survey.per_target.setdefault(target.project, []).append((entry, state))
    return survey


def _target_state(
    monorepo: Monorepo, entry: SharedEntry, target: Any, survey: _Survey, halted: Mapping[Path, MicropkgError]
) -> TargetState:
    """One target's state for one entry; a lock or an installed file that cannot be read marks
    the target's lock unusable."""
    lock = survey.locks[target.project]
    source_inputs = survey.inputs[entry.index]
    if isinstance(lock, MicropkgError) or isinstance(source_inputs, MicropkgError):
        return TargetState(monorepo.relative(target.project), target.module, entry.micropkg,
                           monorepo.source_of(entry),
                           INTERRUPTED if target.project in halted
                           else LOCK_UNREADABLE if isinstance(lock, MicropkgError) else SOURCE_MISSING)
    try:
        return compare(monorepo, entry, target.project, target.module, source_inputs.digest, lock)
    except MicropkgError as exc:  # an installed file that cannot be hashed
        survey.locks[target.project] = exc
        return TargetState(monorepo.relative(target.project), target.module, entry.micropkg,
                           monorepo.source_of(entry), LOCK_UNREADABLE)


def _build_needed(
    monorepo: Monorepo, survey: _Survey, *, jobs: int | None, progress: Callable[[str], None] | None
) -> dict[int, bytes | MicropkgError]:
    """Step 2: build each shared micro-package that some target needs, once."""
    inputs = survey.inputs
    needed = sorted(
        {entry.index for pairs in survey.per_target.values() for entry, state in pairs if state.state not in PASSING}
    )
    by_index = {entry.index: entry for entry in survey.entries}
    for index in needed:
        _say(progress, f"packaging {by_index[index].micropkg} from {monorepo.source_of(by_index[index])}")
    # Each source's micro-packages are found here once, not again in every worker.
    sources: dict[Path, tuple[Project, MicropackageSet]] = {}
    builds: dict[int, tuple[Project, PackageInputs, MicropackageSet]] = {}
    for index in needed:
        source_inputs = inputs[index]
        if isinstance(source_inputs, MicropkgError):
            continue
        source = by_index[index].project
        try:
            if source not in sources:
                sources[source] = source_micropackages(monorepo, source)
        except MicropkgError as exc:
            inputs[index] = exc
            continue
        project, known = sources[source]
        builds[index] = (project, source_inputs, known)
    outcomes = map_collecting_errors(_build, list(builds.values()), jobs=jobs)
    built: dict[int, bytes | MicropkgError] = dict(zip(builds, outcomes))
    built.update({i: error for i, error in inputs.items() if isinstance(error, MicropkgError)})
    return built


def _plan_targets(
    survey: _Survey, built: Mapping[int, bytes | MicropkgError], *, force: bool, dry_run: bool, diff: bool,
    lock_timeout: float, merge: bool, run: str,
) -> tuple[list[TargetSync], list[TargetJob], dict[Path, str]]:
    """Step 3: what each target needs: nothing (in sync), nothing it can take (failed), or a job
    installing its stale entries. Also each target that fails on a source while its other
    entries are still installed, with why."""
    results: list[TargetSync] = []
    jobs_to_run: list[TargetJob] = []
    source_errors: dict[Path, str] = {}
    for target_root in sorted(survey.per_target):
        pairs = survey.per_target[target_root]
        states = tuple(state for _, state in pairs)
        unreadable = survey.locks[target_root]
        if isinstance(unreadable, MicropkgError):
            results.append(TargetSync(states[0].project, states, "failed", error=str(unreadable)))
            continue
        stale = [(entry, state) for entry, state in pairs if state.state not in PASSING]
        if not stale:
            results.append(TargetSync(states[0].project, states, IN_SYNC))
            continue
        broken = [built[e.index] for e, _ in stale if isinstance(built[e.index], MicropkgError)]
        if broken:
            # The target fails, but the entries whose source is fine are still installed.
            source_errors[target_root] = f"source: {broken[0]}"
            stale = [(e, s) for e, s in stale if not isinstance(built[e.index], MicropkgError)]
            if not stale:
                results.append(TargetSync(states[0].project, states, "failed", error=source_errors[target_root]))
                continue
        installs = tuple(
            TargetInstall(built[e.index], source_location(e, target_root), e.alias, e.destination, e.env, e.merge,  # type: ignore[arg-type]
                          e.commit)
            for e, _ in stale
        )
        jobs_to_run.append(
            TargetJob(target_root, states, installs, force, dry_run, diff, lock_timeout, inner_jobs=None, run=run,
                      merge=merge)
        )
    if len(jobs_to_run) > 1:
        jobs_to_run = [replace(job, inner_jobs=1) for job in jobs_to_run]
    return results, jobs_to_run, source_errors


def _run_targets(
    monorepo: Monorepo, done: Sequence[TargetSync], jobs_to_run: Sequence[TargetJob], source_errors: Mapping[Path, str],
    *, check: bool, jobs: int | None, progress: Callable[[str], None] | None,
) -> list[TargetSync]:
    """Step 4: install into each target that needs it, each target as one transaction; an
    interruption says how each target was left."""
    for job in jobs_to_run:
        _say(progress, f"{'checking' if check else 'syncing'} {job.states[0].project}")
    mark = log_mark()
    try:
        outcomes = map_collecting_errors(sync_target, jobs_to_run, jobs=jobs)
    except InterruptedBatch as stop:
        raise interrupted(stop, _how_left(done, jobs_to_run, stop.results, mark, monorepo)) from None
    results = []
    for job, outcome in zip(jobs_to_run, outcomes):
        if isinstance(outcome, MicropkgError):
            outcome = TargetSync(job.states[0].project, job.states, "failed", error=str(outcome))
        if job.root in source_errors:
            done_here = f"its other shared micro-packages: {outcome.outcome}" + (
                f" ({len(outcome.files)} files)" if outcome.files else ""
            )
            error = "; ".join(filter(None, (source_errors[job.root], outcome.error or done_here)))
            outcome = replace(outcome, outcome="failed", error=error)
        results.append(outcome)
    return results


def _recompile(
    monorepo: Monorepo, results: Sequence[TargetSync], *, compile_config: Mapping[str, Any] | None,
    lock_timeout: float, jobs: int | None, progress: Callable[[str], None] | None,
) -> tuple[CompileOutcome, ...]:
    """Step 5 (with ``recompile``): compile each target whose ``requirements.in`` changed, once."""
    # requirements_in_changed is only set once a target's transaction committed, also for a
    # target that failed on another entry's source after its own entries were installed.
    changed = [
        monorepo.root / t.project for t in results
        if t.requirements_in_changed and t.outcome in ("updated", "failed")
    ]
    try:
        return compile_projects(
            changed, invoke_config=compile_config, lock_timeout=lock_timeout,
            shown={path: monorepo.relative(path) for path in changed}, jobs=jobs, activity=activity_of(progress),
        )
    except KeyboardInterrupt as exc:
        raise interrupted(exc, [(t.project, f"{COMPLETED} ({t.outcome})") for t in results]) from None
