"""``status`` at a monorepo root: every project, every installed micro-package, its owner and state.

The rows come from the one model of installed copies (``ops/copies/copy_state.py``), the
same one ``status`` reads inside a project.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from micropkg_tasks.core.lock.copy_state import PASSING
from micropkg_tasks.core.project.monorepo import require_monorepo
from micropkg_tasks.ops.copies.copy_state import copy_model


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
    owner: str = ""  # the declaration that brings it in; "" for an ad-hoc pull


@dataclass(frozen=True)
class MonorepoStatus:
    root: str
    rows: tuple[StatusRow, ...]
    projects: tuple[str, ...]
    interrupted: tuple[str, ...] = ()  # one sentence per project a killed run left half-done
    errors: tuple[str, ...] = ()  # configuration errors, such as two declarations claiming one copy

    @property
    def clean(self) -> bool:
        return not self.errors and all(row.state in PASSING for row in self.rows)


def monorepo_status(root: Path | str | os.PathLike[str] | None = None) -> MonorepoStatus:
    """One row per installed micro-package in every project, plus declared copies not installed yet."""
    monorepo = require_monorepo(root)
    model = copy_model(monorepo.root, monorepo=monorepo)
    rows = tuple(
        StatusRow(c.project, c.module, c.version, c.source, c.state, tuple(sorted(c.edited + c.missing)),
                  c.depends_on, c.needed_by, c.owner)
        for c in model.copies
    )
    return MonorepoStatus(str(monorepo.root), rows, model.projects, model.interrupted, model.errors)
