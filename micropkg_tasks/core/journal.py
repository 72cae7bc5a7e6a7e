"""The intent journal that makes a transaction survive ``kill -9``, a crash or a power cut.

Before the first file of a transaction is touched, ``.micropkg/journal`` lists
every path the transaction will change, whether a file was there before, and
every folder it will create. Once every change is in place, the journal is
rewritten (atomically) as *committed*; once the backups are gone, it is
removed. A run that finds a journal was interrupted, and the next run (or
``micropkg recover``) finishes its work first:

* not committed: roll back. Each moved-aside file is renamed back, each new
  file and temporary is removed, each created folder is removed if empty.
  Content, mode and mtime come back exactly.
* committed: roll forward. The remaining backups are removed.

Every step of recovery may be repeated, so a recovery that is itself killed is
finished by the next one. The names used here are reserved: an archive that
ships a member called ``.<name>.micropkg-new`` or ``.<name>.micropkg-backup``
is refused (``core/sdist_read.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from micropkg_tasks.core.errors import ProjectError

STATE_FOLDER = ".micropkg"
JOURNAL_NAME = "journal"
BACKUP_SUFFIX = ".micropkg-backup"
TEMP_SUFFIX = ".micropkg-new"
APPLYING = "applying"
COMMITTED = "committed"
_FORMAT = 1


def backup_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{BACKUP_SUFFIX}")


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_SUFFIX}")


def is_reserved_name(name: str) -> bool:
    """True for file names the transaction itself uses next to the files it changes."""
    return name.endswith((BACKUP_SUFFIX, TEMP_SUFFIX))


def journal_path(root: Path) -> Path:
    return root / STATE_FOLDER / JOURNAL_NAME


@dataclass(frozen=True)
class JournalEntry:
    path: str  # relative to the project root, with slashes
    existed: bool  # a file (or link) was there before, so it is moved aside to its backup
    delete: bool = False  # removed, not rewritten: its emptied folders go after the commit


@dataclass(frozen=True)
class Journal:
    state: str
    entries: tuple[JournalEntry, ...]
    created_dirs: tuple[str, ...]  # relative, parents before children


@dataclass(frozen=True)
class Recovery:
    """What recovering an interrupted transaction did."""

    project: str
    action: str  # "rolled back" or "rolled forward"
    files: int  # paths the interrupted transaction had planned to change

    @property
    def message(self) -> str:
        return (
            f"{self.project}: an interrupted micropkg run was {self.action} "
            f"({self.files} planned file change(s)); the project is as it was "
            f"{'before' if self.action == 'rolled back' else 'after'} that run"
        )


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _write_journal(root: Path, journal: Journal) -> None:
    path = journal_path(root)
    path.parent.mkdir(exist_ok=True)
    data = {
        "format": _FORMAT,
        "state": journal.state,
        "entries": [[entry.path, entry.existed, entry.delete] for entry in journal.entries],
        "created-dirs": list(journal.created_dirs),
    }
    temp = path.with_name(f"{JOURNAL_NAME}.tmp")
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        # rename, not replace: atomic over an existing journal on POSIX, and the transaction's
        # own file moves (os.replace) stay the only ones a fault test has to count.
        os.rename(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_folder(path.parent)


def begin(root: Path, entries: Sequence[JournalEntry], created_dirs: Iterable[str]) -> None:
    """Record the intent before the first change; from now on a kill is recoverable."""
    _write_journal(root, Journal(APPLYING, tuple(entries), tuple(created_dirs)))


def commit(root: Path, entries: Sequence[JournalEntry], created_dirs: Iterable[str]) -> None:
    """Mark every change as in place: a later recovery rolls forward, never back."""
    _write_journal(root, Journal(COMMITTED, tuple(entries), tuple(created_dirs)))


def finish(root: Path) -> None:
    """The transaction is complete and its backups are gone."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(journal_path(root))
    _fsync_folder(root / STATE_FOLDER)
    with contextlib.suppress(OSError):
        (root / STATE_FOLDER).rmdir()  # only when empty: no lock file is held there


def read_journal(root: Path) -> Journal | None:
    path = journal_path(root)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path.with_name(f"{JOURNAL_NAME}.tmp"))  # killed while writing: never became the journal
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path} cannot be read ({exc}); the interrupted run it records cannot be recovered") from None
    try:
        data = json.loads(text)
        entries = tuple(JournalEntry(str(p), bool(e), bool(d)) for p, e, d in data["entries"])
        created = tuple(str(d) for d in data["created-dirs"])
        state = data["state"]
        if data.get("format") != _FORMAT or state not in (APPLYING, COMMITTED):
            raise ValueError(state)
    except (ValueError, KeyError, TypeError) as exc:
        raise ProjectError(f"{path} is not a journal micropkg wrote ({exc}); move it away to continue") from None
    for relative in (*(e.path for e in entries), *created):
        if Path(relative).is_absolute() or ".." in Path(relative).parts or not relative:
            raise ProjectError(f"{path} lists {relative!r}, which is not inside the project; move it away to continue")
    return Journal(state, entries, created)


def _roll_back(root: Path, journal: Journal) -> None:
    for entry in reversed(journal.entries):
        path = root / entry.path
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(temp_path(path))
        backup = backup_path(path)
        if entry.existed:
            if os.path.lexists(backup):
                os.replace(backup, path)  # the file as it was: content, mode and mtime
        else:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                os.unlink(path)
    for relative in reversed(journal.created_dirs):
        with contextlib.suppress(OSError):
            os.rmdir(root / relative)


def _roll_forward(root: Path, journal: Journal) -> None:
    for entry in journal.entries:
        path = root / entry.path
        for leftover in (backup_path(path), temp_path(path)):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                os.unlink(leftover)
    for entry in journal.entries:
        if entry.delete:
            prune_empty_folders((root / entry.path).parent, root)


def recover(root: Path, shown: str | None = None) -> Recovery | None:
    """Finish an interrupted transaction in ``root``, if there is one (call under the project lock)."""
    journal = read_journal(root)
    if journal is None:
        return None
    if journal.state == COMMITTED:
        _roll_forward(root, journal)
        action = "rolled forward"
    else:
        _roll_back(root, journal)
        action = "rolled back"
    finish(root)
    return Recovery(shown or str(root), action, len(journal.entries))


def prune_empty_folders(folder: Path, root: Path) -> None:
    """Remove ``folder`` and its parents while empty, up to (not including) the project root."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
