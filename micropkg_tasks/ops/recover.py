"""``recover``: finish what an interrupted run left, so each project is exactly before or after it.

Every run that takes a project's lock does this first on its own; ``micropkg
recover`` does only this, for one project or every project of a monorepo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from micropkg_tasks.core.journal import Recovery, journal_path
from micropkg_tasks.core.transaction import project_lock


@dataclass(frozen=True)
class RecoverResult:
    projects: tuple[str, ...]  # every project looked at
    recovered: tuple[Recovery, ...]  # the ones that had an interrupted run

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(recovery.message for recovery in self.recovered)


def recover_project(root: Path | str | os.PathLike[str], *, lock_timeout: float = 30.0,
                    shown: str | None = None) -> Recovery | None:
    """Roll an interrupted transaction in ``root`` back (or forward, if it had committed)."""
    with project_lock(Path(root), timeout=lock_timeout) as recovery:
        pass
    if recovery is not None and shown is not None:
        recovery = Recovery(shown, recovery.action, recovery.files)
    return recovery


def recover_projects(
    roots: Sequence[Path], *, lock_timeout: float = 30.0, shown: dict[Path, str] | None = None
) -> RecoverResult:
    """``recover_project`` for each of ``roots``; projects with nothing to recover are left alone."""
    names = shown or {}
    done = []
    for root in roots:
        recovery = recover_project(root, lock_timeout=lock_timeout, shown=names.get(root))
        if recovery is not None:
            done.append(recovery)
    return RecoverResult(tuple(names.get(root, str(root)) for root in roots), tuple(done))


def recover_if_interrupted(root: Path, *, lock_timeout: float = 30.0, shown: str | None = None) -> str:
    """Recover only when a journal is there (so a clean project is never locked or written, not
    even by a read-only command), and say what was done, or ``""``."""
    if not journal_path(Path(root).resolve()).exists():
        return ""
    recovery = recover_project(root, lock_timeout=lock_timeout, shown=shown)
    return recovery.message if recovery else ""
