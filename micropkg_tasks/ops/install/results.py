"""What installing a batch of sdists did (or, in a dry run, would do): per micro-package and in all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from micropkg_tasks.core.change.transaction import UNCHANGED
from micropkg_tasks.core.merge import MERGE_CONFLICT
from micropkg_tasks.ops.install.plan import PlannedFile

if TYPE_CHECKING:
    from micropkg_tasks.ops.compile.batch import CompileOutcome


@dataclass(frozen=True)
class PullResult:
    """What one pull did (or, with ``dry_run``, would do)."""

    location: str
    module: str
    name: str
    version: str
    sha256: str
    files: tuple[PlannedFile, ...]
    requirements_added: tuple[str, ...] = ()
    requirements_present: tuple[str, ...] = ()
    requirements_conflicts: tuple[str, ...] = ()
    requirements_removed: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    applied: bool = False
    dry_run: bool = False
    requirements_overlaps: tuple[str, ...] = ()
    refused: str = ""  # why this micro-package was (or would be) left as it was, if it was
    depends_on: tuple[str, ...] = ()  # installed modules of the micro-packages it imports
    dependency_of: str | None = None  # installed only because this micro-package imports it

    @property
    def unchanged(self) -> bool:
        """True when the project already held exactly this: nothing was (or would be) written."""
        return not self.refused and all(item.action == UNCHANGED for item in self.files) and not (
            self.requirements_added or self.requirements_removed
        )

    def count(self, action: str) -> int:
        return sum(1 for item in self.files if item.action == action)

    @property
    def merge_conflicts(self) -> tuple[str, ...]:
        """Files written with conflict markers by ``--merge``: to be resolved by hand."""
        return tuple(item.path for item in self.files if item.action == MERGE_CONFLICT)


@dataclass(frozen=True)
class Refusal:
    """What a real run would refuse, found by a dry run or a check: the real run's message and details."""

    message: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class PullBatchResult:
    results: tuple[PullResult, ...]
    changes: tuple[str, ...] = ()  # every file written, relative to the project root
    diff: str = ""
    lock_changed: bool = False
    requirements_in_changed: bool = False
    applied: bool = False
    dry_run: bool = False
    compiled: tuple[CompileOutcome, ...] = ()  # with recompile=True: the one compile this batch needed
    recovered: str = ""  # an interrupted earlier run this one rolled back or forward first
    empty_manifest: str = ""  # with --all: the manifest table that was there but listed nothing
    refusals: tuple[Refusal, ...] = ()  # a dry run: what the real run would refuse (and exit 1 for)

    @property
    def unchanged(self) -> bool:
        return not self.changes

    @property
    def merge_conflicts(self) -> tuple[str, ...]:
        return tuple(path for result in self.results for path in result.merge_conflicts)
