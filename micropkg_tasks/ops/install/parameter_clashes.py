"""Refuse a pull that would leave an env whose parameter files define a top-level key twice.

Kedro loads every parameters file of an env into one namespace and refuses to
start when two of them define the same top-level key. A pull is planned in a
staging overlay first, so the env can be checked as the pull would leave it,
before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from micropkg_tasks.core.change.staging import Staging
from micropkg_tasks.core.errors import ConflictError
from micropkg_tasks.core.project.param_keys import duplicate_keys
from micropkg_tasks.core.project.project import Project
from micropkg_tasks.ops.install.plan import InstallPlan


def _env_as_left(staging: Staging, env_dir: Path, incoming: Mapping[str, InstallPlan]) -> dict[str, bytes]:
    """Every file of the env folder as the batch will leave it, relative to the folder."""
    candidates = {path for path in env_dir.rglob("*") if path.is_file()} if env_dir.is_dir() else set()
    candidates |= {env_dir / relative for relative in incoming}
    files = {}
    for path in candidates:
        content = staging.read(path)
        if content is not None:
            files[path.relative_to(env_dir).as_posix()] = content
    return files


def refuse_duplicate_parameter_keys(
    project: Project,
    staging: Staging,
    batch: Sequence[tuple[str, Mapping[Path, bytes], InstallPlan]],
    *,
    force: bool,
    verb: str,
) -> None:
    """Raise ``ConflictError`` naming each key and both files; with ``force`` each clash becomes a
    warning of the plan that brings the file instead.

    ``batch`` holds, per sdist, its env, the files it installs and its plan.
    """
    for env in sorted({env for env, _, _ in batch}):
        env_dir = project.env_dir(env)
        incoming: dict[str, InstallPlan] = {}
        for item_env, placed, plan in batch:
            if item_env == env:
                for path in placed:
                    if path.is_relative_to(env_dir):
                        incoming[path.relative_to(env_dir).as_posix()] = plan
        if not incoming:
            continue
        files = _env_as_left(staging, env_dir, incoming)
        duplicates = duplicate_keys(files, {relative: plan.module for relative, plan in incoming.items()})
        if not duplicates:
            continue
        shown = project.relative(env_dir)
        lines = [
            f"top-level key {d.key!r} in {shown}/{d.incoming} is also defined in {shown}/{d.existing}"
            for d in duplicates
        ]
        if not force:
            raise ConflictError(
                f"{verb} refused: {len(duplicates)} top-level parameter key(s) would be defined twice in {shown}, "
                "which Kedro refuses to load; nothing was written (rename the keys, pull with another --env, "
                "or use --force to pull anyway)",
                details=lines,
            )
        for duplicate, line in zip(duplicates, lines):
            incoming[duplicate.incoming].warnings.append(f"{line}; Kedro will refuse to load {shown}")
