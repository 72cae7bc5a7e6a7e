"""Apply a set of file changes to a project as one unit, and keep runs from interleaving.

Each existing file that is changed or deleted is first *renamed* aside inside
its own folder, so a rollback renames it back: content, mode and mtime come
back exactly, not merely equal bytes. New content is written to a temporary
sibling and renamed into place, so no reader ever sees half a file. Before the
first change an intent journal is written and flushed to disk
(``core/change/journal.py``); any failure before the commit point is rolled back from
that journal, the same way the next run rolls back after ``kill -9``, and the
journal is removed only once every backup is back. SIGINT, SIGTERM and SIGHUP
are held while the files change and act between two files
(``core/change/interrupts.py``): the run rolls back, or, after the commit point,
finishes. Every path is checked against the project root first
(``core/change/pathguard.py``).
"""

from __future__ import annotations

import contextlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from micropkg_tasks.core.change import journal
from micropkg_tasks.core.change.atomic import write_atomically
from micropkg_tasks.core.change.interrupts import (
    COMPLETED,
    NOT_STARTED,
    ROLLED_BACK,
    interrupts_deferred,
    raise_if_pending,
)
from micropkg_tasks.core.change.journal import (
    JournalEntry,
    Recovery,
    backup_path,
    is_real_folder,
    prune_empty_folders,
    temp_path,
)
from micropkg_tasks.core.change.pathguard import PathGuard, guard, relative_path_problem
from micropkg_tasks.core.errors import BusyError, ProjectError

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
UNCHANGED = "unchanged"



@dataclass(frozen=True)
class FileChange:
    path: Path  # absolute
    action: str  # CREATE, UPDATE, DELETE or UNCHANGED
    content: bytes | None = None  # new bytes for CREATE and UPDATE


def _write_new(path: Path, content: bytes) -> None:
    """Write ``content`` to a temporary sibling, then rename it over ``path`` (not yet durable)."""
    write_atomically(path, content, temp=temp_path(path))


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc  # name the file in the report
    finally:
        os.close(descriptor)


def _make_durable(paths: Sequence[Path]) -> None:
    """Flush the written files to disk before the commit point, so a commit never names a file
    that a power cut could still lose.

    The flushes run side by side: one at a time, each waits for its own round trip to the
    disk; together the file system serves them in a few batches.
    """
    if len(paths) < 8:
        for path in paths:
            _fsync(path)
        return
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="micropkg-fsync") as pool:
        for _ in pool.map(_fsync, paths):
            pass


def _make_parents(path: Path, root: Path) -> None:
    """Create the missing folders above ``path`` (the journal lists them, for a rollback)."""
    missing = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        if parent == root or parent.parent == parent:
            break
        parent = parent.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue


def _check_targets(root: Path, changes: Sequence[FileChange]) -> None:
    """Refuse, before touching anything, writes that could only fail half-way:
    a target that is a folder, or a target below something that is not a folder."""
    checked: set[Path] = set()  # folders whose ancestors up to the root were checked too
    for change in changes:
        backup = backup_path(change.path)
        if change.action != UNCHANGED and os.path.lexists(backup):
            # Not ours (our own leftovers are recovered from the journal first): it may be
            # someone's only copy of the old file.
            raise ProjectError(
                f"{backup} is left from an interrupted run and may hold the only copy of {change.path.name}; "
                "restore it (rename it back) or delete it, then run again"
            )
        if change.action in (CREATE, UPDATE):
            if is_real_folder(change.path):
                raise ProjectError(f"cannot write {change.path}: a folder is in the way")
            parent = change.path.parent
            while parent not in checked and parent != root and root in parent.parents:
                if parent.exists() and not parent.is_dir():
                    raise ProjectError(f"cannot write {change.path}: {parent} is a file, not a folder")
                checked.add(parent)
                parent = parent.parent
        elif change.action == DELETE and is_real_folder(change.path):
            raise ProjectError(f"cannot delete {change.path}: it is a folder")


def _missing_folders(root: Path, changes: Sequence[FileChange]) -> list[str]:
    """The folders the writes will create, parents first, relative to the root."""
    missing: set[Path] = set()
    seen: set[Path] = set()  # folders looked at, with their ancestors up to the root
    for change in changes:
        if change.action not in (CREATE, UPDATE):
            continue
        parent = change.path.parent
        while parent not in seen and parent != root and root in parent.parents:
            seen.add(parent)
            if parent.exists():
                break  # so are all its ancestors
            missing.add(parent)
            parent = parent.parent
    return sorted((folder.relative_to(root).as_posix() for folder in missing), key=lambda p: (p.count("/"), p))


# Transactions this process began and committed, in order: how an interrupted run tells
# whether a project was left completed, rolled back or not started (see ``outcome_since``).
_BEGUN = "begun"
_COMMITTED = "committed"
_LOG: list[tuple[Path, str]] = []


def log_mark() -> int:
    """A mark to pass to ``outcome_since`` later."""
    return len(_LOG)


def log_since(mark: int) -> list[tuple[Path, str]]:
    """What the transactions of this process did since ``mark`` (a worker hands it to its parent)."""
    return _LOG[mark:]


def add_to_log(entries: Sequence[tuple[Path, str]]) -> None:
    """Record what a worker's transactions did, as if this process had done it."""
    _LOG.extend(entries)


def outcome_since(mark: int, root: Path) -> str:
    """How the transactions on ``root`` since ``mark`` left it: completed, rolled back or not started."""
    root = Path(root).resolve()
    events = {event for where, event in _LOG[mark:] if where == root}
    return COMPLETED if _COMMITTED in events else ROLLED_BACK if _BEGUN in events else NOT_STARTED


def outcomes_since(mark: int) -> list[tuple[str, str]]:
    """Each project a transaction of this process began on since ``mark``, and how it was left."""
    roots = dict.fromkeys(where for where, _ in _LOG[mark:])
    return [(str(root), outcome_since(mark, root)) for root in roots]


def _apply_each(root: Path, changes: Sequence[FileChange]) -> list[Path]:
    """Move each existing file aside and write the new ones; returns the files written.

    Runs with stop signals held: one is acted on between two files, never inside one.
    """
    written: list[Path] = []
    for change in changes:
        raise_if_pending()
        path = change.path
        mode: int | None = None
        if path.exists() or path.is_symlink():
            mode = stat.S_IMODE(path.lstat().st_mode) if not path.is_symlink() else None
            os.replace(path, backup_path(path))
        if change.action in (CREATE, UPDATE):
            if change.content is None:
                raise ValueError(f"{change.action} of {path} has no content")
            _make_parents(path, root)
            _write_new(path, change.content)
            written.append(path)
            if mode is not None:
                # Keep the permissions of the file replaced: an executable stays executable.
                os.chmod(path, mode)
        elif change.action != DELETE:
            raise ValueError(f"unknown action {change.action!r} for {path}")
    return written


def _roll_back(root: Path, exc: BaseException, intent: journal.Journal) -> ProjectError | None:
    """Undo an unfinished transaction from the intent it journaled, which lists every path it
    could have touched: what is on disk says what was done, whatever this process managed to
    note. The journal goes only once every backup is back; a rollback that fails keeps it for
    the next run (or ``micropkg recover``)."""
    try:
        journal.undo(root, intent)
    except BaseException as failure:
        return ProjectError(
            f"a change to {root} failed ({str(exc) or type(exc).__name__}) and could not be rolled back "
            f"({failure}); {journal.journal_path(root)} is kept: run `micropkg recover`"
        )
    return None


def _remove_backups(root: Path, changes: Sequence[FileChange], entries: Sequence[JournalEntry]) -> None:
    """After the commit: remove the backups, and folders emptied by deletes. A backup that cannot
    be removed now stays listed in the journal, and the next run removes it (rolls forward)."""
    left = False
    for change, entry in zip(changes, entries):
        if not entry.existed:
            continue  # nothing was moved aside
        try:
            os.unlink(backup_path(change.path))
        except FileNotFoundError:
            pass
        except OSError:
            left = True
    for change in changes:
        if change.action == DELETE:
            prune_empty_folders(change.path.parent, root)
    if not left:
        journal.finish(root)


def apply_changes(
    root: Path, changes: Sequence[FileChange], *, managed: tuple[Sequence[str], Sequence[str]] | None = None
) -> None:
    """Make every CREATE/UPDATE/DELETE in ``changes`` happen, or none of them.

    ``managed`` (``Project.managed_paths()``) holds every change to what recovery accepts
    from a journal, so a run killed part-way can always be recovered."""
    root = Path(root)
    changes = [change for change in changes if change.action != UNCHANGED]
    paths = PathGuard(root)
    for change in changes:
        paths.check(change.path, "delete" if change.action == DELETE else "write")
        if managed is not None:
            relative = change.path.relative_to(root).as_posix()
            problem = relative_path_problem(relative, *managed)
            if problem:
                raise ProjectError(f"refusing to change {relative}, {problem}")
    _check_targets(root, changes)
    if changes:
        paths.check(journal.journal_path(root), "write")
    if not changes:
        return
    if journal.journal_path(root).exists():
        # project_lock recovers before anything is planned; a journal here means the caller
        # planned without the lock, on a tree an interrupted run left half-changed.
        raise ProjectError(
            f"{journal.journal_path(root)} records an interrupted run that was not recovered; "
            "run `micropkg recover` first"
        )
    entries = [
        JournalEntry(change.path.relative_to(root).as_posix(), os.path.lexists(change.path), change.action == DELETE)
        for change in changes
    ]
    folders = _missing_folders(root, changes)
    # Stop signals are held from here to the end: the journal is on disk (fsynced) before the
    # first rename, a signal stops the work between two files, and the rollback, or the
    # removal of backups after the commit, is never cut short by one.
    with interrupts_deferred():
        try:
            journal.begin(root, entries, folders)
            _LOG.append((root.resolve(), _BEGUN))
            written = _apply_each(root, changes)
            _make_durable(written)
            raise_if_pending()
            journal.commit(root, entries, folders)  # the commit point
        except BaseException as exc:
            failed = _roll_back(root, exc, journal.Journal(journal.APPLYING, tuple(entries), tuple(folders)))
            if failed is not None:
                raise failed from exc
            if isinstance(exc, OSError):
                where = exc.filename or "a project file"
                raise ProjectError(
                    f"could not write {where}: {exc.strerror or exc}; the project was restored unchanged"
                ) from exc
            raise
        _LOG.append((root.resolve(), _COMMITTED))
        # Committed: the change is complete whatever happens from here on.
        _remove_backups(root, changes, entries)


LOCK_NAME = "lock"


def lock_file(root: Path) -> Path:
    """The file whose OS-level lock keeps two runs on one project apart: in the project, so every
    run agrees on it whatever its ``$TMPDIR`` or user."""
    return root / journal.STATE_FOLDER / LOCK_NAME


def _open_lock(root: Path) -> "filelock.BaseFileLock":
    import filelock

    path = lock_file(root)
    guard(root, path, "lock")
    journal.make_state_folder(root)
    guard(root, path, "lock")
    return filelock.FileLock(str(path))


def managed_paths_of(root: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What a journal in ``root`` may name: ``Project.managed_paths()`` of the project there."""
    from micropkg_tasks.core.project.project import load_project

    return load_project(root).managed_paths()


@contextlib.contextmanager
def project_lock(
    root: Path, *, timeout: float = 30.0, poll: float = 0.05,
    managed: tuple[tuple[str, ...], tuple[str, ...]] | None = None,
) -> Iterator[Recovery | None]:
    """Hold the project's lock for the duration of the block; wait at most ``timeout`` seconds.

    Once the lock is held, a transaction interrupted earlier (``kill -9``, a crash) is
    recovered first; the block receives what that recovery did, or None. ``managed`` is
    ``Project.managed_paths()``, the only paths a journal may name; callers that hold the
    project pass it, otherwise it is read from the project's ``pyproject.toml`` when a
    journal is found.
    """
    import filelock

    root = Path(root).resolve()
    lock = _open_lock(root)
    try:
        lock.acquire(timeout=max(timeout, 0), poll_interval=poll)
    except filelock.Timeout:
        raise BusyError(
            f"project {root} is busy: another micropkg run is working on it (waited {timeout:g} s)"
        ) from None
    except OSError as exc:
        raise ProjectError(f"cannot lock {lock_file(root)}: {exc.strerror or exc}") from None
    try:
        recovery = None
        if journal.needs_recovery(root):
            areas = managed or managed_paths_of(root)
            with interrupts_deferred():
                recovery = journal.recover(root, areas)
        yield recovery
    finally:
        lock.release()
