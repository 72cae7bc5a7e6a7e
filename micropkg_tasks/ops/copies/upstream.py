"""How a copy compares with its source now: the upstream half of a copy's state.

A shared entry's copy is compared with the entry's source (a project of the monorepo by
its content hash, a git source by the commit its ref names), an ad-hoc pull with its own
location. ``sync-shared`` and the one model of copies (``copy_state.py``) both ask here.
"""

from __future__ import annotations

import os
from pathlib import Path

from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.git_url import same_repository_ref
from micropkg_tasks.core.lock import copy_state as states
from micropkg_tasks.core.lock.lockfile import LockEntry, sha256_file
from micropkg_tasks.core.project.monorepo import SharedEntry
from micropkg_tasks.core.project.project import load_project
from micropkg_tasks.ops.package.inputs import read_inputs
from micropkg_tasks.ops.sources.git import git_upstream, lock_source, upstream_at
from micropkg_tasks.ops.sources.locations import GIT, PATH, SIBLING, location_kind, source_identity, split_sibling


def source_location(entry: SharedEntry, target_root: Path) -> str:
    """How a synced copy records its source in the target's lock: ``<source project>#<module path>``,
    or for a git source its location (``git+...@ref#<folder>:<module path>``, credentials hidden)."""
    if entry.git is not None:
        return entry.git.display
    return f"{Path(os.path.relpath(entry.project, target_root)).as_posix()}#{entry.micropkg}"


def shared_upstream(location: str, target_root: Path, installed: LockEntry | None,
                    digest: str | MicropkgError | None, commit: str | None = None) -> str:
    """How a copy a shared entry declares (from ``location``, see :func:`source_location`)
    compares with that entry's source, whose content hash is now ``digest`` (an error: the
    source cannot be read). A git source is compared by ``commit``, the one its ref names
    now (None: git was not asked, offline)."""
    if installed is None:
        return states.NOT_INSTALLED
    if source_identity(installed.source, installed.name, target_root, installed.origin) != source_identity(
        location, installed.name, target_root
    ):
        return states.OTHER_SOURCE  # one owner per copy: sync-shared would refuse it
    source = lock_source(location)
    if source is None:
        return by_digest(installed, digest)
    if isinstance(digest, MicropkgError):
        return states.SOURCE_MISSING
    if not same_repository_ref(installed.source, location):
        return states.UPSTREAM_MOVED  # the entry names another ref now
    return upstream_at(source, installed, commit)


def by_digest(installed: LockEntry, digest: str | MicropkgError | None) -> str:
    if isinstance(digest, MicropkgError):
        return states.SOURCE_MISSING
    if digest is None:
        return states.IN_SYNC
    return states.IN_SYNC if installed.source_sha256 == digest else states.UPSTREAM_MOVED


def sibling_digest(base: Path, location: str, alias: str | None, env: str) -> str | MicropkgError:
    folder, module = split_sibling(location)  # type: ignore[misc]
    try:
        source = load_project(Path(os.path.normpath(base / folder)))
        return read_inputs(source, module, alias, env, for_distribution=False).digest
    except MicropkgError as exc:
        return exc


def adhoc_upstream(root: Path, installed: LockEntry, offline: bool = False) -> str:
    """An ad-hoc pull: compared with its location when that is a sibling, a git source or a local file."""
    kind = location_kind(installed.source, root)
    if kind == GIT:
        return git_upstream(installed.source, installed, offline=offline, project=load_project(root))
    if kind == SIBLING:
        return by_digest(installed, sibling_digest(
            root, installed.source, installed.options.get("alias"), installed.options.get("env", "base")))
    if kind == PATH:
        try:
            current = sha256_file(os.path.join(os.fspath(root), installed.source))
        except (OSError, MicropkgError):
            current = None
        if current is not None and current != installed.sdist_sha256:
            return states.UPSTREAM_MOVED
    return states.IN_SYNC
