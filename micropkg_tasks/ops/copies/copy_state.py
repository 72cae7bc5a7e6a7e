"""One model of what is installed where: every copy's owner and state, computed here only.

For each project in scope (one project, or every project of a monorepo) this
reads the lock, finds the declaration that brings each copy in (a
``[[tool.micropkg.shared]]`` entry, or a dependency of one, a pull-manifest entry,
or none: an ad-hoc pull), compares the copy with its source, and names its state
with :func:`micropkg_tasks.core.lock.copy_state.copy_state`. ``status`` (in a project and
at the root), ``check``, ``sync-shared --check``, ``pull-all`` and ``prerelease`` all
read this, so the same copy has the same state wherever it is asked about.

It only reads: a journal left by a killed run is reported (``interrupted``), never
rolled back or forward.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from micropkg_tasks.core.change.bounded import read_file_text
from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.git_url import is_git_location, parse_git_location
from micropkg_tasks.core.lock import copy_state as states
from micropkg_tasks.core.lock.lockfile import Lock, LockEntry, read_project_lock
from micropkg_tasks.core.project.manifest import PullEntry, is_url, read_pull_manifest
from micropkg_tasks.core.project.monorepo import Monorepo, find_monorepo_root, load_monorepo, shared_location
from micropkg_tasks.core.project.project import Project, load_project
from micropkg_tasks.core.rewrite.dangling import dangling_imports
from micropkg_tasks.ops.copies.upstream import (
    adhoc_upstream,
    by_digest,
    shared_upstream,
    sibling_digest,
    source_location,
)
from micropkg_tasks.ops.inspect.recover import interrupted_run
from micropkg_tasks.ops.sources.git import git_upstream
from micropkg_tasks.ops.sources.locations import SIBLING, location_kind, source_identity, split_sibling
from micropkg_tasks.ops.sync.dependencies import shared_inputs
from micropkg_tasks.ops.sync.git_entries import local_entries, resolve_git_entries


@dataclass(frozen=True)
class Copy:
    """One installed (or declared but not yet installed) copy of a micro-package."""

    project: str  # relative to the monorepo root, or "." for a project alone
    module: str  # installed dotted path inside the project package
    name: str
    version: str
    source: str  # as the lock records it (or, not installed yet, as it would)
    owner: str  # the declaration that brings it in; "" for an ad-hoc pull
    state: str
    upstream: str  # how the installed copy compares with its source, whatever was edited here
    edited: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    conflicted: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()  # installed micro-packages it imports
    needed_by: tuple[str, ...] = ()  # installed micro-packages that import it
    shared: bool = False  # brought in by a [[tool.micropkg.shared]] entry (or as its dependency)
    micropkg: str = ""  # for a sibling source: its module path there
    source_project: str = ""  # for a sibling source: the project, relative to the monorepo root
    dependency_of: str = ""  # shared only because these shared micro-packages import it
    detail: str = ""  # why, when the state alone does not say (a source that cannot be read)

    @property
    def comes_from(self) -> str:
        """Where the copy comes from, as shown: for a shared copy, where its entry takes it
        from (:func:`shared_location`); else its location."""
        return shared_location(self.source_project, self.micropkg) if self.shared else self.source

    @property
    def resolved_by(self) -> str:
        """The one command (or edit) that brings this copy back to a passing state."""
        if self.state in (states.UPSTREAM_MOVED, states.NOT_INSTALLED):
            if self.shared:
                return "run sync-shared"
            # A pull of a git source keeps to the commit the lock records unless told to move.
            moved_git = self.state == states.UPSTREAM_MOVED and is_git_location(self.source)
            if self.owner:
                return "run pull --all --update" if moved_git else "run pull --all"
            return "pull it again with --update" if moved_git else "pull it again"
        return states.RESOLVED_BY.get(self.state, "")


@dataclass(frozen=True)
class CopyModel:
    root: str  # the monorepo root, or the project
    projects: tuple[str, ...]
    copies: tuple[Copy, ...]
    interrupted: tuple[str, ...] = ()  # one sentence per project a killed run left half-done
    errors: tuple[str, ...] = ()  # configuration errors: two declarations claiming one copy, bad manifests
    warnings: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0 when every copy is in sync or customised; 3 when copies were edited locally; else 1
        (a configuration error, such as two declarations claiming one copy, is 1 too)."""
        code = states.exit_code(copy.state for copy in self.copies)
        return states.EXIT_DRIFT if self.errors and code == states.EXIT_OK else code

    @property
    def clean(self) -> bool:
        return self.exit_code == states.EXIT_OK

    def of_project(self, project: str) -> tuple[Copy, ...]:
        return tuple(copy for copy in self.copies if copy.project == project)


@dataclass(frozen=True)
class _Declaration:
    owner: str
    location: str  # as the target's lock records the source
    upstream_digest: str | MicropkgError | None  # sibling sources: the source's content hash now
    shared: bool = False
    micropkg: str = ""
    source_project: str = ""
    dependency_of: str = ""
    commit: str | None = None  # a git source: the commit its ref names now (None: not asked, offline)


_SDIST_NAME = re.compile(r"^(?P<name>.+?)-[^-]+\.(tar\.gz|tgz)$")


def pulled_name(location: str) -> str | None:
    """The micro-package name a pull-manifest location installs (before any alias)."""
    if is_git_location(location):
        try:
            return parse_git_location(location).module.rsplit(".", 1)[-1]
        except MicropkgError:
            return None
    sibling = split_sibling(location)
    if sibling is not None:
        return sibling[1].rsplit(".", 1)[-1]
    base = location.rstrip("/").rsplit("/", 1)[-1]
    found = _SDIST_NAME.match(base)
    if found:
        return found.group("name").replace("-", "_").replace(".", "_")
    try:
        return canonicalize_name(Requirement(location).name).replace("-", "_")
    except InvalidRequirement:
        return None


def same_source(first: str, second: str, base: Path) -> bool:
    """Whether two locations are one source: a sibling's built sdist in its ``dist/`` and
    ``sibling#module`` are one."""
    def key(location: str) -> tuple[str, str]:
        sibling = split_sibling(location)
        if sibling is not None:
            return os.path.normpath(base / sibling[0]), sibling[1].rsplit(".", 1)[-1]
        if is_git_location(location):
            return "git", source_identity(location, "", base)
        if not is_url(location):
            path = Path(os.path.normpath(base / location))
            if path.parent.name == "dist" and (path.parent.parent / "pyproject.toml").is_file():
                return str(path.parent.parent), pulled_name(location) or ""
        return "sdist", pulled_name(location) or location
    return key(first) == key(second)


def _pull_module(entry: PullEntry) -> str | None:
    name = entry.alias or pulled_name(entry.location)
    if name is None:
        return None
    return f"{entry.destination}.{name}" if entry.destination else name


def _relative_location(location: str, root: Path) -> str:
    """A manifest location as written in the project's pyproject.toml (the manifest reader
    resolves local ones)."""
    sibling = split_sibling(location)
    folder, suffix = (sibling[0], f"#{sibling[1]}") if sibling else (location, "")
    if is_url(location) or not os.path.isabs(folder):
        return location
    return f"{Path(os.path.relpath(os.path.normpath(folder), root)).as_posix()}{suffix}"


def _manifest_declarations(root: Path, shown: str) -> tuple[dict[str, _Declaration], tuple[str, ...]]:
    try:
        entries = read_pull_manifest(load_project(root))
    except MicropkgError as exc:
        return {}, (f"{shown}: {exc}",)
    found: dict[str, _Declaration] = {}
    for entry in entries:
        module = _pull_module(entry)
        if module is None:
            continue
        digest: str | MicropkgError | None = None
        sibling = split_sibling(entry.location)
        if sibling is not None and location_kind(entry.location, root) == SIBLING:
            digest = sibling_digest(root, entry.location, entry.alias, entry.env)
        label = f"{shown}/pyproject.toml pull manifest entry {_relative_location(entry.location, root)!r}"
        found[module] = _Declaration(label, entry.location, digest, micropkg=sibling[1] if sibling else "")
    return found, ()


@dataclass
class _Scope:
    monorepo: Monorepo | None
    roots: list[Path]
    declared: dict[Path, dict[str, _Declaration]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    offline: bool = False  # git sources are not asked where their ref is now

    def shown(self, path: Path) -> str:
        return self.monorepo.relative(path) if self.monorepo is not None else "."


def _shared_declarations(scope: _Scope) -> None:
    monorepo = scope.monorepo
    if monorepo is None:
        return
    wanted = set(scope.roots)
    entries = [e for e in monorepo.shared if any(t.project in wanted for t in e.targets)]
    offline = [e for e in entries if e.git is not None] if scope.offline else []
    # Each git source's ref is resolved once here (offline: not at all, and not read).
    readable, failed = resolve_git_entries(monorepo, local_entries(entries) if scope.offline else entries)
    inputs, closure = shared_inputs(monorepo, readable, failed)
    for entry in (*readable, *closure.entries, *offline):
        found = inputs.get(entry.index)
        digest = found if isinstance(found, MicropkgError) or found is None else found.digest
        if found is not None and not isinstance(found, MicropkgError):
            scope.warnings.extend(found.warnings)
        for target in entry.targets:
            if target.project not in wanted:
                continue
            needed_by = closure.dependents.get((entry.index, target.project), ())
            scope.declared.setdefault(target.project, {})[target.module] = _Declaration(
                entry.label if not needed_by else f"a dependency of {', '.join(needed_by)} (from {entry.label})",
                source_location(entry, target.project), digest, shared=True, micropkg=entry.micropkg,
                source_project=monorepo.source_of(entry), dependency_of=", ".join(needed_by), commit=entry.commit,
            )


def _merge_manifest(scope: _Scope, root: Path) -> None:
    """A pull-manifest entry owns its copy unless a shared entry does; if both name it from
    different sources, that is a configuration error naming both."""
    manifest, errors = _manifest_declarations(root, scope.shown(root))
    scope.errors.extend(errors)
    declared = scope.declared.setdefault(root, {})
    for module, declaration in manifest.items():
        shared = declared.get(module)
        if shared is None:
            declared[module] = declaration
        elif not same_source(shared.location, declaration.location, root):
            scope.errors.append(
                f"{scope.shown(root)}: {module} is claimed by {shared.owner} from {shared.location} and by "
                f"{declaration.owner}: keep one of the two declarations"
            )


def broken_import(project: Project, installed: LockEntry) -> str:
    """One sentence if the installed code imports a module of its source project that this
    project does not have, else "" (the same finder pull and sync-shared refuse with)."""
    if not installed.origin:
        return ""
    package = project.relative(project.package_dir) + "/"
    code = []
    for relative in sorted(installed.files):
        if relative.endswith(".py") and relative.startswith(package):
            try:
                code.append((relative, read_file_text(project.root / relative, display=relative)))
            except (OSError, MicropkgError, UnicodeDecodeError):
                continue  # an unreadable file is a local edit, reported as such
    found = dangling_imports(code, source_package=installed.origin.split("#", 1)[0],
                             target_package=project.package_name, target_package_root=project.package_dir)
    return found[0].sentence(installed.module) if found else ""


def _project_copies(scope: _Scope, root: Path, interrupted: bool) -> list[Copy]:
    shown = scope.shown(root)
    project = load_project(root)
    lock: Lock = read_project_lock(project)  # a lock that cannot be read is refused, naming it
    declared = scope.declared.get(root, {})
    dependents = lock.dependents()
    copies = []
    for module in sorted(set(lock.entries) | set(declared)):
        installed = lock.entries.get(module)
        declaration = declared.get(module)
        local = states.local_facts(root, installed)
        upstream = _upstream_of(root, installed, declaration, scope.offline)
        broken = broken_import(project, installed) if installed is not None and not interrupted else ""
        state = states.copy_state(interrupted=interrupted, local=local, upstream=upstream, broken=bool(broken))
        detail = broken if state == states.BROKEN else ""
        if declaration is not None and isinstance(declaration.upstream_digest, MicropkgError):
            detail = str(declaration.upstream_digest)
        copies.append(Copy(
            project=shown, module=module, name=installed.name if installed else module.rsplit(".", 1)[-1],
            version=installed.version if installed else "-",
            source=installed.source if installed else declaration.location,  # type: ignore[union-attr]
            owner=declaration.owner if declaration else "", state=state, upstream=upstream,
            edited=local.edited, missing=local.missing, conflicted=local.conflicted,
            depends_on=tuple(installed.depends_on) if installed else (), needed_by=dependents.get(module, ()),
            shared=bool(declaration and declaration.shared),
            micropkg=declaration.micropkg if declaration else "",
            source_project=declaration.source_project if declaration else "",
            dependency_of=declaration.dependency_of if declaration else "", detail=detail,
        ))
    return copies


def _upstream_of(root: Path, installed: LockEntry | None, declaration: _Declaration | None,
                 offline: bool = False) -> str:
    """How a copy compares with the source its owner names (or, ad hoc, its own location)."""
    if declaration is None:
        assert installed is not None  # a copy nothing declares is one the lock lists
        if installed.options.get("declared") == "true":
            return states.ORPHANED  # a declaration asked for it once; none does now
        return adhoc_upstream(root, installed, offline)
    if declaration.shared:
        return shared_upstream(declaration.location, root, installed, declaration.upstream_digest, declaration.commit)
    if installed is None:
        return states.NOT_INSTALLED
    return _manifest_upstream(root, installed, declaration, offline)


def _manifest_upstream(root: Path, installed: LockEntry, declaration: _Declaration, offline: bool) -> str:
    if not same_source(installed.source, declaration.location, root):
        return states.OTHER_SOURCE
    if is_git_location(declaration.location):
        return git_upstream(declaration.location, installed, offline=offline, project=load_project(root))
    if declaration.upstream_digest is not None:
        return by_digest(installed, declaration.upstream_digest)
    return adhoc_upstream(root, installed)


def copy_model(
    start: Path | str | os.PathLike[str] | None = None,
    *,
    projects: Sequence[Path] | None = None,
    monorepo: Monorepo | None = None,
    offline: bool = False,
) -> CopyModel:
    """The model for ``projects`` (default: every project of the monorepo ``start`` is in, or
    the one project ``start`` is). A project inside a monorepo is always seen with the
    monorepo's shared entries, so its copies get the same states as at the root.
    ``offline``: git sources are not asked where their ref is now (``not checked (offline)``)."""
    if monorepo is None:
        found = find_monorepo_root(Path(start) if start is not None else Path.cwd())
        monorepo = load_monorepo(found) if found is not None else None
    if projects is None:
        if monorepo is None:
            raise MicropkgError("copy_model needs a monorepo or a list of projects")
        projects = monorepo.projects
    roots = [Path(p).resolve() for p in projects]
    scope = _Scope(monorepo, roots, offline=offline)
    if monorepo is not None:
        scope.warnings.extend(monorepo.warnings)
    _shared_declarations(scope)
    copies: list[Copy] = []
    interrupted: list[str] = []
    for root in roots:
        message = interrupted_run(root)  # reads only: never rolled back or forward here
        if message:
            interrupted.append(message)
        _merge_manifest(scope, root)
        copies.extend(_project_copies(scope, root, bool(message)))
    base = monorepo.root if monorepo is not None else roots[0]
    return CopyModel(
        str(base), tuple(scope.shown(r) for r in roots), tuple(copies), tuple(interrupted),
        tuple(scope.errors), tuple(dict.fromkeys(scope.warnings)),
    )
