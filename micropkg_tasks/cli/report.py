"""Human-readable reports of operation results."""

from __future__ import annotations

from micropkg_tasks.cli.output import err, out, shown_path, warn
from micropkg_tasks.core.transaction import CONFLICT, CREATE, DELETE, UNCHANGED, UPDATE
from micropkg_tasks.ops.package import PackageResult
from micropkg_tasks.ops.pull import PullBatchResult, PullResult
from micropkg_tasks.ops.status import ProjectStatus


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def package_result(result: PackageResult) -> None:
    out(f"packaged {result.module_path} -> {shown_path(result.path)}")
    out(f"  version {result.version} (from {result.version_source})")
    out(
        f"  {_plural(result.code_files, 'code file')}, {_plural(result.test_files, 'test file')}, "
        f"{_plural(result.config_files, 'parameter file')}, {_plural(len(result.requirements), 'requirement')}"
    )
    for reference in result.outside_imports:
        warn(str(reference))
    for message in result.warnings:
        warn(message)


def _pull_line(result: PullResult) -> str:
    counts = ", ".join(
        f"{result.count(action)} {label}"
        for action, label in ((CREATE, "created"), (UPDATE, "updated"), (DELETE, "deleted"), (UNCHANGED, "unchanged"))
        if result.count(action)
    )
    verb = "would pull" if result.dry_run else "pulled"
    return f"{verb} {result.location} ({result.name} {result.version}) -> {result.module}: {counts or 'no files'}"


def pull_batch(batch: PullBatchResult, *, show_files: bool) -> None:
    for result in batch.results:
        out(_pull_line(result))
        if show_files:
            for item in result.files:
                reason = f" ({item.reason})" if item.reason else ""
                out(f"  {item.action:<9} {item.path}{reason}")
        if result.requirements_added:
            out(f"  requirements added: {', '.join(result.requirements_added)}")
        if result.requirements_removed:
            out(f"  requirements removed: {', '.join(result.requirements_removed)}")
        for message in result.warnings:
            warn(message)
    if batch.diff:
        out(batch.diff.rstrip("\n"))
    conflicts = [item for result in batch.results for item in result.files if item.action == CONFLICT]
    if batch.dry_run:
        if conflicts:
            err(f"{_plural(len(conflicts), 'conflict')}: a real pull would stop (use --force to overwrite)")
        out("dry run: nothing was written")
    elif batch.unchanged:
        out("already up to date: nothing was written")
    else:
        out(f"wrote {_plural(len(batch.changes), 'file')}")


def project_status(report: ProjectStatus) -> None:
    if not report.packages:
        out(f"{shown_path(report.project) or '.'}: no micro-packages installed (no micropkg.lock entries)")
        return
    rows = [("MODULE", "VERSION", "STATE", "SOURCE")]
    rows += [(p.module, p.version, p.state, p.source) for p in report.packages]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        out("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    for package in report.packages:
        for path in package.edited:
            out(f"  edited:  {path}")
        for path in package.missing:
            out(f"  missing: {path}")
