"""Turning command-line options and config into the plain values the operations take.

Settings resolve as: ``[tool.micropkg]`` of the project, then the invoke config
(``invoke.yaml`` under ``micropkg:``, ``INVOKE_MICROPKG_*``), then ``DEFAULTS``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from micropkg_tasks.core.errors import ConflictError, MicropkgError, UsageError
from micropkg_tasks.core.project.manifest import is_url
from micropkg_tasks.core.project.monorepo import Monorepo, find_monorepo_root, require_monorepo
from micropkg_tasks.core.project.project import Project, find_project_root, load_project
from micropkg_tasks.core.quantities import amount, count, option_count

if TYPE_CHECKING:
    from micropkg_tasks.core.sdist.read import SdistLimits
    from micropkg_tasks.ops.compile.batch import CompileOutcome

DEFAULTS: dict[str, Any] = {
    "jobs": None,  # parallel packaging processes; None means one per available core
    "lock_timeout": 30.0,  # seconds to wait for another run on the same project
    "max_unpacked_mb": 100.0,  # cap on an sdist's unpacked size
    "max_members": 10_000,  # cap on an sdist's member count
    "compile": {},  # pip-compile settings: {enabled, args, backend, timeout}
}

# How each numeric setting is read: every one goes through core/quantities.py.
_NUMBERS: dict[str, Callable[[Any, str], float]] = {
    "jobs": lambda value, name: count(value, name),
    "max_members": lambda value, name: count(value, name, minimum=1),
    "max_unpacked_mb": lambda value, name: amount(value, name, unit="megabytes", positive=True),
    "lock_timeout": lambda value, name: amount(value, name, unit="seconds"),
}


def project_from(project: str | None) -> Project:
    return load_project(Path(project)) if project else load_project(find_project_root(Path.cwd()))


def invoke_settings(c: Any) -> Mapping[str, Any]:
    """The invoke config's ``micropkg`` section (``invoke.yaml``, ``INVOKE_MICROPKG_*``)."""
    config = c.config.get("micropkg", {}) if hasattr(c, "config") else {}
    if config is None:
        return {}
    if not (hasattr(config, "keys") and hasattr(config, "get")):
        raise UsageError("invoke config key 'micropkg' must be a mapping of settings")
    return config


def _setting_and_source(c: Any, project: Project | None, key: str) -> tuple[Any, str]:
    """``[tool.micropkg]`` of the project wins over the invoke config, which wins over defaults."""
    if project is not None and key in project.settings:
        return project.settings[key], f"{project.pyproject_path} [tool.micropkg] key {key!r}"
    return invoke_settings(c).get(key, DEFAULTS[key]), f"invoke config key 'micropkg.{key}'"


def number(c: Any, project: Project | None, key: str) -> float:
    """A numeric setting, checked: a count or a finite amount, else one sentence naming the key
    (exit 2). ``project`` None reads the invoke config only, as at a monorepo root."""
    value, source = _setting_and_source(c, project, key)
    if value is None:
        return 0
    return _NUMBERS[key](value, source)


def sdist_limits(c: Any, project: Project) -> SdistLimits:
    """The caps on a pulled sdist, from ``max_unpacked_mb`` and ``max_members``."""
    from micropkg_tasks.core.sdist.read import SdistLimits

    megabytes = number(c, project, "max_unpacked_mb")
    return SdistLimits(
        max_total_bytes=max(1, int(min(megabytes * 1024 * 1024, sys.maxsize))),
        max_members=int(number(c, project, "max_members")),
    )


def jobs(c: Any, project: Project | None, given: str | int | None) -> int | None:
    """``--jobs`` if given, else the ``jobs`` setting; None (one per core) when neither is set."""
    return option_count("jobs", given) or int(number(c, project, "jobs")) or None


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
    """The invoke config's ``micropkg.compile``, checked (a bad timeout is exit 2 before any work)."""
    from micropkg_tasks.core.requirements.compile_settings import check_invoke_layer

    value = invoke_settings(c).get("compile") or None
    try:
        check_invoke_layer(value)
    except MicropkgError as exc:
        raise UsageError(exc.message) from None
    return value


def fail_on_compile_errors(
    outcomes: Sequence[CompileOutcome], *, installed: bool = False, name_projects: bool = True
) -> None:
    """Raise when a compile failed. ``installed``: the batch's install committed first, so the
    error says so and exits with its own code (see ``EXIT_INSTALLED_NOT_COMPILED``)."""
    from micropkg_tasks.ops.compile.batch import after_install
    from micropkg_tasks.ops.compile.batch import failed as failed_compiles

    failures = failed_compiles(outcomes)
    error = after_install(failures, name_projects=name_projects) if installed else None
    if error is not None:
        raise error
    if failures:
        # Each failure was already reported above (or in the JSON); this only sets the exit code.
        raise MicropkgError(
            f"requirements could not be compiled in {', '.join(f.project for f in failures)}; "
            "requirements.txt was kept as it was"
        )


def say_compile_errors(outcomes: Sequence[CompileOutcome]) -> None:
    """For a batch that also failed elsewhere (its exit code is that failure's): say that the
    installs that did commit were not compiled, and why."""
    from micropkg_tasks.cli.output import err
    from micropkg_tasks.ops.compile.batch import after_install

    if (error := after_install(outcomes, partial=True)) is not None:
        err(f"error: {error.message}")


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
