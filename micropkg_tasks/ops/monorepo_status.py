"""``status`` at a monorepo root: every project, every installed micro-package, and its state."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.lockfile import LockEntry, changed_files, conflicted_files, read_project_lock, sha256_file
from micropkg_tasks.core.monorepo import require_monorepo
from micropkg_tasks.core.project import load_project
from micropkg_tasks.ops.build import read_inputs
from micropkg_tasks.ops.recover import INTERRUPTED, interrupted_run
from micropkg_tasks.ops.sources import split_sibling
from micropkg_tasks.ops.sync import (
    CONFLICTED,
    IN_SYNC,
    LOCALLY_EDITED,
    NOT_INSTALLED,
    UPSTREAM_MOVED,
    compare,
    source_location,
)
from micropkg_tasks.ops.sync_deps import dependency_entries


@dataclass(frozen=True)
class StatusRow:
    project: str
    module: str
    version: str
    source: str
    state: str
    edited: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()  # installed micro-packages it imports
    needed_by: tuple[str, ...] = ()  # installed micro-packages that import it


@dataclass(frozen=True)
class MonorepoStatus:
    root: str
    rows: tuple[StatusRow, ...]
    projects: tuple[str, ...]
    interrupted: tuple[str, ...] = ()  # one sentence per project a killed run left half-done

    @property
    def clean(self) -> bool:
        return all(row.state == IN_SYNC for row in self.rows)


def _sibling_moved(project_root: Path, entry: LockEntry) -> bool:
    """For a sibling source (``../core#pipelines.x``): do that project's files now differ from what was pulled?"""
    folder, module = split_sibling(entry.source)  # type: ignore[misc]
    try:
        source = load_project(Path(os.path.normpath(project_root / folder)))
        inputs = read_inputs(source, module, None, entry.options.get("env", "base"), for_distribution=False)
    except MicropkgError:
        return True  # the source is gone or broken: what was pulled no longer matches it
    return inputs.digest != entry.source_sha256


def _sdist_moved(project_root: Path, source: str, recorded_sha: str) -> bool:
    """For a local sdist location: does the file there now differ from what was pulled?"""
    if "://" in source or "#" in source:
        return False
    current = sha256_file((project_root / source).resolve())
    return current is not None and current != recorded_sha


def monorepo_status(root: Path | str | os.PathLike[str] | None = None) -> MonorepoStatus:
    """One row per installed micro-package in every project, plus shared copies not installed yet."""
    monorepo = require_monorepo(root)
    inputs = {
        entry.index: read_inputs(load_project(entry.source), entry.micropkg, entry.alias, entry.env, for_distribution=False)
        for entry in monorepo.shared
    }
    # Dependencies that sync-shared installs along with the shared entries are shared copies too.
    closure = dependency_entries(monorepo, monorepo.shared, inputs).entries
    for extra in closure:
        inputs[extra.index] = read_inputs(load_project(extra.source), extra.micropkg, None, extra.env, for_distribution=False)
    digests = {index: found.digest for index, found in inputs.items()}
    shared_at = {(t.project, t.module): entry for entry in (*monorepo.shared, *closure) for t in entry.targets}
    rows: list[StatusRow] = []
    interrupted: list[str] = []
    for path in monorepo.projects:
        project = load_project(path)
        shown = monorepo.relative(path)
        message = interrupted_run(path)  # reads only: never rolled back or forward here
        if message:
            interrupted.append(message)
        first = len(rows)
        lock = read_project_lock(project)
        dependents = lock.dependents()
        for module in sorted(lock.entries):
            entry = lock.entries[module]
            shared = shared_at.get((path, module))
            if shared is not None:
                state = compare(monorepo, shared, path, module, digests[shared.index], lock)
                rows.append(StatusRow(shown, module, entry.version, entry.source, state.state, state.edited,
                                      tuple(entry.depends_on), dependents.get(module, ())))
                continue
            changed, missing = changed_files(path, entry)
            edited = tuple(sorted(changed + missing))
            if conflicted_files(path, entry):
                state_name = CONFLICTED
            elif edited:
                state_name = LOCALLY_EDITED
            elif split_sibling(entry.source) is not None and _sibling_moved(path, entry):
                state_name = UPSTREAM_MOVED
            elif _sdist_moved(path, entry.source, entry.sdist_sha256):
                state_name = UPSTREAM_MOVED
            else:
                state_name = IN_SYNC
            rows.append(StatusRow(shown, module, entry.version, entry.source, state_name, edited,
                                  tuple(entry.depends_on), dependents.get(module, ())))
        for (target, module), shared in sorted(shared_at.items(), key=lambda item: (str(item[0][0]), item[0][1])):
            if target == path and module not in lock.entries:
                rows.append(StatusRow(shown, module, "-", source_location(shared, path), NOT_INSTALLED))
        if message:
            rows[first:] = [replace(row, state=INTERRUPTED) for row in rows[first:]]
    return MonorepoStatus(
        str(monorepo.root), tuple(rows), tuple(monorepo.relative(p) for p in monorepo.projects), tuple(interrupted)
    )
