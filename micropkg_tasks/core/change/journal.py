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
is refused (``core/sdist/read.py``).

The journal is input like any other: a planted or damaged one must not delete
or read anything outside what micropkg manages. It is read with the bounded
reader (no FIFO, device or link out of the project; a size cap), parsed
strictly, and every path in it must pass the lock's own path rule
(``relative_path_problem``) for the project's managed folders and files, and
then the path guard, for the entry, its backup and temporary siblings and
every folder it names, before anything is touched. One bad entry makes the
whole journal invalid: nothing is rolled back or forward, and the run stops
with one sentence naming the journal and the entry. Only a run that writes
(under the project lock) recovers; read-only commands report it.

The state folder ``.micropkg/`` ignores itself: it is created with a
``.gitignore`` holding ``*``. ``finish`` removes the folder again when nothing
but that file is left (no lock file was taken there).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from micropkg_tasks.core.change.atomic import write_atomically
from micropkg_tasks.core.change.bounded import MAX_PARSED_BYTES, parsing, read_file_bytes
from micropkg_tasks.core.change.pathguard import PathGuard, relative_path_problem
from micropkg_tasks.core.errors import ProjectError

STATE_FOLDER = ".micropkg"
STATE_IGNORE = ".gitignore"
_IGNORE_TEXT = "# Written by micropkg: run state (the project lock, a killed run's journal), never committed.\n*\n"
JOURNAL_NAME = "journal"
JOURNAL_TEMP = "journal.tmp"
# A journal records less per file than the lock does, so it is never bigger than a lock we read.
MAX_JOURNAL_BYTES = MAX_PARSED_BYTES
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


def make_state_folder(root: Path) -> Path:
    """``.micropkg/`` in ``root``, created if missing, with the ``.gitignore`` that keeps it out of git."""
    folder = root / STATE_FOLDER
    try:
        folder.mkdir(exist_ok=True)
    except FileExistsError:
        raise ProjectError(f"{folder} is a file; micropkg keeps its lock and journal in that folder") from None
    except OSError as exc:
        raise ProjectError(f"cannot create {folder}: {exc.strerror or exc}") from None
    ignore = folder / STATE_IGNORE
    if not os.path.lexists(ignore):
        try:
            with open(ignore, "x", encoding="utf-8") as handle:
                handle.write(_IGNORE_TEXT)
        except FileExistsError:
            pass  # another run wrote it first
        except OSError as exc:
            raise ProjectError(f"cannot write {ignore}: {exc.strerror or exc}") from None
    return folder


def _write_journal(root: Path, journal: Journal) -> None:
    path = journal_path(root)
    make_state_folder(root)
    data = {
        "format": _FORMAT,
        "state": journal.state,
        "entries": [[entry.path, entry.existed, entry.delete] for entry in journal.entries],
        "created-dirs": list(journal.created_dirs),
    }
    # rename, not replace: atomic over an existing journal on POSIX, and the transaction's
    # own file moves (os.replace) stay the only ones a fault test has to count.
    write_atomically(path, json.dumps(data).encode("utf-8"), temp=path.with_name(JOURNAL_TEMP), durable=True,
                     move=os.rename)
    _fsync_folder(path.parent)


def begin(root: Path, entries: Sequence[JournalEntry], created_dirs: Iterable[str]) -> None:
    """Record the intent before the first change; from now on a kill is recoverable."""
    _write_journal(root, Journal(APPLYING, tuple(entries), tuple(created_dirs)))


def commit(root: Path, entries: Sequence[JournalEntry], created_dirs: Iterable[str]) -> None:
    """Mark every change as in place: a later recovery rolls forward, never back."""
    _write_journal(root, Journal(COMMITTED, tuple(entries), tuple(created_dirs)))


def finish(root: Path) -> None:
    """The transaction is complete and its backups are gone.

    The state folder goes too when nothing but its ``.gitignore`` is left: a project
    lock keeps its (empty) lock file there, and with it the folder, for good."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(journal_path(root))
    folder = root / STATE_FOLDER
    _fsync_folder(folder)
    with contextlib.suppress(OSError):
        if set(os.listdir(folder)) <= {STATE_IGNORE}:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / STATE_IGNORE)
            folder.rmdir()


def is_real_folder(path: Path) -> bool:
    """A folder itself is at ``path``, not a symlink to one (nothing there: False)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


def _shown(relative: object) -> str:
    """An entry as quoted in a message: JSON-escaped (a NUL shows as \\u0000), and cut short."""
    text = json.dumps(relative if isinstance(relative, str) else repr(relative)[:200])
    return text if len(text) <= 200 else text[:197] + "..."


class _Invalid(Exception):
    """Why a journal is refused: the rest of the sentence after its name."""


def _parse(raw: object) -> Journal:
    """A journal from its JSON, with every field of exactly the type micropkg writes."""
    if not isinstance(raw, dict):
        raise _Invalid("it is not a JSON object")
    if raw.get("format") != _FORMAT or isinstance(raw.get("format"), bool):
        raise _Invalid(f"its 'format' is not {_FORMAT}")
    state = raw.get("state")
    if not isinstance(state, str) or state not in (APPLYING, COMMITTED):
        raise _Invalid(f"its 'state' is neither {APPLYING!r} nor {COMMITTED!r}")
    entries, created = raw.get("entries"), raw.get("created-dirs")
    if not isinstance(entries, list):
        raise _Invalid("its 'entries' is not a list")
    if not isinstance(created, list) or not all(isinstance(folder, str) for folder in created):
        raise _Invalid("its 'created-dirs' is not a list of strings")
    parsed = []
    for item in entries:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                and isinstance(item[1], bool) and isinstance(item[2], bool)):
            raise _Invalid(f"it lists {_shown(item)}, which is not a [path, existed, delete] entry")
        parsed.append(JournalEntry(item[0], item[1], item[2]))
    return Journal(state, tuple(parsed), tuple(created))


def _folder_problem(relative: str, folders: Sequence[str], files: Sequence[str]) -> str | None:
    """``relative_path_problem`` for a folder the run created: a managed folder, one inside
    one, or a parent of one (``tests/`` itself, when the first pull made it)."""
    problem = relative_path_problem(relative)
    if problem or any(folder == relative or folder.startswith(relative + "/") for folder in folders):
        return problem
    return relative_path_problem(relative, folders, files)


def _check_paths(root: Path, journal: Journal, managed: tuple[Sequence[str], Sequence[str]]) -> None:
    """Every path recovery would touch, by the lock's rule and then the path guard, before any is."""
    folders, files = managed
    paths = PathGuard(root)
    for entry in journal.entries:
        problem = relative_path_problem(entry.path, folders, files)
        if problem:
            raise _Invalid(f"it lists {_shown(entry.path)}, {problem}")
        path = root / entry.path
        for candidate in (path, backup_path(path), temp_path(path)):
            try:
                paths.check(candidate, "recover")
            except ProjectError as exc:
                raise _Invalid(f"it lists {_shown(entry.path)}, and {exc}") from None
            if is_real_folder(candidate):
                raise _Invalid(f"it lists {_shown(entry.path)}, and {candidate} is a folder, not a file micropkg wrote")
    for relative in journal.created_dirs:
        problem = _folder_problem(relative, folders, files)
        if problem:
            raise _Invalid(f"it lists the folder {_shown(relative)}, {problem}")
        try:
            paths.check(root / relative, "recover")
        except ProjectError as exc:
            raise _Invalid(f"it lists the folder {_shown(relative)}, and {exc}") from None


def read_journal(root: Path, managed: tuple[Sequence[str], Sequence[str]]) -> Journal | None:
    """The journal an interrupted run left in ``root``, or None; reads only, writes nothing.

    ``managed`` is ``Project.managed_paths()``: the folders and files a journal may name.
    A journal that is not exactly what micropkg writes, or that names any path outside
    those, is refused whole with one sentence naming it and the entry at fault."""
    path = journal_path(root)
    if not os.path.lexists(path):
        return None
    try:
        PathGuard(root).check(path, "read")
        data = read_file_bytes(path, limit=MAX_JOURNAL_BYTES)
        with parsing(str(path), "read"):
            journal = _parse(json.loads(data.decode("utf-8")))
        _check_paths(root, journal, managed)
    except _Invalid as exc:
        raise ProjectError(
            f"{path} is not a journal micropkg can act on: {exc}; nothing was rolled back or forward "
            "(check the project, then move that file away)"
        ) from None
    except IsADirectoryError:
        raise ProjectError(f"{path} is a folder, not a journal micropkg wrote; move it away to continue") from None
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, ValueError):  # json.JSONDecodeError is a ValueError
        raise ProjectError(f"{path} is not a journal micropkg wrote (it is not UTF-8 JSON); move it away to continue") from None
    except OSError as exc:
        raise ProjectError(f"{path} cannot be read ({exc.strerror or exc}); the interrupted run it records "
                           "cannot be recovered") from None
    return journal


def interrupted(root: Path, managed: tuple[Sequence[str], Sequence[str]]) -> str:
    """For commands that only read: "" when no run was interrupted, else one sentence saying so and
    naming ``micropkg recover``. Never rolls back or forward; an invalid journal is refused."""
    journal = read_journal(root, managed)
    if journal is None:
        return ""
    return (
        f"interrupted: a killed micropkg run left {journal_path(root)} ({len(journal.entries)} planned "
        f"file change(s), {journal.state}); run `micropkg recover` to finish it (read-only commands "
        "never roll back or forward)"
    )


def _remove_partial_journal(root: Path) -> None:
    """A run killed while writing its journal leaves ``journal.tmp``: it never became the journal."""
    temp = journal_path(root).with_name(JOURNAL_TEMP)
    if not os.path.lexists(temp):
        return
    PathGuard(root).check(temp, "delete")
    if is_real_folder(temp):
        raise ProjectError(f"{temp} is a folder; micropkg writes its journal through that name, so move it away")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)


def _roll_back(root: Path, journal: Journal, paths: PathGuard) -> None:
    for entry in reversed(journal.entries):
        path = root / entry.path
        paths.check(path, "recover")
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
        paths.check(root / relative, "remove")
        with contextlib.suppress(OSError):
            os.rmdir(root / relative)


def _roll_forward(root: Path, journal: Journal, paths: PathGuard) -> None:
    for entry in journal.entries:
        path = root / entry.path
        paths.check(path, "recover")
        for leftover in (backup_path(path), temp_path(path)):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                os.unlink(leftover)
    for entry in journal.entries:
        if entry.delete:
            prune_empty_folders((root / entry.path).parent, root)


def recover(root: Path, managed: tuple[Sequence[str], Sequence[str]], shown: str | None = None) -> Recovery | None:
    """Finish an interrupted transaction in ``root``, if there is one (call under the project lock).

    ``managed`` is ``Project.managed_paths()`` (see ``read_journal``)."""
    journal = read_journal(root, managed)
    _remove_partial_journal(root)
    if journal is None:
        return None
    paths = PathGuard(root)
    if journal.state == COMMITTED:
        _roll_forward(root, journal, paths)
        action = "rolled forward"
    else:
        _roll_back(root, journal, paths)
        action = "rolled back"
    finish(root)
    return Recovery(shown or str(root), action, len(journal.entries))


def undo(root: Path, intent: Journal) -> None:
    """Roll back this process's own unfinished transaction from the intent it journaled (the same
    paths the journal on disk lists), then remove the journal. If this fails part-way, the
    journal stays for the next run or ``micropkg recover``."""
    _roll_back(root, intent, PathGuard(root))
    finish(root)


def needs_recovery(root: Path) -> bool:
    """A journal, or the start of one, is in ``root``: recovery has something to look at."""
    return any(os.path.lexists(root / STATE_FOLDER / name) for name in (JOURNAL_NAME, JOURNAL_TEMP))


def prune_empty_folders(folder: Path, root: Path) -> None:
    """Remove ``folder`` and its parents while empty, up to (not including) the project root,
    and never a folder the path guard refuses (one reached through a link out of the project)."""
    paths = PathGuard(root)
    while folder != root and root in folder.parents:
        try:
            paths.check(folder, "remove")
            folder.rmdir()
        except (OSError, ProjectError):
            return
        folder = folder.parent
