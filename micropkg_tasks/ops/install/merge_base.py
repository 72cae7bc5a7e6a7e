"""Where the merge base comes from: the content a file had when it was installed.

The lock records each installed file's git blob id. The base is found, in order:

0. for a copy pulled from a git source, in its files as packaged from the commit
   the lock records (``ops/install/git_base.py``, given as ``first``);
1. in a local content-addressed store in the user cache, filled on every install
   (fast, and works without git);
2. in the git repository holding the project, with ``git cat-file blob <id>``,
   which works on any clone that committed the install, offline.

Whatever is found is checked against the blob id and the lock's sha256 before
it is trusted. When neither has it, the merge cannot be done and says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterable

from micropkg_tasks.core.change.atomic import write_atomically
from micropkg_tasks.core.change.bounded import MAX_SDIST_BYTES, read_file_bytes
from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.lock.lockfile import sha256_bytes
from micropkg_tasks.core.merge import git_blob_id
from micropkg_tasks.ops.sources.cache import cache_dir

GIT_TIMEOUT = 30  # seconds for one ``git cat-file``
_BLOB = re.compile("[0-9a-f]{40}|[0-9a-f]{64}")  # a git blob id (SHA-1 or SHA-256 repositories)


def _store_path(blob: str, store: Path | None = None) -> Path:
    return (store or cache_dir() / "bases") / blob[:2] / blob[2:]


def remember_bases(contents: Iterable[bytes]) -> None:
    """Keep installed contents in the store, so a later merge finds its base without git.

    A store that cannot be written is no store: the install itself has already
    succeeded, and git may still have the base later."""
    store = cache_dir() / "bases"
    folders: set[Path] = set()
    for data in contents:
        blob = git_blob_id(data)
        path = _store_path(blob, store)
        if path.exists():
            continue
        # Named after this process and the blob: no other writer can pick the same name.
        temporary = path.parent / f".tmp-{os.getpid()}-{blob}"
        try:
            if path.parent not in folders:
                path.parent.mkdir(parents=True, exist_ok=True)
                folders.add(path.parent)
            write_atomically(path, data, temp=temporary)
        except OSError:
            return


def _from_store(blob: str) -> bytes | None:
    """The stored content for ``blob``, read like any untrusted file: a FIFO, a device or an
    endless file there is one sentence, never a hang or a ``MemoryError``."""
    path = _store_path(blob)
    try:
        return read_file_bytes(path, display=f"the merge-base store's {path}", limit=MAX_SDIST_BYTES)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None  # not stored: git may still have it
    except OSError as exc:
        raise ProjectError(f"the merge-base store's {path} cannot be read ({exc.strerror or exc}); "
                           "remove it and run again") from None


def _from_git(project_root: Path, blob: str) -> bytes | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, "-C", str(project_root), "cat-file", "blob", blob],
            capture_output=True, timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # Not a repository, or the install was never committed: git does not have it.
    return done.stdout if done.returncode == 0 else None


def find_base(project_root: Path, blob: str | None, sha256: str,
              first: Callable[[], bytes | None] | None = None) -> bytes | None:
    """The installed content of a file whose lock entry says ``blob`` and ``sha256``, or None.
    ``first`` is asked before the store and git (a git-sourced copy's recorded commit)."""
    if not blob or not _BLOB.fullmatch(blob):
        return None  # not a blob id: never a path to look up, nor an argument for git
    # In order, and git only when the store misses: it costs a process per file.
    sources = (lambda: _from_store(blob), lambda: _from_git(project_root, blob))
    for source in (first, *sources) if first is not None else sources:
        found = source()
        if found is not None and git_blob_id(found) == blob and sha256_bytes(found) == sha256:
            return found
    return None
