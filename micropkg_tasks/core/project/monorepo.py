"""The monorepo model: sibling projects and the micro-packages they share.

A monorepo root has a ``pyproject.toml`` or ``micropkg.toml`` whose
``[tool.micropkg.monorepo]`` lists project folders as globs, and
``[[tool.micropkg.shared]]`` entries saying which micro-package of which
source project is installed into which targets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from micropkg_tasks.core.errors import NotFoundHereError, ProjectError, UsageError
from micropkg_tasks.core.git_url import GitSource, is_git_location, parse_git_location, redact_git_location
from micropkg_tasks.core.project.names import (
    validate_alias,
    validate_destination_module,
    validate_env,
    validate_module_path,
)
from micropkg_tasks.core.project.project import Project, is_project_dir, load_project, read_toml, table

MONOREPO_FILES = ("micropkg.toml", "pyproject.toml")
_SHARED_KEYS = frozenset({"micropkg", "source", "targets", "destination", "alias", "env", "merge"})


@dataclass(frozen=True)
class SharedTarget:
    """One installation of a shared micro-package: into ``project`` at ``module``."""

    project: Path
    module: str  # dotted path inside the target's package


@dataclass(frozen=True)
class SharedEntry:
    micropkg: str  # module path in the source project
    # The source project's folder. For a git source, None until the ref is resolved (see
    # ops/sync/git_entries.py), then the project's files at that commit in the cache.
    source: Path | None
    targets: tuple[SharedTarget, ...]
    destination: str | None
    alias: str | None
    env: str
    index: int  # position in the file, for messages
    merge: bool = False  # local edits in targets are always merged with upstream's changes (--merge for good)
    git: GitSource | None = None  # a source in another repository: ``git+...@ref#<folder>:<micropkg>``
    commit: str | None = None  # a git source: the commit its ref names in this run, once resolved

    @property
    def name(self) -> str:
        return self.alias or self.micropkg.rsplit(".", 1)[-1]

    @property
    def label(self) -> str:
        return f"[[tool.micropkg.shared]] #{self.index} ({self.micropkg})"

    @property
    def project(self) -> Path:
        """The folder the micro-package is packaged from (a git source's once resolved)."""
        if self.source is None:
            raise ProjectError(f"{self.label}: its git source has not been read yet")
        return self.source


@dataclass(frozen=True)
class Monorepo:
    root: Path
    config_path: Path
    projects: tuple[Path, ...]
    shared: tuple[SharedEntry, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)  # the root's [tool.micropkg] table
    warnings: tuple[str, ...] = ()

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def source_of(self, entry: SharedEntry) -> str:
        """The entry's source as shown: the project folder relative to the root, or the git
        location of the project (credentials hidden)."""
        if entry.git is not None:
            return git_project(entry.git)
        return self.relative(entry.project)


def git_project(source: GitSource) -> str:
    """A git source as a shared entry's ``source`` names it: ``git+...@ref#<folder>``,
    credentials hidden."""
    head = redact_git_location(source.location).rpartition("#")[0]
    return f"{head}#{source.path}" if source.path else head


def shared_location(source: str, micropkg: str) -> str:
    """Where the copies of a shared entry come from, as shown: ``<source project>#<module path>``,
    or for a source in another repository (``source`` as :func:`git_project` gives it) the
    git location a pull takes, ``git+...@ref#<folder>:<module path>``."""
    if not is_git_location(source):
        return f"{source}#{micropkg}"
    head, hash_sep, folder = source.rpartition("#")
    if not hash_sep:
        head, folder = source, ""
    return f"{head}#{folder}:{micropkg}" if folder else f"{head}#{micropkg}"


def _git_source(value: str, micropkg: str, label: str) -> GitSource:
    """A shared entry's git ``source``: ``git+<scheme>://<repository>@<ref>[#<folder>]``; the
    entry's ``micropkg`` names the module. A malformed one is one sentence naming the entry."""
    shown = redact_git_location(value)
    _, hash_sep, folder = value.rpartition("#")
    if hash_sep and ":" in folder:
        raise UsageError(f"{label} source {shown}: after the # give the project's folder only "
                           "(the module is the entry's 'micropkg')")
    location = shared_location(value, micropkg)
    try:
        return parse_git_location(location)
    except UsageError as exc:
        reason = str(exc).removeprefix(f"{redact_git_location(location)}: ")
        raise UsageError(f"{label} source {shown}: {reason}") from None


def _monorepo_config(folder: Path) -> Path | None:
    for name in MONOREPO_FILES:
        candidate = folder / name
        if candidate.is_file():
            try:
                if table(read_toml(candidate), "tool.micropkg.monorepo") is not None:
                    return candidate
            except ProjectError:
                return candidate  # broken, but clearly meant: load_monorepo says what is wrong
    return None


def monorepo_settings(start: Path) -> tuple[Mapping[str, Any] | None, Path | None]:
    """The ``[tool.micropkg]`` table of the monorepo at or above ``start``, and its file.

    Reads only that table, without validating the whole monorepo, so that a
    project can take shared defaults (compile settings) from it cheaply.
    """
    root = find_monorepo_root(start)
    if root is None:
        return None, None
    config_path = _monorepo_config(root)
    assert config_path is not None
    return table(read_toml(config_path), "tool.micropkg") or {}, config_path


def find_monorepo_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that declares ``[tool.micropkg.monorepo]``."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if _monorepo_config(folder) is not None:
            return folder
    return None


def require_monorepo(start: Path | str | os.PathLike[str] | None = None) -> "Monorepo":
    """The monorepo at or above ``start`` (default: the current folder), or a clear error."""
    folder = Path(start) if start is not None else Path.cwd()
    found = find_monorepo_root(folder)
    if found is None:
        raise NotFoundHereError(
            f"no monorepo found at or above {folder.resolve()}: expected a pyproject.toml or "
            "micropkg.toml with [tool.micropkg.monorepo]"
        )
    return load_monorepo(found)


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _project_globs(root: Path, config_path: Path, monorepo: Mapping[str, Any]) -> tuple[list[Path], list[str]]:
    patterns = monorepo.get("projects", [])
    where = f"{config_path} [tool.micropkg.monorepo]"
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise ProjectError(f"{where} 'projects' must be a list of folder globs such as [\"projects/*\"]")
    found: set[Path] = set()
    warnings = []
    for pattern in patterns:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise ProjectError(f"{where} projects glob {pattern!r} must stay inside the monorepo")
        matches = [path for path in sorted(root.glob(pattern)) if path.is_dir()]
        projects = [path.resolve() for path in matches if is_project_dir(path)]
        if not projects:
            # A typo here would quietly shrink the monorepo, and every check would pass on what is left.
            raise UsageError(
                f"{where}: projects glob {pattern!r} matches no project; correct the glob or remove it"
            )
        found.update(projects)
    return sorted(found), warnings


def _string(entry: Mapping[str, Any], key: str, label: str, *, required: bool = False) -> str | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise ProjectError(f"{label} has no {key!r}")
        return None
    if not isinstance(value, str) or not value:
        raise ProjectError(f"{label} {key!r} must be a non-empty string, got {value!r}")
    return str(value)


def _project_at(root: Path, relative: str, label: str, role: str) -> Path:
    path = (root / relative).resolve()
    if not _inside(root, path):
        raise ProjectError(f"{label} {role} {relative!r} is outside the monorepo")
    if not path.exists():
        raise UsageError(f"{label} {role} {relative!r} does not exist; correct the path or remove it")
    if not is_project_dir(path):
        raise ProjectError(f"{label} {role} {relative!r} is not a project (no pyproject.toml with a package_name)")
    return path


def _shared_entry(
    root: Path, config_path: Path, raw: Any, index: int, projects: list[Path]
) -> SharedEntry:
    label = f"{config_path} [[tool.micropkg.shared]] #{index}"
    if not isinstance(raw, Mapping):
        raise ProjectError(f"{label} must be a table")
    unknown = sorted(set(raw) - _SHARED_KEYS)
    if unknown:
        raise ProjectError(f"{label} has unknown key {unknown[0]!r} (known keys: {', '.join(sorted(_SHARED_KEYS))})")
    micropkg = validate_module_path(str(_string(raw, "micropkg", label, required=True)), option=f"{label} micropkg")
    label = f"{label} ({micropkg})"
    raw_source = str(_string(raw, "source", label, required=True))
    git = _git_source(raw_source, micropkg, label) if is_git_location(raw_source) else None
    source = None if git is not None else _project_at(root, raw_source, label, "source")
    alias = _string(raw, "alias", label)
    if alias is not None:
        validate_alias(alias, option=f"{label} alias")
    env = validate_env(_string(raw, "env", label) or "base", option=f"{label} env")
    destination = _string(raw, "destination", label)
    if destination is not None:
        destination = validate_destination_module(destination, option=f"{label} destination")
    else:
        destination = micropkg.rpartition(".")[0] or None

    raw_targets = raw.get("targets")
    if raw_targets is None:
        target_paths = [path for path in projects if path != source]
    else:
        if not isinstance(raw_targets, list) or not all(isinstance(t, str) for t in raw_targets):
            raise ProjectError(f"{label} 'targets' must be a list of project folders")
        target_paths = [_project_at(root, target, label, "target") for target in raw_targets]
        repeated = sorted({t for t in raw_targets if raw_targets.count(t) > 1})
        if repeated:
            raise ProjectError(f"{label} lists target {repeated[0]!r} more than once")
    if not target_paths:
        raise UsageError(
            f"{label}: no project receives it ({'targets is empty' if raw_targets is not None else 'no other project'}"
            "); list a target project in 'targets' or remove the entry"
        )
    if source is not None:
        _check_source(root, source, target_paths, micropkg, label)
    merge = raw.get("merge", False)
    if not isinstance(merge, bool):
        raise ProjectError(f"{label} 'merge' must be true or false, got {merge!r}")
    name = alias or micropkg.rsplit(".", 1)[-1]
    module = f"{destination}.{name}" if destination else name
    targets = tuple(SharedTarget(path, module) for path in target_paths)
    return SharedEntry(micropkg, source, targets, destination, alias, env, index, merge, git)


def _check_source(root: Path, source: Path, target_paths: list[Path], micropkg: str, label: str) -> None:
    """A project folder of the monorepo as a source: not a target of its own, and holding the micro-package.
    (A git source is read when it is synced or checked.)"""
    if source in target_paths:
        raise ProjectError(f"{label}: {source.relative_to(root).as_posix()} is both the source and a target")
    source_project = load_project(source)
    module_dir = source_project.module_dir(micropkg)
    if not (module_dir / "__init__.py").is_file():
        raise UsageError(
            f"{label}: micro-package {micropkg!r} does not exist in {source.relative_to(root).as_posix()} "
            f"({source_project.relative(module_dir)}/__init__.py is missing)"
        )


def load_monorepo(root: Path) -> Monorepo:
    """Read and validate the monorepo declared at ``root``."""
    root = Path(root).resolve()
    config_path = _monorepo_config(root)
    if config_path is None:
        raise ProjectError(f"{root} is not a monorepo root: no pyproject.toml or micropkg.toml with [tool.micropkg.monorepo]")
    document = read_toml(config_path)
    settings = table(document, "tool.micropkg") or {}
    monorepo = settings.get("monorepo", {})
    if not isinstance(monorepo, Mapping):
        raise ProjectError(f"{config_path} [tool.micropkg.monorepo] must be a table")
    projects, warnings = _project_globs(root, config_path, monorepo)
    raw_shared = settings.get("shared", [])
    if not isinstance(raw_shared, list):
        raise ProjectError(f"{config_path}: shared entries must be written as [[tool.micropkg.shared]] tables")
    shared = tuple(_shared_entry(root, config_path, raw, i, projects) for i, raw in enumerate(raw_shared, 1))

    claimed: dict[tuple[Path, str], SharedEntry] = {}
    for entry in shared:
        for target in entry.targets:
            key = (target.project, target.module)
            if key in claimed:
                raise ProjectError(
                    f"{config_path}: {target.project.relative_to(root).as_posix()} module {target.module!r} "
                    f"is claimed by shared entries #{claimed[key].index} and #{entry.index}"
                )
            claimed[key] = entry
    return Monorepo(root, config_path, tuple(projects), shared, settings, tuple(warnings))


def select_shared(monorepo: Monorepo, only: str | None) -> tuple[SharedEntry, ...]:
    """``--only NAME`` keeps entries whose micro-package path, last part or alias is NAME."""
    if not only:
        return monorepo.shared
    chosen = tuple(
        e for e in monorepo.shared if only in {e.micropkg, e.micropkg.rsplit(".", 1)[-1], e.alias}
    )
    if not chosen:
        names = ", ".join(sorted({e.micropkg for e in monorepo.shared})) or "none"
        raise UsageError(f"--only {only!r} matches no shared micro-package (shared: {names})")
    return chosen


def load_projects(monorepo: Monorepo) -> dict[Path, Project]:
    return {path: load_project(path) for path in monorepo.projects}
