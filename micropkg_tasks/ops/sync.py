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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from micropkg_tasks.core.errors import ConflictError, MicropkgError
from micropkg_tasks.core.lockfile import Lock, changed_files, read_lock
from micropkg_tasks.core.monorepo import Monorepo, SharedEntry, require_monorepo, select_shared
from micropkg_tasks.core.project import load_project
from micropkg_tasks.core.sdist_read import read_sdist
from micropkg_tasks.core.transaction import CONFLICT, UNCHANGED
from micropkg_tasks.ops.compile_batch import CompileOutcome, compile_projects
from micropkg_tasks.ops.install_plan import PlannedFile
from micropkg_tasks.ops.build import PackageInputs, build_from_inputs, read_inputs
from micropkg_tasks.ops.parallel import map_collecting_errors
from micropkg_tasks.ops.pull import SdistToInstall, install_sdists
from micropkg_tasks.ops.sync_deps import dependency_entries

IN_SYNC = "in sync"
UPSTREAM_MOVED = "upstream moved"
NOT_INSTALLED = "not installed"
LOCALLY_EDITED = "locally edited"
UNREADABLE = "lock unreadable"

EXIT_IN_SYNC = 0
EXIT_UPSTREAM_MOVED = 1
EXIT_LOCALLY_EDITED = 3


@dataclass(frozen=True)
class TargetState:
    """How one installed copy compares with its source and with what was installed."""

    project: str  # relative to the monorepo root
    module: str
    micropkg: str
    source: str  # the source project, relative to the monorepo root
    state: str
    edited: tuple[str, ...] = ()  # files that differ from the lock (or are missing)
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
            if LOCALLY_EDITED in states:
                return EXIT_LOCALLY_EDITED
            if UNREADABLE in states:
                return 1
            return EXIT_UPSTREAM_MOVED if states - {IN_SYNC} else EXIT_IN_SYNC
        failed = any(t.outcome in ("refused", "failed") for t in self.targets) or any(c.error for c in self.compiled)
        return 1 if failed else 0

    @property
    def changed_projects(self) -> tuple[str, ...]:
        return tuple(t.project for t in self.targets if t.outcome == "updated")


def _edited_files(root: Path, lock: Lock, module: str) -> tuple[str, ...]:
    entry = lock.entries.get(module)
    if entry is None:
        return ()
    edited, missing = changed_files(root, entry)
    return tuple(sorted(edited + missing))


def compare(monorepo: Monorepo, entry: SharedEntry, target_root: Path, module: str, digest: str, lock: Lock) -> TargetState:
    """The state of one target, from hashes alone: nothing is built."""
    edited = _edited_files(target_root, lock, module)
    installed = lock.entries.get(module)
    if edited:
        state = LOCALLY_EDITED
    elif installed is None:
        state = NOT_INSTALLED
    elif installed.source_sha256 != digest:
        state = UPSTREAM_MOVED
    else:
        state = IN_SYNC
    return TargetState(
        project=monorepo.relative(target_root),
        module=module,
        micropkg=entry.micropkg,
        source=monorepo.relative(entry.source),
        state=state,
        edited=edited,
    )


def source_location(entry: SharedEntry, target_root: Path) -> str:
    """How a synced copy records its source in the target's lock: ``<source project>#<module path>``."""
    return f"{Path(os.path.relpath(entry.source, target_root)).as_posix()}#{entry.micropkg}"


@dataclass(frozen=True)
class _Install:
    data: bytes  # the sdist, built once per shared entry (already named after the alias)
    location: str
    alias: str | None  # recorded in the target's lock options
    destination: str | None
    env: str


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


def _sync_target(job: _TargetJob) -> TargetSync:
    shown = job.states[0].project
    try:
        project = load_project(job.root)
        items = [
            SdistToInstall(read_sdist(i.data, source=i.location), i.location, i.alias, i.destination, i.env)
            for i in job.installs
        ]
        batch = install_sdists(
            project, items, force=job.force, dry_run=job.dry_run, diff=job.diff, lock_timeout=job.lock_timeout,
            verb="sync", jobs=job.inner_jobs,
        )
    except ConflictError as exc:
        return TargetSync(shown, job.states, "refused", error=str(exc), details=tuple(exc.details))
    except MicropkgError as exc:
        return TargetSync(shown, job.states, "failed", error=str(exc), details=tuple(exc.details))
    files = tuple(f for result in batch.results for f in result.files if f.action != UNCHANGED)
    conflicts = tuple(f"{f.path} ({f.reason})" for f in files if f.action == CONFLICT)
    if job.dry_run and conflicts:
        # A real run would refuse this target: say so rather than call it in sync.
        return TargetSync(
            shown, job.states, "would refuse", files=files, details=conflicts, diff=batch.diff,
            error=f"{len(conflicts)} file(s) were edited locally (use --force to overwrite them)",
        )
    if job.dry_run:
        outcome = "would update" if batch.changes else IN_SYNC
    else:
        outcome = "updated" if batch.changes else IN_SYNC
    return TargetSync(
        shown, job.states, outcome, files=files, diff=batch.diff,
        requirements_in_changed=batch.requirements_in_changed,
    )


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _build(item: tuple[Path, PackageInputs]) -> bytes:
    source_root, inputs = item
    return build_from_inputs(load_project(source_root), inputs).data


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
) -> SyncResult:
    """Bring every target of every shared micro-package in step with its source.

    ``check`` writes nothing and reports each target's state (see ``SyncResult.exit_code``).
    ``root`` is the monorepo root, or any folder below it (default: the current folder).
    With ``recompile``, each target whose ``requirements.in`` changed is compiled once at the end.
    """
    monorepo = require_monorepo(root)
    entries = select_shared(monorepo, only)

    # 1. Hash every source and compare with each target's lock: no building yet.
    inputs = {
        entry.index: read_inputs(load_project(entry.source), entry.micropkg, entry.alias, entry.env, for_distribution=False)
        for entry in entries
    }
    # What the shared micro-packages import goes along, as entries of its own.
    closure = dependency_entries(monorepo, entries, inputs)
    for extra in closure.entries:
        inputs[extra.index] = read_inputs(load_project(extra.source), extra.micropkg, None, extra.env, for_distribution=False)
    entries = (*entries, *closure.entries)
    locks: dict[Path, Lock | MicropkgError] = {}
    per_target: dict[Path, list[tuple[SharedEntry, TargetState]]] = {}
    for entry in entries:
        for target in entry.targets:
            if target.project not in locks:
                try:
                    locks[target.project] = read_lock(load_project(target.project).lock_path)
                except MicropkgError as exc:  # one unreadable target must not stop the others
                    locks[target.project] = exc
            lock = locks[target.project]
            if isinstance(lock, MicropkgError):
                state = TargetState(monorepo.relative(target.project), target.module, entry.micropkg,
                                    monorepo.relative(entry.source), UNREADABLE)
            else:
                state = compare(monorepo, entry, target.project, target.module, inputs[entry.index].digest, lock)
            needed_by = closure.dependents.get((entry.index, target.project))
            if needed_by:
                state = replace(state, dependency_of=", ".join(needed_by))
            per_target.setdefault(target.project, []).append((entry, state))

    # 2. Build each shared micro-package that some target needs, once.
    needed = sorted(
        {entry.index for pairs in per_target.values() for entry, state in pairs if state.state != IN_SYNC}
    )
    by_index = {entry.index: entry for entry in entries}
    for index in needed:
        _say(progress, f"packaging {by_index[index].micropkg} from {monorepo.relative(by_index[index].source)}")
    built = dict(zip(needed, map_collecting_errors(
        _build, [(by_index[i].source, inputs[i]) for i in needed], jobs=jobs
    )))

    # 3. Install into each target that needs it, each target as one transaction.
    results: list[TargetSync] = []
    jobs_to_run: list[_TargetJob] = []
    for target_root in sorted(per_target):
        pairs = per_target[target_root]
        states = tuple(state for _, state in pairs)
        unreadable = locks[target_root]
        if isinstance(unreadable, MicropkgError):
            results.append(TargetSync(states[0].project, states, "failed", error=str(unreadable)))
            continue
        stale = [(entry, state) for entry, state in pairs if state.state != IN_SYNC]
        if not stale:
            results.append(TargetSync(states[0].project, states, IN_SYNC))
            continue
        broken = [built[e.index] for e, _ in stale if isinstance(built[e.index], MicropkgError)]
        if broken:
            error = broken[0]
            assert isinstance(error, MicropkgError)
            results.append(TargetSync(states[0].project, states, "failed", error=f"source: {error}"))
            continue
        installs = tuple(
            _Install(built[e.index], source_location(e, target_root), e.alias, e.destination, e.env)  # type: ignore[arg-type]
            for e, _ in stale
        )
        jobs_to_run.append(
            _TargetJob(target_root, states, installs, force, dry_run or check, diff, lock_timeout, inner_jobs=None)
        )
    if len(jobs_to_run) > 1:
        jobs_to_run = [replace(job, inner_jobs=1) for job in jobs_to_run]
    for job in jobs_to_run:
        _say(progress, f"{'checking' if check else 'syncing'} {job.states[0].project}")
    for job, outcome in zip(jobs_to_run, map_collecting_errors(_sync_target, jobs_to_run, jobs=jobs)):
        if isinstance(outcome, MicropkgError):
            outcome = TargetSync(job.states[0].project, job.states, "failed", error=str(outcome))
        results.append(outcome)
    results.sort(key=lambda target: target.project)
    warnings = monorepo.warnings + tuple(w for i in inputs.values() for w in i.warnings)
    compiled: tuple[CompileOutcome, ...] = ()
    if recompile and not (check or dry_run):
        changed = [monorepo.root / t.project for t in results if t.outcome == "updated" and t.requirements_in_changed]
        compiled = compile_projects(
            changed, invoke_config=compile_config, lock_timeout=lock_timeout,
            shown={path: monorepo.relative(path) for path in changed},
        )
    return SyncResult(
        str(monorepo.root), tuple(results), check=check, dry_run=dry_run, warnings=warnings, compiled=compiled
    )
