"""``status``: is each installed micro-package still what the lock says was installed?"""

from __future__ import annotations

import os
from dataclasses import dataclass

from micropkg_tasks.core.lockfile import changed_files, conflicted_files, read_project_lock
from micropkg_tasks.core.project import Project, as_project
from micropkg_tasks.ops.recover import INTERRUPTED, interrupted_run

IN_SYNC = "in sync"
LOCALLY_EDITED = "locally edited"
CONFLICTED = "conflicted"  # a --merge left conflict markers that are still there


@dataclass(frozen=True)
class InstalledStatus:
    module: str
    name: str
    source: str
    version: str
    state: str
    edited: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    conflicted: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()  # installed micro-packages it imports
    needed_by: tuple[str, ...] = ()  # installed micro-packages that import it


@dataclass(frozen=True)
class ProjectStatus:
    project: str
    packages: tuple[InstalledStatus, ...]
    # A killed run left a journal: every copy is reported "interrupted" until `micropkg recover`.
    interrupted: str = ""

    @property
    def clean(self) -> bool:
        return all(item.state == IN_SYNC for item in self.packages)


def status(project: Project | str | os.PathLike[str]) -> ProjectStatus:
    """Compare every file recorded in ``micropkg.lock`` with the disk (reads only: an interrupted
    run is reported, never rolled back or forward)."""
    resolved = as_project(project)
    interrupted = interrupted_run(resolved.root)
    lock = read_project_lock(resolved)
    packages = []
    dependents = lock.dependents()  # once for the whole lock: asking per entry is quadratic
    for module in sorted(lock.entries):
        entry = lock.entries[module]
        edited, missing = changed_files(resolved.root, entry)
        conflicted = conflicted_files(resolved.root, entry)
        packages.append(
            InstalledStatus(
                module=module,
                name=entry.name,
                source=entry.source,
                version=entry.version,
                state=(INTERRUPTED if interrupted else CONFLICTED if conflicted
                       else LOCALLY_EDITED if edited or missing else IN_SYNC),
                edited=edited,
                missing=missing,
                conflicted=conflicted,
                depends_on=tuple(entry.depends_on),
                needed_by=dependents.get(module, ()),
            )
        )
    return ProjectStatus(str(resolved.root), tuple(packages), interrupted)
