"""Merge bases of a copy pulled from a git source: its files as packaged from the commit the
lock records.

The lock says which commit a git-sourced copy was packaged from, so the content each file
was installed with can be made again: the project's files at that commit (from the cache,
or fetched again), packaged and placed exactly as the pull placed them. This is the first
place a three-way merge looks for such a copy's base; the store of installed files and the
target's own git history (``ops/install/merge_base.py``) are asked only when it has no answer
(the repository cannot be reached, or the file was placed otherwise). Whatever is found
is checked against the lock's blob id and sha256 before it is used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.lock.lockfile import LockEntry
from micropkg_tasks.core.project.project import Project
from micropkg_tasks.core.sdist.read import read_sdist
from micropkg_tasks.ops.sources.git import git_timeout, lock_source, package_at

# Places an sdist's files in the project as the pull does (``target_files`` of ``ops/install/plan.py``
# for the copy's module), given the ``env`` and ``install_name`` the copy was installed with.
Placer = Callable[..., dict[Path, bytes]]


class RecordedCommitBases:
    """The files of ``previous`` as installed from its recorded commit, made once, on first use."""

    def __init__(self, project: Project, previous: LockEntry, place: Placer) -> None:
        self._project = project
        self._previous = previous
        self._place = place
        self._files: dict[str, bytes] | None = None

    def _build(self) -> dict[str, bytes]:
        previous = self._previous
        source = lock_source(previous.source) if previous.commit else None
        if source is None or previous.commit is None:
            return {}
        try:
            alias, env = previous.options.get("alias"), previous.options.get("env", "base")
            data = package_at(source, previous.commit, alias, env, timeout=git_timeout(self._project))
            sdist = read_sdist(data, source=source.display)
            placed = self._place(sdist, env=env, install_name=alias or sdist.name)
        except MicropkgError:
            return {}  # not reachable now, or not packageable: the other places may still have it
        return {self._project.relative(path): content for path, content in placed.items()}

    def get(self, relative: str) -> bytes | None:
        """The content ``relative`` had at the recorded commit, or None."""
        if self._files is None:
            self._files = self._build()
        return self._files.get(relative)


def recorded_bases(project: Project, previous: LockEntry | None, place: Placer) -> RecordedCommitBases | None:
    """Where a merge into ``previous`` looks first when it was pulled from a git source, else None."""
    if previous is None or previous.commit is None or lock_source(previous.source) is None:
        return None
    return RecordedCommitBases(project, previous, place)
