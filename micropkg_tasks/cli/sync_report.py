"""Human-readable reports of ``sync-shared``: each target's outcome, or with --check its state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from micropkg_tasks.cli.output import err, out, warn
from micropkg_tasks.cli.report import MERGE_ACTIONS, plural
from micropkg_tasks.core.merge import CONFLICT, MERGE_CONFLICT
from micropkg_tasks.core.project.monorepo import shared_location

if TYPE_CHECKING:  # the operations are imported by the task that runs one, not by every start-up
    from micropkg_tasks.ops.sync.results import SyncResult, TargetSync


_UPSTREAM_WORDS = {"in sync": "; in sync with upstream", "upstream moved": "; upstream moved"}


def _sync_check(result: SyncResult) -> None:
    from micropkg_tasks.ops.sync.results import WOULD_REFUSE

    for target in result.targets:
        for state in target.states:
            # Local edits do not hide whether upstream moved: both are said.
            upstream = _UPSTREAM_WORDS.get(state.upstream, "") if state.upstream != state.state else ""
            needed = f" (a dependency of {state.dependency_of})" if state.dependency_of else ""
            out(f"{target.project}: {state.module} (from {shared_location(state.source, state.micropkg)}): {state.state}{upstream}{needed}")
            for path in state.edited:
                out(f"  edited    {path}")
        for item in target.files:
            if item.action != CONFLICT:
                out(f"  {item.action:<9} {item.path}")
        if target.outcome == "failed":
            err(f"{target.project}: failed: {target.error}")
        if target.outcome == WOULD_REFUSE:
            err(f"{target.project}: would be refused: {target.error}")
            for line in target.details:
                err(f"  {line}")
        for line in target.refused if target.outcome != WOULD_REFUSE else ():
            err(f"{target.project}: would be refused: {line}")
    from micropkg_tasks.core.lock.copy_state import OTHER_SOURCE

    if any(state.state == OTHER_SOURCE for target in result.targets for state in target.states):
        err("a copy installed from another source has two owners: remove that copy with "
            "`micropkg remove MODULE --project TARGET` and sync again, or switch it with sync-shared --force")
    verdict = {0: "everything is in sync", 1: "upstream moved: run sync-shared", 3: "targets were edited locally"}
    if result.refusing and result.exit_code == 1:
        err("sync-shared would refuse the targets above: fix what is named there first")
    else:
        out(verdict[result.exit_code])


def _sync_requirements(target: TargetSync) -> None:
    """Every requirement a sync added, removed or overlapped, for every target, as pull reports them."""
    for line in target.requirements_added:
        out(f"  requirement added: {line}")
    for line in target.requirements_removed:
        out(f"  requirement removed: {line}")
    for line in target.requirements_overlaps:
        out(f"  requirement overlap: {line}")


def sync_result(result: SyncResult, *, verbose_files: bool) -> None:
    from micropkg_tasks.ops.sync.results import WOULD_REFUSE

    if result.check:
        _sync_check(result)
    for target in result.targets if not result.check else ():
        stale = ", ".join(
            f"{s.module} {s.state}" + (f", installed as a dependency of {s.dependency_of}" if s.dependency_of else "")
            for s in target.states if s.state != "in sync"
        )
        if target.outcome == "in sync":
            out(f"{target.project}: in sync")
        elif target.outcome in ("updated", "would update"):
            out(f"{target.project}: {target.outcome} {plural(len(target.files), 'file')} ({stale})")
            for item in target.files:
                if verbose_files or item.action in MERGE_ACTIONS:
                    reason = f" ({item.reason})" if item.reason and item.action in MERGE_ACTIONS else ""
                    out(f"  {item.action:<9} {item.path}{reason}")
            for line in target.refused:
                err(f"  {'would be refused' if result.dry_run else 'refused'}: {line}")
            for line in target.details:
                err(f"    {line}")
        else:
            label = "would be refused" if target.outcome == WOULD_REFUSE else target.outcome
            err(f"{target.project}: {label}: {target.error}")
            for line in target.details:
                err(f"  {line}")
        _sync_requirements(target)
        if target.diff:
            out(target.diff.rstrip("\n"))
    for message in result.warnings:
        warn(message)
    if result.check:
        return
    not_synced = [t.project for t in result.targets if t.outcome in ("refused", "failed")]
    partly = [
        f"{t.project} ({', '.join(line.split(':', 1)[0] for line in t.refused)})"
        for t in result.targets if t.refused and t.outcome not in ("refused", "failed")
    ]
    conflicted = [t.project for t in result.targets if t.outcome == MERGE_CONFLICT]
    if result.dry_run:
        out("dry run: nothing was written")
    elif not_synced or conflicted or partly:
        if conflicted:
            err(f"{plural(len(conflicted), 'project')} merged with conflicts to resolve by hand: {', '.join(conflicted)}")
        if not_synced:
            err(f"{plural(len(not_synced), 'project')} not synced: {', '.join(not_synced)}")
        if partly:
            err(f"{plural(len(partly), 'project')} synced except refused micro-packages: {', '.join(partly)}")
    else:
        changed = result.changed_projects
        out(f"synced {plural(len(changed), 'project')}" if changed else "everything was already in sync: nothing was written")


