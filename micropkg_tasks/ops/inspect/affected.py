"""``affected --since REF``: the projects a git change touches, each with its reasons.

A project is affected when:

- files inside it changed;
- it holds a copy of a micro-package whose source files changed: a shared entry's
  targets, the copies sync-shared brings along because a shared micro-package
  imports them, and a sibling pull (``../core#utils.io``) recorded in its lock;
- (said on its own) its ``pyproject.toml``, ``micropkg.lock`` or ``requirements.in`` changed.

Every project is affected when the monorepo's own ``pyproject.toml`` (or
``micropkg.toml``) changed. Ownership and dependencies come from the same model
as ``sync-shared`` and ``status``: the shared entries and the closure
``dependency_entries`` computes, and each project's lock.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.lock.lockfile import read_project_lock
from micropkg_tasks.core.project.monorepo import Monorepo, SharedEntry, require_monorepo
from micropkg_tasks.core.project.project import Project, load_project
from micropkg_tasks.ops.inspect.git_changes import changed_since
from micropkg_tasks.ops.package.inputs import PackageInputs, read_inputs
from micropkg_tasks.ops.sources.locations import split_sibling
from micropkg_tasks.ops.sync.dependencies import dependency_entries
from micropkg_tasks.ops.sync.git_entries import local_entries

PROJECT_FILES = ("pyproject.toml", "micropkg.lock", "requirements.in")


@dataclass(frozen=True)
class AffectedProject:
    project: str  # relative to the monorepo root, as in every other report
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class AffectedResult:
    root: str
    since: str
    changed: tuple[str, ...]  # changed files, relative to the monorepo root (those inside it)
    projects: tuple[AffectedProject, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.project for p in self.projects)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _source_files_changed(project: Project, inputs: PackageInputs, changed: Sequence[Path]) -> list[Path]:
    """The changed files that are part of the micro-package: its code, tests or parameter files
    (a file deleted from its folders counts too)."""
    config = {project.env_dir(inputs.env) / relative for relative in inputs.config}
    return [
        path for path in changed
        if _inside(path, inputs.module_dir) or _inside(path, inputs.tests_dir) or path in config
    ]


def _shared_reasons(monorepo: Monorepo, changed: Sequence[Path], add: "_Reasons") -> None:
    """Targets of shared entries (and of the dependencies sync-shared brings along) whose source changed.
    A source in another git repository is not among this repository's changes: such entries are left out."""
    inputs: dict[int, PackageInputs | MicropkgError] = {}
    entries = local_entries(monorepo.shared)
    for entry in entries:
        inputs[entry.index] = _inputs(entry, entry.alias)
    closure = dependency_entries(monorepo, entries, inputs)
    for extra in closure.entries:
        inputs[extra.index] = _inputs(extra, None)
    for entry in (*entries, *closure.entries):
        found = inputs[entry.index]
        if isinstance(found, MicropkgError):
            continue  # sync-shared --check reports an unreadable source; here it changes nothing
        touched = _source_files_changed(load_project(entry.project), found, changed)
        if not touched:
            continue
        source = monorepo.relative(entry.project)
        for target in entry.targets:
            needed_by = closure.dependents.get((entry.index, target.project))
            why = f" (a dependency of {', '.join(needed_by)})" if needed_by else ""
            add(target.project, f"its copy {target.module}{why} is shared from {source}#{entry.micropkg}, "
                                f"whose source changed ({monorepo.relative(touched[0])})")


def _inputs(entry: SharedEntry, alias: str | None) -> PackageInputs | MicropkgError:
    try:
        return read_inputs(load_project(entry.project), entry.micropkg, alias, entry.env, for_distribution=False)
    except MicropkgError as exc:
        return exc


def _pulled_reasons(monorepo: Monorepo, changed: Sequence[Path], add: "_Reasons") -> None:
    """Projects whose lock records a copy pulled from a sibling project (or a local sdist) that changed."""
    changed_set = set(changed)
    for path in monorepo.projects:
        try:
            lock = read_project_lock(load_project(path))
        except MicropkgError:
            continue  # the lock itself is listed as a changed file when it is what changed
        for module, entry in sorted(lock.entries.items()):
            sibling = split_sibling(entry.source)
            if sibling is None:
                local = (path / entry.source).resolve() if "://" not in entry.source else None
                if local is not None and local in changed_set:
                    add(path, f"its copy {module} was pulled from {monorepo.relative(local)}, which changed")
                continue
            folder, source_module = sibling
            try:
                source = load_project(Path(os.path.normpath(path / folder)))
                found = read_inputs(source, source_module, None, entry.options.get("env", "base"), for_distribution=False)
            except MicropkgError:
                continue
            touched = _source_files_changed(source, found, changed)
            if touched:
                add(path, f"its copy {module} was pulled from {monorepo.relative(source.root)}#{source_module}, "
                          f"whose source changed ({monorepo.relative(touched[0])})")


class _Reasons:
    """Reasons per project, in the order found, each said once."""

    def __init__(self) -> None:
        self.found: dict[Path, list[str]] = {}

    def __call__(self, project: Path, reason: str) -> None:
        reasons = self.found.setdefault(project, [])
        if reason not in reasons:
            reasons.append(reason)


def _own_files(monorepo: Monorepo, changed: Iterable[Path], add: _Reasons) -> None:
    for path in monorepo.projects:
        mine = [file for file in changed if _inside(file, path)]
        for name in PROJECT_FILES:
            if path / name in mine:
                add(path, f"its {name} changed")
        others = [file for file in mine if file.parent != path or file.name not in PROJECT_FILES]
        if others:
            more = f" and {len(others) - 1} more" if len(others) > 1 else ""
            add(path, f"files in it changed ({monorepo.relative(others[0])}{more})")


def affected(root: Path | str | os.PathLike[str] | None, since: str) -> AffectedResult:
    """The projects of the monorepo at or above ``root`` that the change since ``since`` touches."""
    monorepo = require_monorepo(root)
    changed = [path for path in changed_since(monorepo.root, since) if _inside(path, monorepo.root)]
    add = _Reasons()
    root_files = {monorepo.root / "pyproject.toml", monorepo.config_path}
    for config in sorted(root_files & set(changed)):
        for path in monorepo.projects:
            add(path, f"the monorepo's {monorepo.relative(config)} changed")
    _own_files(monorepo, changed, add)
    _shared_reasons(monorepo, changed, add)
    _pulled_reasons(monorepo, changed, add)
    projects = tuple(
        AffectedProject(monorepo.relative(path), tuple(add.found[path])) for path in monorepo.projects if path in add.found
    )
    return AffectedResult(str(monorepo.root), since, tuple(monorepo.relative(p) for p in changed), projects)


def affected_roots(root: Path | str | os.PathLike[str] | None, since: str) -> list[Path]:
    """The folders of the affected projects, for tasks that take ``--since``."""
    result = affected(root, since)
    base = Path(result.root)
    return [base / name for name in result.names]
