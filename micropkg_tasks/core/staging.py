"""An in-memory overlay of pending writes on top of a project tree.

Planning a batch (several pulls, or one sync into a target) reads through the
overlay, so each step sees what the earlier steps will write, and nothing
touches the disk until the whole batch is turned into changes and applied.
"""

from __future__ import annotations

from pathlib import Path

from micropkg_tasks.core.transaction import CREATE, DELETE, UPDATE, FileChange

_DELETED = None


class Staging:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._pending: dict[Path, bytes | None] = {}
        self._disk_cache: dict[Path, bytes | None] = {}

    def on_disk(self, path: Path) -> bytes | None:
        """The file's bytes as they are on disk now (cached), or None if absent."""
        if path not in self._disk_cache:
            try:
                self._disk_cache[path] = path.read_bytes() if path.is_file() else None
            except FileNotFoundError:
                self._disk_cache[path] = None
        return self._disk_cache[path]

    def read(self, path: Path) -> bytes | None:
        """The file's bytes as the batch will leave them."""
        if path in self._pending:
            return self._pending[path]
        return self.on_disk(path)

    def write(self, path: Path, content: bytes) -> None:
        self._pending[path] = content

    def delete(self, path: Path) -> None:
        self._pending[path] = _DELETED

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
