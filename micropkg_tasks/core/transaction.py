"""Apply a set of file changes to a project as one unit, and keep runs from interleaving.

Each existing file that is changed or deleted is first *renamed* aside inside
its own folder, so a rollback renames it back: content, mode and mtime come
back exactly, not merely equal bytes. New content is written to a temporary
sibling and renamed into place, so no reader ever sees half a file. Any
exception, including ``KeyboardInterrupt``, rolls back everything done so far.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from micropkg_tasks.core.errors import BusyError, ProjectError

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
UNCHANGED = "unchanged"
CONFLICT = "conflict"

_BACKUP_SUFFIX = ".micropkg-backup"
_TEMP_SUFFIX = ".micropkg-new"


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
    """Write ``content`` to a temporary sibling, then rename it over ``path``."""
    temp = path.with_name(f".{path.name}{_TEMP_SUFFIX}")
    try:
        with open(temp, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


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


def _check_targets(root: Path, changes: Sequence[FileChange]) -> None:
    """Refuse, before touching anything, writes that could only fail half-way:
    a target that is a folder, or a target below something that is not a folder."""
    for change in changes:
        backup = change.path.with_name(f".{change.path.name}{_BACKUP_SUFFIX}")
        if change.action != UNCHANGED and (backup.exists() or backup.is_symlink()):
            # Left by a run that was killed mid-way: it may be the only copy of the old file.
            raise ProjectError(
                f"{backup} is left from an interrupted run and may hold the only copy of {change.path.name}; "
                "restore it (rename it back) or delete it, then run again"
            )
        if change.action in (CREATE, UPDATE):
            if change.path.is_dir() and not change.path.is_symlink():
                raise ProjectError(f"cannot write {change.path}: a folder is in the way")
            parent = change.path.parent
            while parent != root and root in parent.parents:
                if parent.exists() and not parent.is_dir():
                    raise ProjectError(f"cannot write {change.path}: {parent} is a file, not a folder")
                parent = parent.parent
        elif change.action == DELETE and change.path.is_dir() and not change.path.is_symlink():
            raise ProjectError(f"cannot delete {change.path}: it is a folder")


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block is done, then deliver it.

    Rolling back, or removing backups after the commit, must not stop half-way:
    either would leave the tree between two states. Only the main thread can
    install signal handlers; elsewhere the block simply runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


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


def apply_changes(root: Path, changes: Sequence[FileChange]) -> None:
    """Make every CREATE/UPDATE/DELETE in ``changes`` happen, or none of them."""
    _check_targets(root, changes)
    done: list[_Done] = []
    created_dirs: list[Path] = []
    try:
        for change in changes:
            if change.action == UNCHANGED:
                continue
            path = change.path
            backup: Path | None = None
            mode: int | None = None
            if path.exists() or path.is_symlink():
                mode = stat.S_IMODE(path.lstat().st_mode) if not path.is_symlink() else None
                backup = path.with_name(f".{path.name}{_BACKUP_SUFFIX}")
                os.replace(path, backup)
            step = _Done(path=path, backup=backup, created=backup is None)
            done.append(step)
            if change.action in (CREATE, UPDATE):
                if change.content is None:
                    raise ValueError(f"{change.action} of {path} has no content")
                _make_parents(path, root, created_dirs)
                _write_new(path, change.content)
                if mode is not None:
                    # Keep the permissions of the file replaced: an executable stays executable.
                    os.chmod(path, mode)
            elif change.action != DELETE:
                raise ValueError(f"unknown action {change.action!r} for {path}")
    except BaseException as exc:
        with _interrupts_deferred():
            _rollback(done, created_dirs)
        if isinstance(exc, OSError):
            where = exc.filename or "a project file"
            raise ProjectError(
                f"could not write {where}: {exc.strerror or exc}; the project was restored unchanged"
            ) from exc
        raise
    # Committed: the backups are no longer needed, nor are folders emptied by deletes.
    # The change is complete whatever happens here, so a backup that cannot be
    # removed is left behind rather than turned into an error about a change
    # that succeeded.
    with _interrupts_deferred():
        for step in done:
            if step.backup is not None:
                with contextlib.suppress(OSError):
                    os.unlink(step.backup)
        for change in changes:
            if change.action == DELETE:
                _prune_empty_parents(change.path.parent, root)


def _prune_empty_parents(folder: Path, root: Path) -> None:
    """Remove folders a delete left empty, up to (not including) the project root."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _lock_path(root: Path) -> Path:
    # Kept outside the project so that holding the lock never changes the tree.
    digest = hashlib.sha256(str(root.resolve()).encode("utf-8")).hexdigest()[:24]
    folder = Path(tempfile.gettempdir()) / "micropkg-tasks-locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{digest}.lock"


@contextlib.contextmanager
def project_lock(root: Path, *, timeout: float = 30.0, poll: float = 0.05) -> Iterator[None]:
    """Hold the project's lock for the duration of the block; wait at most ``timeout`` seconds."""
    import fcntl  # POSIX only; imported here so the rest of the module loads anywhere.

    path = _lock_path(root)
    handle = open(path, "a+b")
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise BusyError(
                        f"project {root} is busy: another micropkg run is working on it "
                        f"(waited {timeout:g} s)"
                    ) from None
                time.sleep(poll)
        yield
    finally:
        handle.close()  # closing releases the flock
