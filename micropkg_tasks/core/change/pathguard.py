"""One check for every path the tool reads from, writes to or deletes in a project.

A project folder can hold symlinks: ``src/<pkg>/pipelines`` linked to a folder
elsewhere, ``conf/base`` or ``tests/`` shared with another checkout, a file
replaced by a link to ``/etc/passwd``. Writing "into the project" through such
a link writes outside it, and reading through it shows another file's content
in a diff. So before touching a path its parent folders are resolved, and a
symlink in its own place is followed, and the result must stay inside the
project's real root.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from micropkg_tasks.core.errors import ProjectError

# Folders no recorded path may name, whatever area it is in: git's own state and ours.
_NEVER = (".git", ".micropkg")


def _within(real_root: str, real: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def relative_path_problem(
    relative: str, folders: Sequence[str] = (), files: Sequence[str] = (), prefixes: tuple[str, ...] | None = None
) -> str | None:
    """Why a project-relative path read from a file we keep (``micropkg.lock``, the journal)
    must not be acted on, or None if it is fine.

    It must be a normalised relative POSIX path, with no ``.``, ``..``, empty or NUL part,
    never below ``.git/`` or ``.micropkg/``, and, given ``folders`` or ``files``, below one of
    those folders or equal to one of those files. ``prefixes`` are the folders with a trailing
    slash, for a caller checking many paths against the same folders.
    """
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        return "which is not a plain relative path"
    # String tests only: a PurePosixPath per path costs more than the rest of reading a lock.
    if relative.startswith("/") or (len(relative) > 1 and relative[0].isalpha() and relative[1] == ":"):
        return "which is an absolute path"
    parts = relative.split("/")
    if ".." in parts:
        return "which has a '..' component"
    if "" in parts or "." in parts:  # "a//b", "a/", "./a", "a/./b": not as PurePosixPath writes it
        return "which is not a normalised relative path"
    if any(part in _NEVER for part in parts):
        return "which is inside " + next(part for part in parts if part in _NEVER) + "/, where micropkg never writes"
    if not (folders or files):
        return None
    if prefixes is None:
        prefixes = tuple(folder.rstrip("/") + "/" for folder in folders)
    if relative in files or relative.startswith(prefixes):
        return None
    if not files:
        return "which is outside the project's code, tests and conf folders (" + ", ".join(folders) + ")"
    return "which is outside the folders and files micropkg manages (" + ", ".join((*folders, *files)) + ")"


def guard(root: Path, path: Path, action: str = "write") -> None:
    """Refuse, in one sentence, to ``action`` ``path`` unless it really lies inside ``root``."""
    PathGuard(root).check(path, action)


class PathGuard:
    """``guard`` for many paths of one project: each folder is resolved once.

    Planning or applying a batch checks hundreds of files in a few folders, and
    resolving a folder costs a system call per component. Keep one only for the
    length of a batch: a folder is not re-resolved while it lives.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = os.path.realpath(root)
        self._folders: dict[str, str] = {}

    def _real_location(self, path: Path) -> str:
        """Where ``path`` really is: its folders resolved, and itself too if it is a symlink."""
        folder = os.path.dirname(path)
        parent = self._folders.get(folder)
        if parent is None:
            parent = self._folders[folder] = os.path.realpath(folder)
        candidate = os.path.join(parent, os.path.basename(path))
        return os.path.realpath(candidate) if os.path.islink(candidate) else candidate

    def check(self, path: Path, action: str = "write") -> None:
        text = os.fspath(path)
        if not os.path.isabs(text) or ".." in text.replace(os.altsep or os.sep, os.sep).split(os.sep):
            raise ProjectError(f"refusing to {action} {path}: it is not a plain path inside the project {self.root}")
        real = self._real_location(Path(path))
        if not _within(self._real_root, real) or real == self._real_root:
            raise ProjectError(
                f"refusing to {action} {path}: it resolves to {real}, outside the project {self.root} "
                "(a symlinked folder or file points out of it)"
            )
