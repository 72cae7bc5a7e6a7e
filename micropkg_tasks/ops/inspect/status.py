"""``status`` in a project: each installed micro-package, its owner and its state.

The states come from the one model of installed copies (``ops/copies/copy_state.py``): a
project inside a monorepo is seen with the monorepo's shared entries, so a copy
has the same state here as in ``status`` at the root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from micropkg_tasks.core.lock.copy_state import CONFLICTED, IN_SYNC, INTERRUPTED, LOCALLY_EDITED, PASSING
from micropkg_tasks.core.project.project import Project, as_project
from micropkg_tasks.ops.copies.copy_state import copy_model

__all__ = ["CONFLICTED", "IN_SYNC", "INTERRUPTED", "LOCALLY_EDITED", "InstalledStatus", "ProjectStatus", "status"]


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
    owner: str = ""  # the declaration that brings it in; "" for an ad-hoc pull


@dataclass(frozen=True)
class ProjectStatus:
    project: str
    packages: tuple[InstalledStatus, ...]
    # A killed run left a journal: every copy is reported "interrupted" until `micropkg recover`.
    interrupted: str = ""
    errors: tuple[str, ...] = ()  # configuration errors, such as two declarations claiming one copy

    @property
    def clean(self) -> bool:
        return not self.errors and all(item.state in PASSING for item in self.packages)


def status(project: Project | str | os.PathLike[str]) -> ProjectStatus:
    """Every copy installed in (or declared for) the project, from the one model (reads only:
    an interrupted run is reported, never rolled back or forward)."""
    resolved = as_project(project)
    model = copy_model(resolved.root, projects=[resolved.root])
    packages = tuple(
        InstalledStatus(
            module=copy.module, name=copy.name, source=copy.source, version=copy.version, state=copy.state,
            edited=copy.edited, missing=copy.missing, conflicted=copy.conflicted, depends_on=copy.depends_on,
            needed_by=copy.needed_by, owner=copy.owner,
        )
        for copy in model.copies
    )
    return ProjectStatus(str(resolved.root), packages, model.interrupted[0] if model.interrupted else "", model.errors)
