"""``package --all`` at a monorepo root: every project's package manifest, with one result per project.

A project without a package manifest is skipped and says so; a failing project is
reported and does not stop the others (each project's batch is still all-or-nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.project.manifest import read_package_manifest
from micropkg_tasks.core.project.monorepo import Monorepo
from micropkg_tasks.core.project.project import load_project
from micropkg_tasks.ops.package.package import PackageBatchResult, package_all


@dataclass(frozen=True)
class ProjectPackage:
    project: str  # relative to the monorepo root
    batch: PackageBatchResult | None = None
    error: str = ""
    details: tuple[str, ...] = ()
    skipped: bool = False  # no package manifest


@dataclass(frozen=True)
class MonorepoPackageResult:
    root: str
    projects: tuple[ProjectPackage, ...]

    @property
    def failed(self) -> tuple[ProjectPackage, ...]:
        return tuple(p for p in self.projects if p.error)


def package_projects(
    monorepo: Monorepo,
    *,
    jobs: int | None = None,
    destination: str | None = None,
    fs_args: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> MonorepoPackageResult:
    """``package_all`` in every project that has a package manifest; builds run in parallel inside each."""
    rows = []
    for path in monorepo.projects:
        shown = monorepo.relative(path)
        try:
            project = load_project(path)
            if not read_package_manifest(project):
                rows.append(ProjectPackage(shown, skipped=True))
                continue
            if progress is not None:
                progress(f"packaging {shown}")
            batch = package_all(project, jobs=jobs, destination=destination, fs_args=fs_args)
        except MicropkgError as exc:
            rows.append(ProjectPackage(shown, error=str(exc), details=tuple(exc.details)))
            continue
        rows.append(ProjectPackage(shown, batch=batch))
    return MonorepoPackageResult(str(monorepo.root), tuple(rows))
