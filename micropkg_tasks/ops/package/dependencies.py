"""Package side of micro-package dependencies: which sibling packages are micro-packages,
what a micro-package needs of them, and refusing import cycles.

A package of the project is a micro-package when the package manifest lists it,
when a ``[[tool.micropkg.shared]]`` entry shares it from this project, or when
it is given with ``--mark-micropackages``. An import into one of them is recorded as a
dependency; an import into any other package of the project stays a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

from micropkg_tasks.core.errors import MicropkgError, UsageError
from micropkg_tasks.core.project.manifest import read_package_manifest
from micropkg_tasks.core.project.micropkg_deps import Dependency, Reference, find_cycle, find_references
from micropkg_tasks.core.project.project import Project
from micropkg_tasks.core.project.version import resolve_version
from micropkg_tasks.ops.package.inputs import read_inputs

if TYPE_CHECKING:
    from micropkg_tasks.core.project.monorepo import Monorepo


@dataclass(frozen=True)
class KnownMicropackage:
    module: str
    alias: str | None = None
    env: str = "base"

    @property
    def name(self) -> str:
        return self.alias or self.module.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class MicropackageSet:
    """The micro-packages of one project, and anything worth saying about how they were found.

    A set is found once per run and handed to everything that asks about dependencies, so it
    also keeps what each member imports of the others (``needs``): a long chain of micro-packages
    is then read once per link, not once per link for every link above it.
    """

    members: Mapping[str, KnownMicropackage]
    warnings: tuple[str, ...] = ()
    needs: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)


def _shared_from(project: Project, monorepo: Monorepo | None) -> tuple[list[KnownMicropackage], list[str]]:
    from micropkg_tasks.core.project.monorepo import find_monorepo_root, load_monorepo

    if monorepo is None:
        root = find_monorepo_root(project.root)
        if root is None:
            return [], []
        try:
            monorepo = load_monorepo(root)
        except MicropkgError as exc:
            return [], [f"shared micro-packages of the monorepo at {root} not considered: {exc}"]
    here = project.root.resolve()
    return [
        KnownMicropackage(entry.micropkg, entry.alias, entry.env)
        for entry in monorepo.shared
        if entry.source is not None and Path(entry.source).resolve() == here
    ], []


def micropackages_of(
    project: Project, with_deps: Iterable[str] = (), *, monorepo: Monorepo | None = None
) -> MicropackageSet:
    """The manifest's entries first (their alias and env win), then shared entries, then ``with_deps``.

    ``monorepo`` is the project's monorepo when the caller has loaded it already (default: found
    and loaded here).
    """
    members: dict[str, KnownMicropackage] = {}
    warnings: list[str] = []
    try:
        manifest = read_package_manifest(project)
    except MicropkgError as exc:
        manifest = []
        warnings.append(f"package manifest not considered for micro-package dependencies: {exc}")
    for entry in manifest:
        members.setdefault(entry.module_path, KnownMicropackage(entry.module_path, entry.alias, entry.env))
    shared, shared_warnings = _shared_from(project, monorepo)
    warnings += shared_warnings
    for known in shared:
        members.setdefault(known.module, known)
    for module in with_deps:
        members.setdefault(module, KnownMicropackage(module))
    return MicropackageSet(members, tuple(warnings))


@dataclass(frozen=True)
class DependencyAnalysis:
    dependencies: tuple[Dependency, ...]
    covered_lines: frozenset[tuple[str, int]]  # (shown file, line) whose every project reference is a dependency


def _references(project: Project, module: str, code: Mapping[str, bytes], tests: Mapping[str, bytes],
                known: Iterable[str]) -> list[tuple[str, Reference]]:
    names = tuple(known)
    found = []
    for shown_root, files in ((project.module_dir(module), code), (project.module_tests_dir(module), tests)):
        for ref in find_references(files, project.package_name, names, module):
            found.append((project.relative(shown_root / ref.file), ref))
    return found


def _needs(project: Project, module: str, known: Mapping[str, KnownMicropackage]) -> set[str]:
    member = known[module]
    inputs = read_inputs(project, module, member.alias, member.env, for_distribution=False)
    return {ref.micropkg for _, ref in _references(project, module, inputs.code, inputs.tests, known) if ref.micropkg}


def describe(project: Project, member: KnownMicropackage) -> Dependency:
    """A dependency as recorded in a dependent's sdist: name, version and source hash."""
    inputs = read_inputs(project, member.module, member.alias, member.env, for_distribution=False)
    version, _ = resolve_version(project, inputs.module_dir)
    return Dependency(member.module, member.name, version.version, inputs.digest, project.package_name)


def _graph(
    project: Project, module: str, direct: Iterable[str], micropackages: MicropackageSet
) -> dict[str, frozenset[str]]:
    """What ``module`` and everything it needs, directly or not, import of the other micro-packages;
    refuses a cycle, naming it."""
    known = dict(micropackages.members)
    # What a member needs depends on which packages count as micro-packages: ``module`` is one
    # here even when the set does not list it, and then the set's ``needs`` do not apply.
    needs = micropackages.needs if module in known else {}
    known.setdefault(module, KnownMicropackage(module))
    graph: dict[str, frozenset[str]] = {module: frozenset(direct)}
    pending = list(graph[module])
    while pending:
        current = pending.pop()
        if current in graph:
            continue
        if current not in needs:
            needs[current] = frozenset(_needs(project, current, known))
        graph[current] = needs[current]
        pending.extend(graph[current] - graph.keys())
    cycle = find_cycle(graph, module)
    if cycle:
        raise UsageError(
            f"micro-packages import each other in a cycle ({' -> '.join(cycle)}); "
            "a micro-package cannot depend on one that depends back on it: move what they share into a third one"
        )
    return graph


def closure(project: Project, module: str, code: Mapping[str, bytes], tests: Mapping[str, bytes],
            micropackages: MicropackageSet) -> list[str]:
    """Every micro-package ``module`` needs, directly or not, sorted; refuses a cycle, naming it."""
    known = dict(micropackages.members)
    known.setdefault(module, KnownMicropackage(module))
    direct = {ref.micropkg for _, ref in _references(project, module, code, tests, known) if ref.micropkg}
    return sorted(set(_graph(project, module, direct, micropackages)) - {module})


def analyse(
    project: Project,
    module: str,
    code: Mapping[str, bytes],
    tests: Mapping[str, bytes],
    micropackages: MicropackageSet,
) -> DependencyAnalysis:
    """The dependencies of ``module``; refuses a cycle between micro-packages, naming it."""
    known = dict(micropackages.members)
    known.setdefault(module, KnownMicropackage(module))
    refs = _references(project, module, code, tests, known)
    direct = sorted({ref.micropkg for _, ref in refs if ref.micropkg})
    if not direct:
        return DependencyAnalysis((), frozenset())
    _graph(project, module, direct, micropackages)
    by_line: dict[tuple[str, int], bool] = {}
    for shown, ref in refs:
        key = (shown, ref.line)
        by_line[key] = by_line.get(key, True) and ref.micropkg is not None
    dependencies = tuple(describe(project, known[name]) for name in direct)
    return DependencyAnalysis(dependencies, frozenset(key for key, all_deps in by_line.items() if all_deps))
