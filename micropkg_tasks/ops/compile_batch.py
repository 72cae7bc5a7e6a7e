"""Compile each changed project once, at the end of a batch (pull, pull-all, sync-shared).

Compiling is slow (it resolves against an index), so a batch that touches a
project's ``requirements.in`` several times compiles it only once, after the
last change, and never while that project's lock is held.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from micropkg_tasks.core.compile_settings import CompileSettings, compile_settings
from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.monorepo import monorepo_settings
from micropkg_tasks.core.project import Project, load_project
from micropkg_tasks.ops.compile import CompileResult, compile_requirements


@dataclass(frozen=True)
class CompileOutcome:
    """One project's compile after a batch: its result, or why it failed."""

    project: str
    result: CompileResult | None = None
    error: str = ""
    details: tuple[str, ...] = ()


def settings_for(project: Project, invoke_config: Mapping[str, Any] | None = None) -> CompileSettings:
    """Project settings over the monorepo's over the invoke config's (``micropkg.compile``)."""
    shared, path = monorepo_settings(project.root)
    return compile_settings(project, monorepo=shared, invoke_config=invoke_config, monorepo_path=path)


def compile_projects(
    roots: Sequence[Path],
    *,
    invoke_config: Mapping[str, Any] | None = None,
    upgrade: bool = False,
    force: bool = False,
    lock_timeout: float = 30.0,
    shown: Mapping[Path, str] | None = None,
) -> tuple[CompileOutcome, ...]:
    """Compile each project once, in order; a failure is recorded and the others still run."""
    outcomes = []
    for root in dict.fromkeys(Path(r) for r in roots):
        label = (shown or {}).get(root, str(root))
        try:
            project = load_project(root)
            result = compile_requirements(
                project,
                upgrade=upgrade,
                force=force,
                settings=settings_for(project, invoke_config),
                lock_timeout=lock_timeout,
            )
        except MicropkgError as exc:
            outcomes.append(CompileOutcome(label, error=str(exc), details=tuple(exc.details)))
            continue
        outcomes.append(CompileOutcome(label, result=result))
    return tuple(outcomes)


def failed(outcomes: Sequence[CompileOutcome]) -> tuple[CompileOutcome, ...]:
    return tuple(outcome for outcome in outcomes if outcome.error)
