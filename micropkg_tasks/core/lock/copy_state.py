"""The states an installed copy of a micro-package can be in, and what each one means for a gate.

Every command that says how a copy stands (``status`` in a project and at the root,
``check``, ``sync-shared --check``, ``pull-all``, ``prerelease``) names it with one
of these words, worked out by :func:`copy_state` from the same facts. The facts are
gathered in ``ops/copies/copy_state.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from micropkg_tasks.core.errors import EXIT_LOCAL_EDITS
from micropkg_tasks.core.lock.lockfile import LockEntry, changed_files, conflicted_files, customised_files

IN_SYNC = "in sync"
CUSTOMISED = "customised"  # local changes a merge kept or the user accepted; otherwise in sync
UPSTREAM_MOVED = "upstream moved"
LOCALLY_EDITED = "locally edited"
CONFLICTED = "conflicted"  # a --merge left conflict markers that are still there
BROKEN = "broken"  # imports a module of its source project that the target does not have
INTERRUPTED = "interrupted"  # a killed run left a journal: `micropkg recover`
SOURCE_MISSING = "source missing"  # the declared source cannot be read any more
ORPHANED = "orphaned"  # no declaration names it any more
NOT_INSTALLED = "not installed"  # declared, never installed yet
OTHER_SOURCE = "installed from another source"  # the lock names another source than the declaration
LOCK_UNREADABLE = "lock unreadable"
# A git source's ref was not resolved (check --offline): its files were checked, not where the ref is now.
NOT_CHECKED_OFFLINE = "not checked (offline)"

# A gate passes on these, and only these.
PASSING = frozenset({IN_SYNC, CUSTOMISED, NOT_CHECKED_OFFLINE})
# Findings a person made in the target: exit 3 when they are the only findings.
LOCAL_EDITS = frozenset({LOCALLY_EDITED, CONFLICTED})

EXIT_OK = 0
EXIT_DRIFT = 1

# What each state asks of the user: the one command (or edit) that resolves it.
RESOLVED_BY = {
    IN_SYNC: "",
    CUSTOMISED: "",
    UPSTREAM_MOVED: "run sync-shared (shared copies) or pull --all (pull-manifest copies)",
    LOCALLY_EDITED: "run sync-shared --merge, or micropkg accept to keep the edits, or --force to drop them",
    CONFLICTED: "resolve the conflict markers by hand",
    BROKEN: "add the imported module to the source's package manifest, or pull with --with-deps",
    INTERRUPTED: "run micropkg recover",
    SOURCE_MISSING: "restore the source, or correct the declaration that names it",
    ORPHANED: "declare it again, or remove the copy",
    NOT_INSTALLED: "run sync-shared (shared copies) or pull --all (pull-manifest copies)",
    OTHER_SOURCE: "run sync-shared --force to take it from the declared source",
    LOCK_UNREADABLE: "correct micropkg.lock",
    NOT_CHECKED_OFFLINE: "",
}


def exit_code(states: Iterable[str]) -> int:
    """0 when every state passes; 3 when a copy was edited locally (a person must look at it
    before anything else can be done); 1 for any other finding."""
    findings = {state for state in states if state not in PASSING}
    if not findings:
        return EXIT_OK
    return EXIT_LOCAL_EDITS if findings & LOCAL_EDITS else EXIT_DRIFT


@dataclass(frozen=True)
class LocalFacts:
    """How the files of one installed copy compare with what the lock says was installed."""

    edited: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    conflicted: tuple[str, ...] = ()
    customised: tuple[str, ...] = ()  # hold local content recorded as intended (a merge kept it, or accept)


def local_facts(root: Path, entry: LockEntry | None) -> LocalFacts:
    if entry is None:
        return LocalFacts()
    edited, missing = changed_files(root, entry)
    return LocalFacts(edited, missing, conflicted_files(root, entry), customised_files(root, entry))


def copy_state(*, interrupted: bool, local: LocalFacts, upstream: str, broken: bool = False) -> str:
    """The one state of a copy. ``upstream`` says how the installed copy compares with its
    source, whatever was edited here: in sync, upstream moved, not installed, installed from
    another source, source missing, orphaned, or not checked (offline)."""
    if interrupted:
        return INTERRUPTED
    if local.conflicted:
        return CONFLICTED
    if local.edited or local.missing:
        return LOCALLY_EDITED
    if broken and upstream in (IN_SYNC, UPSTREAM_MOVED):
        return BROKEN
    if upstream == IN_SYNC and local.customised:
        return CUSTOMISED
    return upstream
