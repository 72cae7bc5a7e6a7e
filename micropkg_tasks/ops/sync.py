"""``sync-shared``: keep every target's copy of a shared micro-package in step with its source.

For each ``[[tool.micropkg.shared]]`` entry the source files are hashed first;
a target whose lock records the same hash and whose files are unedited is
already in sync, and nothing is built for it. Otherwise the micro-package is
packaged once, in memory, and installed into each target that needs it
through the pull machinery, with update semantics. Each target is its own
transaction: one refused or failing target leaves the others to be synced.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from micropkg_tasks.core.copy_state import (
    IN_SYNC,
    INTERRUPTED,
    LOCK_UNREADABLE,
    PASSING,
    SOURCE_MISSING,
    copy_state,
    exit_code,
    local_facts,
)
from micropkg_tasks.core.errors import EXIT_INSTALLED_NOT_COMPILED, ConflictError, MicropkgError
from micropkg_tasks.core.interrupts import COMPLETED, Interrupted, interrupted
from micropkg_tasks.core.lockfile import Lock, read_project_lock
from micropkg_tasks.core.monorepo import Monorepo, SharedEntry, require_monorepo, select_shared
from micropkg_tasks.core.project import Project, load_project
from micropkg_tasks.core.sdist_read import SdistContents, read_sdist
from micropkg_tasks.core.transaction import CONFLICT, UNCHANGED, log_mark, outcome_since
from micropkg_tasks.ops.compile_batch import CompileOutcome, activity_of, compile_projects
from micropkg_tasks.ops.install_plan import MERGE_CONFLICT, PlannedFile
from micropkg_tasks.ops.build import build_from_inputs
from micropkg_tasks.ops.build_inputs import PackageInputs
from micropkg_tasks.ops.parallel import InterruptedBatch, how_left, map_collecting_errors
from micropkg_tasks.ops.install import install_sdists
from micropkg_tasks.ops.install_item import SdistToInstall
from micropkg_tasks.ops.recover import finish_interrupted
from micropkg_tasks.ops.copy_state import broken_import, shared_upstream, source_location
from micropkg_tasks.ops.package_deps import MicropackageSet
from micropkg_tasks.ops.sync_deps import shared_inputs, source_micropackages

WOULD_REFUSE = "would refuse"  # a dry run's or a check's target that the real run would refuse


@dataclass(frozen=True)
class TargetState:
    """How one installed copy compares with its source and with what was installed."""

    project: str  # relative to the monorepo root
    module: str
    micropkg: str
    source: str  # the source project, relative to the monorepo root
    state: str
    edited: tuple[str, ...] = ()  # files that differ from the lock (or are missing)
    # How the installed copy compares with its source, whatever was edited locally:
    # "in sync", "upstream moved" or "not installed".
    upstream: str = ""
    dependency_of: str = ""  # set for a copy synced only because these shared micro-packages import it


@dataclass(frozen=True)
class TargetSync:
    """What sync did (or would do) in one target project."""

    project: str
    states: tuple[TargetState, ...]
    outcome: str  # "in sync", "updated", "would update", "refused", "failed"
    files: tuple[PlannedFile, ...] = ()  # the files that change (or conflict)
    error: str = ""
    details: tuple[str, ...] = ()
    diff: str = ""
    requirements_in_changed: bool = False
    refused: tuple[str, ...] = ()  # micro-packages left as they were ("<module>: <why>"); the others still synced
    requirements_added: tuple[str, ...] = ()  # "<module>: <requirement>", for every micro-package installed
    requirements_overlaps: tuple[str, ...] = ()  # same name listed with another specifier: both kept
    requirements_removed: tuple[str, ...] = ()
    recovered: str = ""  # an interrupted earlier run this one rolled back or forward first
    requirements_conflicts: tuple[str, ...] = ()  # requirements that cannot both hold: the target is refused


@dataclass(frozen=True)
class SyncResult:
    root: str
    targets: tuple[TargetSync, ...]
    check: bool = False
    dry_run: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)
    compiled: tuple[CompileOutcome, ...] = ()

    @property
    def exit_code(self) -> int:
        states = {state.state for target in self.targets for state in target.states}
        if self.check:
            # Local edits first (3), then drift or what the real run would refuse (1).
            return exit_code(states) or (ConflictError.exit_code if self.refusing else 0)
        if self.refusing:
            return ConflictError.exit_code  # as the real run's refusal
        failed = any(t.outcome in ("refused", "failed", MERGE_CONFLICT) or t.refused for t in self.targets)
        if failed:
            return 1
        # Every target's install committed; only the compile after it failed.
        return EXIT_INSTALLED_NOT_COMPILED if any(c.error for c in self.compiled) else 0

    @property
    def refusing(self) -> bool:
        """A dry run or a check found something the real run would refuse."""
        return any(t.outcome == WOULD_REFUSE or t.refused for t in self.targets)

    @property
    def changed_projects(self) -> tuple[str, ...]:
        return tuple(t.project for t in self.targets if t.outcome == "updated")


def compare(monorepo: Monorepo, entry: SharedEntry, target_root: Path, module: str, digest: str, lock: Lock) -> TargetState:
    """The state of one target, from hashes alone: nothing is built. The state is the one
    model's (``ops/copy_state.py``), so ``--check`` and ``status`` cannot disagree."""
    installed = lock.entries.get(module)
    upstream = shared_upstream(source_location(entry, target_root), target_root, installed, digest)
    local = local_facts(target_root, installed)
    broken = bool(installed and broken_import(load_project(target_root), installed))
    return TargetState(
        project=monorepo.relative(target_root),
        module=module,
        micropkg=entry.micropkg,
        source=monorepo.relative(entry.source),
        state=copy_state(interrupted=False, local=local, upstream=upstream, broken=broken),
        edited=tuple(sorted(local.edited + local.missing)),
        upstream=upstream,
    )


@dataclass(frozen=True)
class _Install:
    data: bytes  # the sdist, built once per shared entry (already named after the alias)
    location: str
    alias: str | None  # recorded in the target's lock options
    destination: str | None
    env: str
    merge: bool = False  # the shared entry says merge = true


@dataclass(frozen=True)
class _TargetJob:
    root: Path
    states: tuple[TargetState, ...]
    installs: tuple[_Install, ...]
    force: bool
    dry_run: bool
    diff: bool
    lock_timeout: float
    inner_jobs: int | None  # 1 when targets already run in parallel processes
    merge: bool = False


# A worker installs the same few sdists into target after target: each is read once per run.
_read_sdists: dict[tuple[bytes, str], SdistContents] = {}


def _read_once(data: bytes, location: str) -> SdistContents:
    key = (hashlib.sha256(data).digest(), location)
    if key not in _read_sdists:
        if len(_read_sdists) >= 64:
            _read_sdists.clear()
        _read_sdists[key] = read_sdist(data, source=location)
    return _read_sdists[key]


def _sync_target(job: _TargetJob) -> TargetSync:
    shown = job.states[0].project
    try:
        project = load_project(job.root)
        items = [
            SdistToInstall(_read_once(i.data, i.location), i.location, i.alias, i.destination, i.env, declared=True,
                           merge=i.merge)
            for i in job.installs
        ]
        batch = install_sdists(
            project, items, force=job.force, dry_run=job.dry_run, diff=job.diff, lock_timeout=job.lock_timeout,
            verb="sync", jobs=job.inner_jobs, each_alone=True, merge=job.merge,
        )
    except ConflictError as exc:
        return TargetSync(shown, job.states, "refused", error=str(exc), details=tuple(exc.details))
    except MicropkgError as exc:
        return TargetSync(shown, job.states, "failed", error=str(exc), details=tuple(exc.details))
    files = tuple(f for result in batch.results for f in result.files if f.action != UNCHANGED)
    conflicts = tuple(f"{f.path} ({f.reason})" for f in files if f.action == CONFLICT)
    refused = tuple(f"{result.module}: {result.refused}" for result in batch.results if result.refused)
    requirements = dict(
        requirements_added=tuple(f"{r.module}: {line}" for r in batch.results for line in r.requirements_added),
        requirements_overlaps=tuple(line for r in batch.results for line in r.requirements_overlaps),
        requirements_removed=tuple(f"{r.module}: {line}" for r in batch.results for line in r.requirements_removed),
        requirements_conflicts=tuple(line for r in batch.results for line in r.requirements_conflicts),
    )
    if batch.refusals:
        # A dry run or a check: the real run would refuse this target as a whole, for these reasons.
        return TargetSync(
            shown, job.states, WOULD_REFUSE, files=files, diff=batch.diff,
            error="; ".join(refusal.message for refusal in batch.refusals),
            details=tuple(line for refusal in batch.refusals for line in refusal.details), **requirements,
        )
    if refused and not batch.changes:
        # Nothing else to do here: the target is refused as a whole, as a real run would.
        verb = WOULD_REFUSE if job.dry_run else "refused"
        return TargetSync(
            shown, job.states, verb, files=files, details=conflicts, diff=batch.diff, refused=refused,
            error="; ".join(refused), **requirements,
        )
    merge_conflicts = tuple(f for f in files if f.action == MERGE_CONFLICT)
    if merge_conflicts and not job.dry_run:
        return TargetSync(
            shown, job.states, MERGE_CONFLICT, files=files, diff=batch.diff,
            details=tuple(f"{f.path} ({f.reason})" for f in merge_conflicts),
            error=f"{len(merge_conflicts)} file(s) merged with conflicts: resolve the markers by hand",
            requirements_in_changed=batch.requirements_in_changed, refused=refused, **requirements,
        )
    if job.dry_run:
        outcome = "would update" if batch.changes else IN_SYNC
    else:
        outcome = "updated" if batch.changes else IN_SYNC
    return TargetSync(
        shown, job.states, outcome, files=files, diff=batch.diff, details=conflicts, refused=refused,
        requirements_in_changed=batch.requirements_in_changed, recovered=batch.recovered, **requirements,
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


def _how_left(done: Sequence[TargetSync], jobs: Sequence[_TargetJob], results: Sequence[Any], mark: int,
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
    # 0. A run killed earlier is finished first, so hashes are compared with a consistent tree;
    # --check and --dry-run only report it. A project whose journal cannot be acted on fails
    # alone: its targets are reported, and the other targets still sync.
    involved = sorted({entry.source for entry in entries} | {t.project for e in entries for t in e.targets})
    recovered, halted = finish_interrupted(
        involved, read_only=check or dry_run, lock_timeout=lock_timeout,
        shown={path: monorepo.relative(path) for path in involved},
    )

    # 1. Hash every source and compare with each target's lock: no building yet.
    # A source that cannot be read fails its own targets, never the other entries.
    failed = {entry.index: halted[entry.source] for entry in entries if entry.source in halted}
    # What the shared micro-packages import goes along, as entries of its own.
    inputs, closure = shared_inputs(monorepo, entries, failed)
    entries = (*entries, *closure.entries)
    locks: dict[Path, Lock | MicropkgError] = {}
    per_target: dict[Path, list[tuple[SharedEntry, TargetState]]] = {}
    for entry in entries:
        for target in entry.targets:
            if target.project in halted:
                locks[target.project] = halted[target.project]
            if target.project not in locks:
                try:
                    locks[target.project] = read_project_lock(load_project(target.project))
                except MicropkgError as exc:  # one unreadable target must not stop the others
                    locks[target.project] = exc
            lock = locks[target.project]
            source_inputs = inputs[entry.index]
            if isinstance(lock, MicropkgError) or isinstance(source_inputs, MicropkgError):
                state = TargetState(monorepo.relative(target.project), target.module, entry.micropkg,
                                    monorepo.relative(entry.source),
                                    INTERRUPTED if target.project in halted
                                    else LOCK_UNREADABLE if isinstance(lock, MicropkgError) else SOURCE_MISSING)
            else:
                try:
                    state = compare(monorepo, entry, target.project, target.module, source_inputs.digest, lock)
                except MicropkgError as exc:  # an installed file that cannot be hashed
                    locks[target.project] = exc
                    state = TargetState(monorepo.relative(target.project), target.module, entry.micropkg,
                                        monorepo.relative(entry.source), LOCK_UNREADABLE)
            needed_by = closure.dependents.get((entry.index, target.project))
            if needed_by:
                state = replace(state, dependency_of=", ".join(needed_by))
            per_target.setdefault(target.project, []).append((entry, state))

    # 2. Build each shared micro-package that some target needs, once.
    needed = sorted(
        {entry.index for pairs in per_target.values() for entry, state in pairs if state.state not in PASSING}
    )
    by_index = {entry.index: entry for entry in entries}
    for index in needed:
        _say(progress, f"packaging {by_index[index].micropkg} from {monorepo.relative(by_index[index].source)}")
    # Each source's micro-packages are found here once, not again in every worker.
    sources: dict[Path, tuple[Project, MicropackageSet]] = {}
    builds: dict[int, tuple[Project, PackageInputs, MicropackageSet]] = {}
    for index in needed:
        source_inputs, source = inputs[index], by_index[index].source
        if isinstance(source_inputs, MicropkgError):
            continue
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

    # 3. Install into each target that needs it, each target as one transaction.
    results: list[TargetSync] = []
    jobs_to_run: list[_TargetJob] = []
    source_errors: dict[Path, str] = {}
    for target_root in sorted(per_target):
        pairs = per_target[target_root]
        states = tuple(state for _, state in pairs)
        unreadable = locks[target_root]
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
            _Install(built[e.index], source_location(e, target_root), e.alias, e.destination, e.env, e.merge)  # type: ignore[arg-type]
            for e, _ in stale
        )
        jobs_to_run.append(
            _TargetJob(
                target_root, states, installs, force, dry_run or check, diff, lock_timeout, inner_jobs=None,
                merge=merge,
            )
        )
    if len(jobs_to_run) > 1:
        jobs_to_run = [replace(job, inner_jobs=1) for job in jobs_to_run]
    for job in jobs_to_run:
        _say(progress, f"{'checking' if check else 'syncing'} {job.states[0].project}")
    _read_sdists.clear()  # run in this process (one job), the cache lasts one run, not the next
    mark = log_mark()
    try:
        outcomes = map_collecting_errors(_sync_target, jobs_to_run, jobs=jobs)
    except InterruptedBatch as stop:
        raise interrupted(stop, _how_left(results, jobs_to_run, stop.results, mark, monorepo)) from None
    finally:
        _read_sdists.clear()
    for job, outcome in zip(jobs_to_run, outcomes):
        if isinstance(outcome, MicropkgError):
            outcome = TargetSync(job.states[0].project, job.states, "failed", error=str(outcome))
        if job.root in source_errors:
            done = f"its other shared micro-packages: {outcome.outcome}" + (
                f" ({len(outcome.files)} files)" if outcome.files else ""
            )
            error = "; ".join(filter(None, (source_errors[job.root], outcome.error or done)))
            outcome = replace(outcome, outcome="failed", error=error)
        results.append(outcome)
    results.sort(key=lambda target: target.project)
    warnings = recovered + monorepo.warnings + tuple(
        w for i in inputs.values() if not isinstance(i, MicropkgError) for w in i.warnings
    )
    warnings += tuple(t.recovered for t in results if t.recovered)
    compiled: tuple[CompileOutcome, ...] = ()
    if recompile and not (check or dry_run):
        # requirements_in_changed is only set once a target's transaction committed, also for a
        # target that failed on another entry's source after its own entries were installed.
        changed = [
            monorepo.root / t.project for t in results
            if t.requirements_in_changed and t.outcome in ("updated", "failed")
        ]
        try:
            compiled = compile_projects(
                changed, invoke_config=compile_config, lock_timeout=lock_timeout,
                shown={path: monorepo.relative(path) for path in changed}, jobs=jobs, activity=activity_of(progress),
            )
        except KeyboardInterrupt as exc:
            raise interrupted(exc, [(t.project, f"{COMPLETED} ({t.outcome})") for t in results]) from None
    return SyncResult(
        str(monorepo.root), tuple(results), check=check, dry_run=dry_run, warnings=warnings, compiled=compiled
    )
