"""micropkg-tasks: share pipeline code between Kedro-style projects as source.

The composable functions are importable from here; ``tasks`` is the Invoke
collection to add to your own ``tasks.py`` (loaded lazily, so using the
functions never imports Invoke).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from micropkg_tasks._version import __version__
from micropkg_tasks.core.errors import MicropkgError, UsageError

# Where each public name lives. They are imported on first use, so a command that
# needs only some of them (or ``micropkg --help``) does not load them all.
_LAZY = {
    "micropkg_tasks.core.project.project": ("Project", "find_project_root", "load_project"),
    "micropkg_tasks.ops.package.package": ("PackageBatchResult", "PackageResult", "package", "package_all", "package_entries"),
    "micropkg_tasks.ops.pull.pull": ("PullBatchResult", "PullResult", "pull", "pull_all", "pull_batch"),
    "micropkg_tasks.core.requirements.compile_settings": ("CompileSettings", "compile_settings"),
    "micropkg_tasks.ops.compile.compile": ("CompileResult", "compile_requirements", "requirements_current"),
    "micropkg_tasks.ops.inspect.monorepo_status": ("MonorepoStatus", "monorepo_status"),
    "micropkg_tasks.ops.inspect.prerelease": ("CheckResult", "PrereleaseReport", "prerelease"),
    "micropkg_tasks.ops.pull.pull_all": ("PullAllResult", "pull_all_projects"),
    "micropkg_tasks.ops.inspect.status": ("ProjectStatus", "status"),
    "micropkg_tasks.ops.sync.sync": ("SyncResult", "sync_shared"),
}
_HOME = {name: module for module, names in _LAZY.items() for name in names}

if TYPE_CHECKING:
    from micropkg_tasks.core.project.project import Project, find_project_root, load_project
    from micropkg_tasks.core.requirements.compile_settings import CompileSettings, compile_settings
    from micropkg_tasks.ops.compile.compile import CompileResult, compile_requirements, requirements_current
    from micropkg_tasks.ops.inspect.monorepo_status import MonorepoStatus, monorepo_status
    from micropkg_tasks.ops.inspect.prerelease import CheckResult, PrereleaseReport, prerelease
    from micropkg_tasks.ops.inspect.status import ProjectStatus, status
    from micropkg_tasks.ops.package.package import (
        PackageBatchResult,
        PackageResult,
        package,
        package_all,
        package_entries,
    )
    from micropkg_tasks.ops.pull.pull import PullBatchResult, PullResult, pull, pull_all, pull_batch
    from micropkg_tasks.ops.pull.pull_all import PullAllResult, pull_all_projects
    from micropkg_tasks.ops.sync.sync import SyncResult, sync_shared

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
    if name in _HOME:
        import importlib

        value = getattr(importlib.import_module(_HOME[name]), name)
        globals()[name] = value  # looked up once
        return value
    if name == "tasks":
        from micropkg_tasks.cli.collection import ns

        return ns
    if name == "make_collection":
        from micropkg_tasks.cli.collection import make_collection

        return make_collection
    raise AttributeError(f"module 'micropkg_tasks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
