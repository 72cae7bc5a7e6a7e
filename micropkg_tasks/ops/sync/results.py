"""What ``sync-shared`` reports: each installed copy's state, what happened in each target, and the run."""

from __future__ import annotations

from dataclasses import dataclass, field

from micropkg_tasks.core.errors import EXIT_INSTALLED_NOT_COMPILED, ConflictError
from micropkg_tasks.core.lock.copy_state import exit_code
from micropkg_tasks.core.merge import MERGE_CONFLICT
from micropkg_tasks.ops.compile.batch import CompileOutcome
from micropkg_tasks.ops.install.plan import PlannedFile

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
