"""micropkg-tasks: share pipeline code between Kedro-style projects as source.

The composable functions are importable from here; ``tasks`` is the Invoke
collection to add to your own ``tasks.py`` (loaded lazily, so using the
functions never imports Invoke).
"""

from __future__ import annotations

from typing import Any

from micropkg_tasks._version import __version__
from micropkg_tasks.core.errors import MicropkgError, UsageError
from micropkg_tasks.core.project import Project, find_project_root, load_project
from micropkg_tasks.ops.package import PackageBatchResult, PackageResult, package, package_all, package_entries
from micropkg_tasks.ops.pull import PullBatchResult, PullResult, pull, pull_all, pull_batch
from micropkg_tasks.core.compile_settings import CompileSettings, compile_settings
from micropkg_tasks.ops.compile import CompileResult, compile_requirements, requirements_current
from micropkg_tasks.ops.monorepo_status import MonorepoStatus, monorepo_status
from micropkg_tasks.ops.prerelease import CheckResult, PrereleaseReport, prerelease
from micropkg_tasks.ops.pull_all import PullAllResult, pull_all_projects
from micropkg_tasks.ops.status import ProjectStatus, status
from micropkg_tasks.ops.sync import SyncResult, sync_shared

__all__ = [
    "CheckResult",
    "PrereleaseReport",
    "prerelease",
    "CompileResult",
    "CompileSettings",
    "MonorepoStatus",
    "PullAllResult",
    "SyncResult",
    "compile_requirements",
    "compile_settings",
    "monorepo_status",
    "pull_all_projects",
    "requirements_current",
    "sync_shared",
    "MicropkgError",
    "PackageBatchResult",
    "PackageResult",
    "Project",
    "ProjectStatus",
    "PullBatchResult",
    "PullResult",
    "UsageError",
    "__version__",
    "find_project_root",
    "load_project",
    "make_collection",
    "package",
    "package_all",
    "package_entries",
    "pull",
    "pull_all",
    "pull_batch",
    "status",
    "tasks",
]


def __getattr__(name: str) -> Any:
    if name == "tasks":
        from micropkg_tasks.cli.collection import ns

        return ns
    if name == "make_collection":
        from micropkg_tasks.cli.collection import make_collection

        return make_collection
    raise AttributeError(f"module 'micropkg_tasks' has no attribute {name!r}")
