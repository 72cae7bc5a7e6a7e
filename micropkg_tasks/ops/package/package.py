"""``package``: turn a micro-package of a project into a Kedro-compatible sdist.

Building happens in memory; the file is written only once everything
succeeded, so a failure never leaves a half-written or stale sdist behind.
``package_all`` builds independent micro-packages in parallel processes.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from micropkg_tasks.core.errors import MicropkgError, UsageError
from micropkg_tasks.core.fs_args import load_fs_args
from micropkg_tasks.core.project.manifest import (
    PACKAGE_TABLES,
    PackageEntry,
    is_url,
    manifest_to_name,
    present_table,
    read_package_manifest,
)
from micropkg_tasks.core.project.project import Project, as_project
from micropkg_tasks.core.rewrite.rewriter import REWRITER_MODULES
from micropkg_tasks.ops.package.build import BuiltSdist, PackageResult, build_package
from micropkg_tasks.ops.package.dependencies import MicropackageSet, micropackages_of
from micropkg_tasks.ops.package.inputs import validated_inputs
from micropkg_tasks.ops.parallel import WorkerPool
from micropkg_tasks.ops.sources.destinations import write_artifact_once


@dataclass(frozen=True)
class PackageBatchResult:
    results: tuple[PackageResult, ...] = ()
    empty_manifest: str = ""  # with --all: the manifest table that was there but listed nothing


def _check_destination(destination: str | None) -> None:
    if destination and not is_url(destination) and Path(destination).exists() and not Path(destination).is_dir():
        raise UsageError(f"destination {destination} is a file, not a folder")


def package(
    project: Project | str | os.PathLike[str],
    module_path: str,
    alias: str | None = None,
    destination: str | os.PathLike[str] | None = None,
    env: str = "base",
    fs_args: str | os.PathLike[str] | None = None,
    with_deps: Sequence[str] = (),
) -> PackageResult:
    """Package one micro-package and write ``<name>-<version>.tar.gz`` to ``destination``.

    ``destination`` is a folder (default ``<project>/dist``) or an fsspec URL. Imports of
    other micro-packages of the project (its manifest, its shared entries, and ``with_deps``)
    are recorded as dependencies.
    """
    resolved = as_project(project)
    target = str(destination) if destination is not None else str(resolved.root / "dist")
    _check_destination(target)
    built = build_package(resolved, module_path, alias, env, micropackages=micropackages_of(resolved, with_deps))
    return _write(target, built, str(fs_args) if fs_args else None)


def _write(target: str, built: BuiltSdist, fs_args: str | None) -> PackageResult:
    """Write the sdist and say whether it was new, replaced different bytes, or was already there."""
    path, state = write_artifact_once(target, built.filename, built.data, fs_args=fs_args)
    return replace(built.result, path=path, artifact=state)


def _build_entry(project: Project, micropackages: MicropackageSet, entry: PackageEntry) -> BuiltSdist:
    return build_package(project, entry.module_path, entry.alias, entry.env, micropackages=micropackages)


def _raise_combined(failures: list[tuple[str, MicropkgError]], what: str) -> None:
    """One failure is re-raised as it is (keeping its exit code); several become one error listing each."""
    if len(failures) == 1:
        raise failures[0][1]
    code_class = UsageError if all(isinstance(exc, UsageError) for _, exc in failures) else MicropkgError
    raise code_class(
        f"{len(failures)} micro-packages {what}; nothing was written",
        details=[f"{module}: {exc}" for module, exc in failures],
    )


def package_entries(
    project: Project | str | os.PathLike[str],
    entries: Sequence[PackageEntry],
    *,
    jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
    with_deps: Sequence[str] = (),
) -> PackageBatchResult:
    """Package several micro-packages; build them in parallel, then write them all.

    Every entry is validated first, and if any fails to build nothing is
    written; each failure is reported.
    """
    resolved = as_project(project)
    with WorkerPool(jobs, len(entries), preload=REWRITER_MODULES) as workers:
        return _package_with(resolved, entries, workers, progress=progress, with_deps=with_deps)


def _package_with(
    resolved: Project,
    entries: Sequence[PackageEntry],
    workers: WorkerPool,
    *,
    progress: Callable[[str], None] | None,
    with_deps: Sequence[str],
) -> PackageBatchResult:
    destinations = [entry.destination or str(resolved.root / "dist") for entry in entries]
    failures: list[tuple[str, MicropkgError]] = []
    for entry, target in zip(entries, destinations):
        try:
            _check_destination(target)
            if entry.fs_args:
                load_fs_args(entry.fs_args)  # a missing or broken file must stop the batch before any write
            validated_inputs(resolved, entry.module_path, entry.alias, entry.env)
        except MicropkgError as exc:
            failures.append((entry.module_path, exc))
    if failures:
        _raise_combined(failures, "cannot be packaged")

    built: list[BuiltSdist] = []
    for entry in entries:
        if progress is not None:
            progress(f"packaging {entry.module_path}")
    micropackages = micropackages_of(resolved, [*with_deps, *(entry.module_path for entry in entries)])
    outcomes = workers.map(functools.partial(_build_entry, resolved, micropackages), entries)
    for entry, outcome in zip(entries, outcomes):
        if isinstance(outcome, MicropkgError):
            failures.append((entry.module_path, outcome))
        else:
            built.append(outcome)
    if failures:
        _raise_combined(failures, "failed to package")

    results = []
    for entry, target, sdist in zip(entries, destinations, built):
        results.append(_write(target, sdist, entry.fs_args))
    return PackageBatchResult(results=tuple(results))


def package_all(
    project: Project | str | os.PathLike[str],
    *,
    jobs: int | None = None,
    destination: str | None = None,
    fs_args: str | None = None,
    progress: Callable[[str], None] | None = None,
    with_deps: Sequence[str] = (),
) -> PackageBatchResult:
    """Package everything listed in the project's package manifest.

    ``destination`` and ``fs_args``, when given, replace every entry's own: one
    command can publish the whole manifest to a bucket.
    """
    resolved = as_project(project)
    entries = read_package_manifest(resolved)
    if destination is not None:
        entries = [replace(entry, destination=destination, fs_args=fs_args or entry.fs_args) for entry in entries]
    elif fs_args is not None:
        entries = [replace(entry, fs_args=fs_args) for entry in entries]
    if not entries:
        table = present_table(resolved, PACKAGE_TABLES)
        if table is not None:
            # Kedro 0.19 treated an empty manifest as "nothing to package", not as a mistake.
            return PackageBatchResult(empty_manifest=f"[{table}] in {resolved.pyproject_path}")
        raise UsageError(
            f"{resolved.pyproject_path} has no [{manifest_to_name(resolved, 'package')}] manifest; "
            "list the micro-packages to package there, or name one on the command line"
        )
    return package_entries(resolved, entries, jobs=jobs, progress=progress, with_deps=with_deps)
