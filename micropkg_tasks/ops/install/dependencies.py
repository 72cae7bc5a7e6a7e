"""Pull side of micro-package dependencies: find where the target has each one, or fetch it.

Each dependency an sdist records is looked up among the sdists of the same
batch and in the target's ``micropkg.lock``: first by source identity
(``<source package>#<module path>``), then by sdist name. Its references are
then pointed at the installed module, whatever destination or alias it has
there. A dependency the target lacks stops the pull before anything is
written, unless ``--with-deps`` fetches it from the same kind of place the
dependent came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Callable, Sequence

from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.lock.lockfile import Lock, read_project_lock
from micropkg_tasks.core.project.micropkg_deps import Dependency, recorded_dependencies
from micropkg_tasks.core.project.project import Project
from micropkg_tasks.core.sdist.read import SdistContents
from micropkg_tasks.core.sdist.write import sdist_filename
from micropkg_tasks.ops.install.item import FetchedFrom, SdistToInstall
from micropkg_tasks.ops.install.plan import install_module
from micropkg_tasks.ops.sources.locations import INDEX, URL


def dependencies_of(sdist: SdistContents) -> list[Dependency]:
    try:
        return recorded_dependencies(sdist.micropkg, source=sdist.source)
    except ValueError as exc:
        raise MicropkgError(str(exc)) from None


def origin_of(sdist: SdistContents) -> str | None:
    project, module = sdist.micropkg.get("project"), sdist.micropkg.get("module")
    return f"{project}#{module}" if isinstance(project, str) and isinstance(module, str) else None


def installed_module(item: SdistToInstall) -> str:
    return install_module(item.destination, item.alias or item.sdist.name)


@dataclass(frozen=True)
class _Copy:
    module: str
    origin: str | None
    name: str
    version: str


def _copies(lock: Lock, items: Sequence[SdistToInstall]) -> list[_Copy]:
    """What the target will have once the batch is in: the batch's own sdists win over the lock."""
    batch = [_Copy(installed_module(i), origin_of(i.sdist), i.sdist.name, i.sdist.version) for i in items]
    modules = {copy.module for copy in batch}
    kept = [
        _Copy(e.module, e.origin, e.name, e.version) for e in lock.entries.values() if e.module not in modules
    ]
    return batch + sorted(kept, key=lambda copy: copy.module)


def find_installed(dependency: Dependency, copies: Sequence[_Copy]) -> _Copy | None:
    for copy in copies:
        if copy.origin == dependency.origin:
            return copy
    for copy in copies:
        if copy.name == dependency.name:
            return copy
    return None


@dataclass
class DependencyResolution:
    """Per batch item: where its dependency references go, what it depends on, and warnings."""

    # (full module path in the source project, installed module in the target) per dependency
    references: list[tuple[tuple[str, str], ...]] = field(default_factory=list)
    depends_on: list[list[str]] = field(default_factory=list)
    warnings: list[list[str]] = field(default_factory=list)
    missing: list[tuple[SdistToInstall, Dependency]] = field(default_factory=list)


def resolve_dependencies(lock: Lock, items: Sequence[SdistToInstall]) -> DependencyResolution:
    copies = _copies(lock, items)
    resolution = DependencyResolution()
    for item in items:
        moves, depends_on, warnings = [], [], []
        for dependency in dependencies_of(item.sdist):
            found = find_installed(dependency, copies)
            if found is None:
                resolution.missing.append((item, dependency))
                continue
            moves.append((f"{dependency.project}.{dependency.module}", found.module))
            depends_on.append(found.module)
            if found.version != dependency.version:
                warnings.append(
                    f"{installed_module(item)} was packaged with {dependency.module} {dependency.version}; "
                    f"this project has it as {found.module} at version {found.version}"
                )
        resolution.references.append(tuple(moves))
        resolution.depends_on.append(sorted(set(depends_on)))
        resolution.warnings.append(warnings)
    return resolution


def sibling_location(location: str, kind: str, dependency: Dependency) -> str:
    """Where a dependency sits next to its dependent: same folder, same bucket prefix, same index
    or the same sibling project."""
    if kind == INDEX:
        return f"{dependency.name}=={dependency.version}"
    if "#" in location and kind != URL:
        return f"{location.split('#', 1)[0]}#{dependency.module}"
    filename = sdist_filename(dependency.name, dependency.version)
    if kind == URL:
        head, _, _ = location.partition("?")
        return f"{head.rsplit('/', 1)[0]}/{filename}"
    parent = PurePosixPath(location.replace("\\", "/")).parent
    return filename if str(parent) == "." else f"{parent}/{filename}"


def install_options(dependency: Dependency) -> tuple[str | None, str | None]:
    """``(destination, alias)`` that install a dependency at its module path in the source project."""
    parent, _, last = dependency.module.rpartition(".")
    return parent or None, (last if last != dependency.name else None)


def fetch_command(dependency: Dependency, location: str) -> str:
    destination, alias = install_options(dependency)
    words = ["micropkg", "pull", location]
    if destination:
        words += ["--destination", destination]
    if alias:
        words += ["--alias", alias]
    return " ".join(words)


def fetch_missing_dependencies(
    project: Project,
    items: Sequence[SdistToInstall],
    fetch: Callable[[str, FetchedFrom], tuple[SdistContents, str, str]],
) -> list[SdistToInstall]:
    """The missing dependencies of ``items`` (and theirs), each fetched from next to its dependent
    (every item says where it was fetched from).

    ``fetch(location, origin)`` returns the checked sdist, its location as the lock records
    it, and its kind. Each dependency is installed at its module path in the source project.
    """
    lock = read_project_lock(project)
    added: list[SdistToInstall] = []
    while True:
        missing = resolve_dependencies(lock, [*items, *added]).missing
        fresh: dict[str, tuple[SdistToInstall, Dependency]] = {}
        for item, dependency in missing:
            fresh.setdefault(dependency.origin, (item, dependency))  # two dependents, one fetch
        if not fresh:
            return added
        for item, dependency in fresh.values():
            origin = item.fetched_from
            if origin is None:
                raise AssertionError(f"{installed_module(item)}: where it was fetched from is not known")
            location = sibling_location(origin.location, origin.kind, dependency)
            try:
                sdist, recorded, kind = fetch(location, origin)
            except MicropkgError as exc:
                raise type(exc)(
                    f"--with-deps: {installed_module(item)} needs micro-package {dependency.module} "
                    f"{dependency.version}, which could not be fetched from {location} ({exc}); nothing was written",
                    details=exc.details,
                ) from None
            fetched_origin = origin_of(sdist)
            if fetched_origin != dependency.origin and (fetched_origin is not None or sdist.name != dependency.name):
                raise MicropkgError(
                    f"--with-deps: {location} holds {sdist.name} ({origin_of(sdist) or 'no recorded origin'}), "
                    f"not micro-package {dependency.module} that {installed_module(item)} needs; nothing was written"
                )
            destination, alias = install_options(dependency)
            added.append(SdistToInstall(
                sdist, recorded, alias, destination, origin.env, dependency_of=installed_module(item),
                fetched_from=FetchedFrom(location, kind, origin.fs_args, origin.env),
            ))


def refuse_missing(
    missing: Sequence[tuple[SdistToInstall, Dependency]],
    hint: Callable[[SdistToInstall, Dependency], str | None],
    verb: str = "pull",
) -> None:
    """Stop with one sentence per missing dependency, naming it, its version and how to fetch it."""
    if not missing:
        return
    details = []
    for item, dependency in missing:
        where = hint(item, dependency)
        fetch = f"fetch it with `{fetch_command(dependency, where)}` or pull again with --with-deps" if where else (
            "install it first"
        )
        details.append(
            f"{installed_module(item)} needs micro-package {dependency.module} {dependency.version} "
            f"(sdist {dependency.name}); {fetch}"
        )
    first = missing[0][1]
    raise MicropkgError(
        f"{verb} refused: the project does not have micro-package {first.module} {first.version}, "
        f"which {installed_module(missing[0][0])} imports; nothing was written",
        details=details,
    )
