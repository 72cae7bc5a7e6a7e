"""The closure of a shared micro-package: the micro-packages it imports go to its targets too.

Syncing ``pipelines.p0`` into a target also syncs what ``p0`` depends on (and
what those depend on) from the same source project, at the same module path
as in the source, unless a ``[[tool.micropkg.shared]]`` entry for that
dependency already covers that target. Such copies are shared entries like
any other: kept in step and checked by ``--check``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.project.monorepo import Monorepo, SharedEntry, SharedTarget
from micropkg_tasks.core.project.project import Project, load_project
from micropkg_tasks.ops.package.dependencies import MicropackageSet, closure, micropackages_of
from micropkg_tasks.ops.package.inputs import PackageInputs, read_inputs


@dataclass(frozen=True)
class DependencyEntries:
    entries: tuple[SharedEntry, ...]  # one per (source project, dependency), numbered after the real ones
    dependents: dict[tuple[int, Path], tuple[str, ...]]  # (entry index, target) -> modules that need it there
    errors: dict[int, MicropkgError]  # shared entries whose dependencies could not be found (a cycle, say)


def source_micropackages(monorepo: Monorepo, source: Path) -> tuple[Project, MicropackageSet]:
    """A source project and its micro-packages, found with the monorepo already loaded."""
    project = load_project(source)
    return project, micropackages_of(project, monorepo=monorepo)


def _closure(
    source: tuple[Project, MicropackageSet], module: str, inputs: PackageInputs | None
) -> list[tuple[str, str]]:
    """Every micro-package ``module`` needs, directly or not, with its env (cycles are refused).

    Each link is read once per run: the set of micro-packages keeps what each one imports."""
    project, micropackages = source
    if inputs is None:
        member = micropackages.members[module]
        inputs = read_inputs(project, module, member.alias, member.env, for_distribution=False)
    needed = closure(project, module, inputs.code, inputs.tests, micropackages)
    return [(dependency, micropackages.members[dependency].env) for dependency in needed]


def dependency_entries(
    monorepo: Monorepo, entries: Sequence[SharedEntry], inputs: Mapping[int, PackageInputs | MicropkgError]
) -> DependencyEntries:
    """Shared entries for the dependencies of ``entries`` that no real entry brings to a target.

    An entry whose source cannot be read is skipped (its own targets fail on that); one whose
    dependencies cannot be worked out is reported in ``errors``, never stopping the others.
    """
    covered = {(e.source, e.micropkg, t.project) for e in (*monorepo.shared, *entries) for t in e.targets}
    # A git source's dependencies come from the same repository, at the same commit.
    git_of = {entry.source: entry for entry in entries if entry.git is not None}
    wanted: dict[tuple[Path, str], dict[Path, set[str]]] = {}
    envs: dict[tuple[Path, str], str] = {}
    errors: dict[int, MicropkgError] = {}
    sources: dict[Path, tuple[Project, MicropackageSet]] = {}
    for entry in entries:
        own = inputs.get(entry.index)
        if isinstance(own, MicropkgError):
            continue
        try:
            if entry.source not in sources:
                sources[entry.source] = source_micropackages(monorepo, entry.project)
            needed = _closure(sources[entry.source], entry.micropkg, own)
        except MicropkgError as exc:
            errors[entry.index] = exc
            continue
        for dependency, env in needed:
            envs[(entry.source, dependency)] = env
            for target in entry.targets:
                if (entry.source, dependency, target.project) in covered:
                    continue
                needers = wanted.setdefault((entry.source, dependency), {}).setdefault(target.project, set())
                needers.add(target.module)
    made: list[SharedEntry] = []
    dependents: dict[tuple[int, Path], tuple[str, ...]] = {}
    next_index = max((e.index for e in monorepo.shared), default=0) + 1
    for (source, dependency), targets in sorted(wanted.items(), key=lambda item: (str(item[0][0]), item[0][1])):
        made.append(SharedEntry(
            micropkg=dependency,
            source=source,
            targets=tuple(SharedTarget(project, dependency) for project in sorted(targets)),
            destination=dependency.rpartition(".")[0] or None,
            alias=None,
            env=envs[(source, dependency)],
            index=next_index,
            git=git_of[source].git.with_module(dependency) if source in git_of else None,  # type: ignore[union-attr]
            commit=git_of[source].commit if source in git_of else None,
        ))
        for project, needers in targets.items():
            dependents[(next_index, project)] = tuple(sorted(needers))
        next_index += 1
    return DependencyEntries(tuple(made), dependents, errors)


def _read_entry(entry: SharedEntry, alias: str | None) -> PackageInputs | MicropkgError:
    try:
        return read_inputs(load_project(entry.project), entry.micropkg, alias, entry.env, for_distribution=False)
    except MicropkgError as exc:
        return exc


def shared_inputs(
    monorepo: Monorepo, entries: Sequence[SharedEntry], failed: Mapping[int, MicropkgError] | None = None
) -> tuple[dict[int, PackageInputs | MicropkgError], DependencyEntries]:
    """What each of ``entries`` packages, and the entries for the dependencies they bring along,
    with theirs: a source that cannot be read (or is in ``failed`` already) is that entry's
    error, never stopping the others."""
    inputs: dict[int, PackageInputs | MicropkgError] = dict(failed or {})
    for entry in entries:
        if entry.index not in inputs:
            inputs[entry.index] = _read_entry(entry, entry.alias)
    dependencies = dependency_entries(monorepo, entries, inputs)
    inputs.update(dependencies.errors)
    for extra in dependencies.entries:
        inputs[extra.index] = _read_entry(extra, None)
    return inputs, dependencies
