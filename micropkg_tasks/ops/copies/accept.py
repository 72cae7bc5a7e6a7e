"""``accept``: record the local edits of an installed copy as intended, so it is "customised".

The lock entry keeps upstream's hashes and blobs (the base of the next merge) and
records each edited file's current content under ``customised``. From then on the
copy passes ``check``, and the next upstream change is merged into it, as after a
``--merge`` that kept local changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from micropkg_tasks.core.change.staging import Staging
from micropkg_tasks.core.change.transaction import apply_changes, project_lock
from micropkg_tasks.core.errors import UsageError
from micropkg_tasks.core.lock.lockfile import (
    changed_files,
    conflicted_files,
    read_project_lock,
    render_lock,
    sha256_file,
)
from micropkg_tasks.core.project.project import Project, as_project


@dataclass(frozen=True)
class AcceptResult:
    project: str
    module: str
    accepted: tuple[str, ...]  # files whose current content is now recorded as intended
    recovered: str = ""  # an interrupted earlier run this one rolled back or forward first


def accept(project: Project | str | os.PathLike[str], module: str, *, lock_timeout: float = 30.0) -> AcceptResult:
    """Record the current content of every edited file of ``module`` as intended. Refuses a
    copy with deleted files or conflict markers (nothing is written then)."""
    resolved = as_project(project)
    with project_lock(resolved.root, timeout=lock_timeout, managed=resolved.managed_paths()) as recovery:
        lock = read_project_lock(resolved)
        entry = lock.entries.get(module)
        if entry is None:
            installed = ", ".join(sorted(lock.entries)) or "none"
            raise UsageError(f"{module} is not installed in {resolved.root} (installed: {installed})")
        conflicted = conflicted_files(resolved.root, entry)
        if conflicted:
            raise UsageError(f"{module}: {conflicted[0]} still has conflict markers; resolve them, then accept")
        edited, missing = changed_files(resolved.root, entry)
        if missing:
            raise UsageError(f"{module}: {missing[0]} was deleted; a deleted file cannot be accepted, restore it "
                             "(or remove the copy)")
        for relative in edited:
            digest = sha256_file(resolved.root / relative)
            if digest is None:
                raise UsageError(f"{module}: {relative} is not a regular file and cannot be accepted")
            entry.customised[relative] = digest
        if edited:
            staging = Staging(resolved.root)
            staging.write(resolved.lock_path, render_lock(lock).encode("utf-8"))
            apply_changes(resolved.root, staging.changes(), managed=resolved.managed_paths())
    return AcceptResult(str(resolved.root), module, edited, recovery.message if recovery else "")
