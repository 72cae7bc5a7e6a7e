"""Turning command-line options and config into the plain values the operations take.

Settings resolve as: ``[tool.micropkg]`` of the project, then the invoke config
(``invoke.yaml`` under ``micropkg:``, ``INVOKE_MICROPKG_*``), then ``DEFAULTS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from micropkg_tasks.core.errors import ConflictError, MicropkgError, UsageError
from micropkg_tasks.core.manifest import is_url
from micropkg_tasks.core.monorepo import Monorepo, find_monorepo_root, require_monorepo
from micropkg_tasks.core.project import Project, find_project_root, load_project

if TYPE_CHECKING:
    from micropkg_tasks.ops.compile_batch import CompileOutcome

DEFAULTS: dict[str, Any] = {
    "jobs": None,  # parallel packaging processes; None means one per available core
    "lock_timeout": 30,  # seconds to wait for another run on the same project
    "max_unpacked_mb": 100,  # cap on an sdist's unpacked size
    "max_members": 10_000,  # cap on an sdist's member count
    "compile": {},  # pip-compile settings: {enabled, args, backend, timeout}
}


def project_from(project: str | None) -> Project:
    return load_project(Path(project)) if project else load_project(find_project_root(Path.cwd()))


def setting(c: Any, project: Project, key: str) -> Any:
    """``[tool.micropkg]`` of the project wins over the invoke config, which wins over defaults."""
    if key in project.settings:
        return project.settings[key]
    config = c.config.get("micropkg", {}) if hasattr(c, "config") else {}
    return config.get(key, DEFAULTS[key])


def number(c: Any, project: Project, key: str) -> float:
    value = setting(c, project, key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise MicropkgError(f"setting micropkg.{key} must be a non-negative number, got {value!r}")
    return value


def whole_number(option: str, value: str | int | None) -> int | None:
    """A count typed on the command line, such as ``--jobs=4``. Options like this are
    declared without a type so Invoke hands us the text, and a typo is a usage error
    (exit 2) under ``invoke`` as under ``micropkg``, rather than Invoke's traceback."""
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit():
        raise UsageError(f"--{option} takes a whole number, such as --{option}=4, not {str(value)!r}")
    return int(text)


def cli_path(value: str | None) -> str | None:
    """Paths typed on the command line are relative to the current folder."""
    if value is None or is_url(value):
        return value
    return str(Path(value).resolve())


def not_an_option(value: str) -> str:
    """Invoke hands an unrecognised ``--flag`` to a missing positional; say what really happened."""
    if value.startswith("-"):
        raise UsageError(f"unknown option {value!r}; see --help for the options")
    return value


def split_list(value: str) -> list[str]:
    return [not_an_option(part.strip()) for part in value.split(",") if part.strip()]


def use_monorepo(all_projects: bool) -> bool:
    """At a monorepo root (or with --all-projects) status covers every project; inside a
    project it covers that project. The nearer of the two folders wins."""
    cwd = Path.cwd()
    monorepo = find_monorepo_root(cwd)
    if all_projects:
        return True
    try:
        project = find_project_root(cwd)
    except MicropkgError:
        return monorepo is not None
    return monorepo is not None and project in monorepo.parents


def scope(project: str | None, monorepo: bool, *, task: str) -> Project | Monorepo:
    """What a task acts on: one project (``--project DIR``, or the project around the current
    folder) or every project of the monorepo (``--monorepo``, or run from the monorepo root)."""
    if project and monorepo:
        raise UsageError(f"{task}: give --project or --monorepo, not both")
    if project:
        return project_from(project)
    if use_monorepo(monorepo):
        return require_monorepo()
    return project_from(None)


def one_project_only(where: Project | Monorepo, what: str) -> Project:
    """A task form that cannot apply to a whole monorepo says why, and how to narrow it."""
    if isinstance(where, Monorepo):
        raise UsageError(
            f"{what} acts on one project, and {where.root} is a monorepo root; run it inside a project "
            "or give --project DIR"
        )
    return where


def compile_config(c: Any) -> Any:
    config = c.config.get("micropkg", {}) if hasattr(c, "config") else {}
    return config.get("compile") or None


def fail_on_compile_errors(outcomes: Sequence[CompileOutcome]) -> None:
    from micropkg_tasks.ops.compile_batch import failed as failed_compiles

    failures = failed_compiles(outcomes)
    if failures:
        # Each failure was already reported above (or in the JSON); this only sets the exit code.
        raise MicropkgError(
            f"requirements could not be compiled in {', '.join(f.project for f in failures)}; "
            "requirements.txt was kept as it was"
        )


def fail_on_refusals(refusals: Sequence[Any], verb: str) -> None:
    """A dry run exits as the real run would: each refusal was reported above (or in the JSON)."""
    if refusals:
        raise ConflictError(
            f"dry run: the real {verb} would be refused ({len(refusals)} reason(s) above); nothing was written"
        )


def fail_on_merge_conflicts(paths: Sequence[str], *, dry_run: bool) -> None:
    if paths and not dry_run:
        # The merged files were written and listed above; this says what is left to do.
        raise MicropkgError(
            f"{len(paths)} file(s) were merged with conflicts: resolve the marked regions by hand "
            "(micropkg status shows them as conflicted until the markers are gone)",
            details=list(paths),
        )


def monorepo_setting(c: Any, key: str) -> Any:
    config = c.config.get("micropkg", {}) if hasattr(c, "config") else {}
    return config.get(key, DEFAULTS[key])
