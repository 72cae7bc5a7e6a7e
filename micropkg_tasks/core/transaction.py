"""Apply a set of file changes to a project as one unit, and keep runs from interleaving.

Each existing file that is changed or deleted is first *renamed* aside inside
its own folder, so a rollback renames it back: content, mode and mtime come
back exactly, not merely equal bytes. New content is written to a temporary
sibling and renamed into place, so no reader ever sees half a file. Any
exception, including ``KeyboardInterrupt`` (SIGINT, SIGTERM or SIGHUP), rolls
back everything done so far. Before the first change an intent journal is
written (``core/journal.py``), so that even ``kill -9`` leaves a project the
next run puts back exactly before or exactly after. Every path is checked
against the project root first (``core/pathguard.py``).
"""

from __future__ import annotations

import contextlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from micropkg_tasks.core import journal
from micropkg_tasks.core.errors import BusyError, ProjectError
from micropkg_tasks.core.interrupts import interrupts_deferred, stop_signals_interrupt
from micropkg_tasks.core.journal import JournalEntry, Recovery, backup_path, prune_empty_folders, temp_path
from micropkg_tasks.core.pathguard import PathGuard, guard, relative_path_problem

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
UNCHANGED = "unchanged"
CONFLICT = "conflict"
# With --merge, a file both edited locally and changed upstream is not a conflict but one of:
MERGED = "merged"  # a clean three-way merge: local edits kept on top of upstream
MERGE_CONFLICT = "conflicted"  # written with conflict markers, to be resolved by hand
KEPT = "kept"  # the local state wins and upstream's change is reported, not applied



@dataclass(frozen=True)
class FileChange:
    path: Path  # absolute
    action: str  # CREATE, UPDATE, DELETE or UNCHANGED
    content: bytes | None = None  # new bytes for CREATE and UPDATE


@dataclass
class _Done:
    path: Path
    backup: Path | None  # where the previous file was moved, if there was one
    created: bool


def _write_new(path: Path, content: bytes) -> None:
    """Write ``content`` to a temporary sibling, then rename it over ``path`` (not yet durable)."""
    temp = temp_path(path)
    try:
        with open(temp, "wb") as handle:
            handle.write(content)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


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


def _make_parents(path: Path, root: Path, created_dirs: list[Path]) -> None:
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
        created_dirs.append(folder)


def _is_real_folder(path: Path) -> bool:
    """A folder itself, not a symlink to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


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
            if _is_real_folder(change.path):
                raise ProjectError(f"cannot write {change.path}: a folder is in the way")
            parent = change.path.parent
            while parent not in checked and parent != root and root in parent.parents:
                if parent.exists() and not parent.is_dir():
                    raise ProjectError(f"cannot write {change.path}: {parent} is a file, not a folder")
                checked.add(parent)
                parent = parent.parent
        elif change.action == DELETE and _is_real_folder(change.path):
            raise ProjectError(f"cannot delete {change.path}: it is a folder")


def _rollback(done: list[_Done], created_dirs: list[Path]) -> None:
    for step in reversed(done):
        if step.created or step.backup is not None:
            # NotADirectoryError: the write never happened because a parent was a file.
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                os.unlink(step.path)
        if step.backup is not None:
            os.replace(step.backup, step.path)
    for folder in reversed(created_dirs):
        with contextlib.suppress(OSError):
            folder.rmdir()


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
    done: list[_Done] = []
    created_dirs: list[Path] = []
    written: list[Path] = []
    with stop_signals_interrupt():
        try:
            journal.begin(root, entries, folders)
            for change in changes:
                path = change.path
                backup: Path | None = None
                mode: int | None = None
                if path.exists() or path.is_symlink():
                    mode = stat.S_IMODE(path.lstat().st_mode) if not path.is_symlink() else None
                    backup = backup_path(path)
                    os.replace(path, backup)
                step = _Done(path=path, backup=backup, created=backup is None)
                done.append(step)
                if change.action in (CREATE, UPDATE):
                    if change.content is None:
                        raise ValueError(f"{change.action} of {path} has no content")
                    _make_parents(path, root, created_dirs)
                    _write_new(path, change.content)
                    written.append(path)
                    if mode is not None:
                        # Keep the permissions of the file replaced: an executable stays executable.
                        os.chmod(path, mode)
                elif change.action != DELETE:
                    raise ValueError(f"unknown action {change.action!r} for {path}")
            _make_durable(written)
            journal.commit(root, entries, folders)  # the commit point
        except BaseException as exc:
            with interrupts_deferred():
                _rollback(done, created_dirs)
                journal.finish(root)
            if isinstance(exc, OSError):
                where = exc.filename or "a project file"
                raise ProjectError(
                    f"could not write {where}: {exc.strerror or exc}; the project was restored unchanged"
                ) from exc
            raise
        # Committed: the backups are no longer needed, nor are folders emptied by deletes.
        # The change is complete whatever happens here. A backup that cannot be removed
        # now stays listed in the journal, and the next run removes it (rolls forward).
        with interrupts_deferred():
            left = False
            for step in done:
                if step.backup is not None:
                    try:
                        os.unlink(step.backup)
                    except FileNotFoundError:
                        pass
                    except OSError:
                        left = True
            for change in changes:
                if change.action == DELETE:
                    prune_empty_folders(change.path.parent, root)
            if not left:
                journal.finish(root)


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
    from micropkg_tasks.core.project import load_project

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
