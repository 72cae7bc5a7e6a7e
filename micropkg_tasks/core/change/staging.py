"""An in-memory overlay of pending writes on top of a project tree.

Planning a batch (several pulls, or one sync into a target) reads through the
overlay, so each step sees what the earlier steps will write, and nothing
touches the disk until the whole batch is turned into changes and applied.
Every path is checked against the project root before it is read, so nothing
outside the project is read (or shown in a diff) or written through a symlink.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from micropkg_tasks.core.change.pathguard import PathGuard
from micropkg_tasks.core.change.transaction import CREATE, DELETE, UPDATE, FileChange

_DELETED = None


class Staging:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._guard = PathGuard(root)
        self._pending: dict[Path, bytes | None] = {}
        self._disk_cache: dict[Path, bytes | None] = {}
        self._special: set[Path] = set()

    def on_disk(self, path: Path) -> bytes | None:
        """The file's bytes as they are on disk now (cached), or None if absent (or not a file)."""
        if path not in self._disk_cache:
            self._guard.check(path, "write")
            self._disk_cache[path] = self._read(path)
        return self._disk_cache[path]

    def _read(self, path: Path) -> bytes | None:
        try:
            mode = os.stat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISDIR(mode):
            return None
        if not stat.S_ISREG(mode):
            # A FIFO, device or socket: never opened (a FIFO would block), never silently replaced.
            self._special.add(path)
            return None
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def is_special(self, path: Path) -> bool:
        """True if a FIFO, device or socket sits at ``path`` on disk."""
        self.on_disk(path)
        return path in self._special

    def read(self, path: Path) -> bytes | None:
        """The file's bytes as the batch will leave them."""
        if path in self._pending:
            return self._pending[path]
        return self.on_disk(path)

    def write(self, path: Path, content: bytes) -> None:
        self._guard.check(path, "write")
        self._pending[path] = content

    def delete(self, path: Path) -> None:
        self._guard.check(path, "delete")
        self._pending[path] = _DELETED

    def is_pending(self, path: Path) -> bool:
        return path in self._pending

    def changes(self) -> list[FileChange]:
        """What must happen on disk, sorted by path, skipping writes that change nothing."""
        result = []
        for path in sorted(self._pending):
            new = self._pending[path]
            old = self.on_disk(path)
            if new == old:
                continue
            if new is None:
                result.append(FileChange(path, DELETE))
            else:
                result.append(FileChange(path, CREATE if old is None else UPDATE, new))
        return result
