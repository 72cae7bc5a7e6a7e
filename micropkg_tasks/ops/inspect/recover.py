"""``recover``: finish what an interrupted run left, so each project is exactly before or after it.

Every run that writes takes the project's lock and does this first on its own;
``micropkg recover`` does only this, for one project or every project of a
monorepo (one project's bad journal is reported for it, and the others are
still recovered). Commands that only read never recover: they report the
project as interrupted and name ``micropkg recover`` (``interrupted_run``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from micropkg_tasks.core.change.journal import Recovery, interrupted, journal_path
from micropkg_tasks.core.change.transaction import project_lock
from micropkg_tasks.core.errors import MicropkgError, ProjectError
from micropkg_tasks.core.project.project import load_project


@dataclass(frozen=True)
class RecoverResult:
    projects: tuple[str, ...]  # every project looked at
    recovered: tuple[Recovery, ...]  # the ones that had an interrupted run
    failed: tuple[str, ...] = ()  # one sentence per project that could not be recovered

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(recovery.message for recovery in self.recovered)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


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
    """``recover_project`` for each of ``roots``; projects with nothing to recover are left alone,
    and a project that cannot be recovered is reported without stopping the others."""
    names = shown or {}
    done = []
    failed = []
    for root in roots:
        try:
            recovery = recover_project(root, lock_timeout=lock_timeout, shown=names.get(root))
        except MicropkgError as exc:
            failed.append(f"{names.get(root, str(root))}: {exc}")
            continue
        if recovery is not None:
            done.append(recovery)
    return RecoverResult(tuple(names.get(root, str(root)) for root in roots), tuple(done), tuple(failed))


def recover_if_interrupted(root: Path, *, lock_timeout: float = 30.0, shown: str | None = None) -> str:
    """For runs that write: recover only when a journal is there (a clean project is not
    locked here), and say what was done, or ``""``."""
    if not interrupted_run(root):
        return ""
    recovery = recover_project(root, lock_timeout=lock_timeout, shown=shown)
    return recovery.message if recovery else ""


def interrupted_run(root: Path) -> str:
    """For runs that only read: one sentence naming ``micropkg recover`` if a killed run left a
    journal in ``root``, else ``""``. Writes nothing, takes no lock; a journal that is not
    valid is refused (``ProjectError``), naming the file and the entry."""
    resolved = Path(root).resolve()
    if not os.path.lexists(journal_path(resolved)):
        return ""
    return interrupted(resolved, load_project(resolved).managed_paths())


def finish_interrupted(
    roots: Sequence[Path], *, read_only: bool, lock_timeout: float = 30.0, shown: dict[Path, str] | None = None
) -> tuple[tuple[str, ...], dict[Path, MicropkgError]]:
    """Before a batch over several projects: recover each one a killed run left half-done
    (``read_only``: only report it).

    Returns what was recovered, and the projects the batch must leave alone, each with the
    one sentence saying why (interrupted, or a journal that cannot be acted on): one
    project's journal never stops the others."""
    names = shown or {}
    recovered: list[str] = []
    halted: dict[Path, MicropkgError] = {}
    for root in roots:
        try:
            if read_only:
                message = interrupted_run(root)
                if message:
                    halted[root] = ProjectError(message)
            elif message := recover_if_interrupted(root, lock_timeout=lock_timeout, shown=names.get(root)):
                recovered.append(message)
        except MicropkgError as exc:
            halted[root] = exc
    return tuple(recovered), halted
