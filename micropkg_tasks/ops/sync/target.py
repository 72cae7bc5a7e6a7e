"""``sync-shared`` in one target: install its stale shared micro-packages as one transaction.

Run in a worker process per target when several targets are synced at once.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from micropkg_tasks.core.change.transaction import UNCHANGED
from micropkg_tasks.core.errors import ConflictError, MicropkgError
from micropkg_tasks.core.lock.copy_state import IN_SYNC
from micropkg_tasks.core.merge import CONFLICT, MERGE_CONFLICT
from micropkg_tasks.core.project.project import load_project
from micropkg_tasks.core.sdist.read import SdistContents, read_sdist
from micropkg_tasks.ops.install.apply import install_sdists
from micropkg_tasks.ops.install.item import SdistToInstall
from micropkg_tasks.ops.sync.results import WOULD_REFUSE, TargetState, TargetSync


@dataclass(frozen=True)
class TargetInstall:
    """One shared micro-package to install into a target."""

    data: bytes  # the sdist, built once per shared entry (already named after the alias)
    location: str
    alias: str | None  # recorded in the target's lock options
    destination: str | None
    env: str
    merge: bool = False  # the shared entry says merge = true
    commit: str | None = None  # a git source: the commit it was packaged from, for the lock


@dataclass(frozen=True)
class TargetJob:
    """Everything a worker needs to sync one target project: plain values, so it can be sent to another process."""

    root: Path
    states: tuple[TargetState, ...]
    installs: tuple[TargetInstall, ...]
    force: bool
    dry_run: bool
    diff: bool
    lock_timeout: float
    inner_jobs: int | None  # 1 when targets already run in parallel processes
    run: str  # the sync run this target is part of (see core/runs.py)
    merge: bool = False


# A worker installs the same few sdists into target after target: each is read once per run
# (see core/runs.py), not once per target.
_read_sdists: OrderedDict[tuple[str, bytes, str], SdistContents] = OrderedDict()
_READ_SDISTS_KEPT = 64


def _read_once(run: str, data: bytes, location: str) -> SdistContents:
    key = (run, hashlib.sha256(data).digest(), location)
    found = _read_sdists.get(key)
    if found is None:
        found = _read_sdists[key] = read_sdist(data, source=location)
        if len(_read_sdists) > _READ_SDISTS_KEPT:
            _read_sdists.popitem(last=False)
    else:
        _read_sdists.move_to_end(key)
    return found


def sync_target(job: TargetJob) -> TargetSync:
    """Install a target's stale shared micro-packages as one transaction; say what happened."""
    shown = job.states[0].project
    try:
        project = load_project(job.root)
        items = [
            SdistToInstall(_read_once(job.run, i.data, i.location), i.location, i.alias, i.destination, i.env, declared=True,
                           merge=i.merge, commit=i.commit)
            for i in job.installs
        ]
        batch = install_sdists(
            project, items, force=job.force, dry_run=job.dry_run, diff=job.diff, lock_timeout=job.lock_timeout,
            verb="sync", jobs=job.inner_jobs, each_alone=True, merge=job.merge, run=job.run,
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
