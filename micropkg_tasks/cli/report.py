"""Human-readable reports of operation results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from micropkg_tasks.cli.output import err, is_verbose, out, shown_path, warn
from micropkg_tasks.core.change.transaction import CREATE, DELETE, UNCHANGED, UPDATE
from micropkg_tasks.core.merge import KEPT, MERGE_CONFLICT, MERGED
from micropkg_tasks.ops.sources.destinations import OVERWRITTEN

if TYPE_CHECKING:  # the operations are imported by the task that runs one, not by every start-up
    from micropkg_tasks.ops.compile.batch import CompileOutcome
    from micropkg_tasks.ops.copies.accept import AcceptResult
    from micropkg_tasks.ops.copies.copy_state import CopyModel
    from micropkg_tasks.ops.copies.remove import RemoveResult
    from micropkg_tasks.ops.inspect.affected import AffectedResult
    from micropkg_tasks.ops.inspect.monorepo_status import MonorepoStatus
    from micropkg_tasks.ops.inspect.prerelease import PrereleaseReport
    from micropkg_tasks.ops.inspect.recover import RecoverResult
    from micropkg_tasks.ops.inspect.status import ProjectStatus
    from micropkg_tasks.ops.package.monorepo import MonorepoPackageResult
    from micropkg_tasks.ops.package.package import PackageBatchResult, PackageResult
    from micropkg_tasks.ops.pull.pull import PullBatchResult, PullResult
    from micropkg_tasks.ops.pull.pull_all import PullAllResult


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def package_batch(batch: PackageBatchResult) -> None:
    if batch.empty_manifest and not batch.results:
        out(f"nothing to package: {batch.empty_manifest} lists no micro-packages")
    for result in batch.results:
        package_result(result)


def package_result(result: PackageResult) -> None:
    unchanged = " (unchanged: the same bytes were already there)" if result.artifact == UNCHANGED else ""
    out(f"packaged {result.module_path} -> {shown_path(result.path)}{unchanged}")
    out(f"  version {result.version} (from {result.version_source})")
    out(
        f"  {plural(result.code_files, 'code file')}, {plural(result.test_files, 'test file')}, "
        f"{plural(result.config_files, 'parameter file')}, {plural(len(result.requirements), 'requirement')}"
    )
    for reference in result.outside_imports:
        warn(str(reference))
    for message in result.warnings:
        warn(message)
    if result.artifact == OVERWRITTEN:
        warn(f"{shown_path(result.path)} already existed with different bytes and was overwritten")


def _pull_line(result: PullResult) -> str:
    counts = ", ".join(
        f"{result.count(action)} {label}"
        for action, label in (
            (CREATE, "created"), (UPDATE, "updated"), (MERGED, "merged"), (MERGE_CONFLICT, "merged with conflicts"),
            (KEPT, "kept"), (DELETE, "deleted"), (UNCHANGED, "unchanged"),
        )
        if result.count(action)
    )
    verb = "would pull" if result.dry_run else "pulled"
    return f"{verb} {result.location} ({result.name} {result.version}) -> {result.module}: {counts or 'no files'}"


def _per_project(items: Sequence[Any], manifest: str, show_batch: Callable[[Any], None]) -> None:
    """A task run at the root: each project's own report under its name, or why it has none."""
    for item in items:
        if item.skipped:
            out(f"{item.project}: no {manifest} manifest, skipped")
        elif item.error:
            err(f"{item.project}: failed: {item.error}")
            for line in item.details:
                err(f"  {line}")
        elif item.batch is not None:
            out(f"{item.project}:")
            show_batch(item.batch)


def package_projects(result: MonorepoPackageResult) -> None:
    """``package --all`` at the root: each project's sdists under its name, or why it has none."""
    _per_project(result.projects, "package", package_batch)


def _requirement_lines(result: PullResult) -> None:
    """Every requirement added, removed, overlapping or impossible, for every micro-package."""
    if result.requirements_added:
        out(f"  requirements added: {', '.join(result.requirements_added)}")
    if result.requirements_removed:
        out(f"  requirements removed: {', '.join(result.requirements_removed)}")
    for line in result.requirements_overlaps:
        out(f"  requirement overlap: {line}")
    for line in result.requirements_conflicts:
        err(f"  requirement conflict: {line}")


def pull_batch(batch: PullBatchResult, *, show_files: bool) -> None:
    if batch.recovered:
        warn(batch.recovered)
    if batch.empty_manifest and not batch.results:
        out(f"nothing to pull: {batch.empty_manifest} lists no sdists")
        return
    for result in batch.results:
        out(_pull_line(result))
        if result.dependency_of:
            out(f"  installed as a dependency of {result.dependency_of}")
        for item in result.files:
            # Deleted files and what a merge did to local edits are always said, not only with --verbose.
            if show_files or item.action == DELETE or item.action in MERGE_ACTIONS:
                reason = f" ({item.reason})" if item.reason else ""
                out(f"  {item.action:<9} {item.path}{reason}")
        _requirement_lines(result)
        if result.refused:
            err(f"  {'would be refused' if result.dry_run else 'refused'}: {result.refused}")
        for message in result.warnings:
            warn(message)
    if batch.diff:
        out(batch.diff.rstrip("\n"))
    if batch.dry_run:
        # Everything the real pull would refuse, each with its lines (both requirements, both files).
        for refusal in batch.refusals:
            err(f"would stop: {refusal.message}")
            for line in refusal.details:
                err(f"  {line}")
        out("dry run: nothing was written")
    elif batch.unchanged:
        out("already up to date: nothing was written")
    else:
        out(f"wrote {plural(len(batch.changes), 'file')}")


MERGE_ACTIONS = (MERGED, MERGE_CONFLICT, KEPT)  # what --merge did to a file


def project_status(report: ProjectStatus) -> None:
    if report.interrupted:
        warn(report.interrupted)
    for message in report.errors:
        err(message)
    if not report.packages:
        out(f"{shown_path(report.project) or '.'}: no micro-packages installed (no micropkg.lock entries)")
        return
    rows = [("MODULE", "VERSION", "STATE", "SOURCE")]
    rows += [(p.module, p.version, p.state, p.source) for p in report.packages]
    lines = _table_lines(rows)
    for package in report.packages:
        if package.depends_on:
            lines.append(f"  {package.module} depends on {', '.join(package.depends_on)}")
        if package.needed_by:
            lines.append(f"  {package.module} is needed by {', '.join(package.needed_by)}")
        lines.extend(f"  edited:  {path}" for path in package.edited)
        lines.extend(f"  missing: {path}" for path in package.missing)
        lines.extend(f"  conflict markers: {path}" for path in package.conflicted)
    out("\n".join(lines))  # one write (and one pass of the redaction) for the whole report


def _table_lines(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]


def _table(rows: list[tuple[str, ...]]) -> None:
    out("\n".join(_table_lines(rows)))


def pull_all_result(result: PullAllResult) -> None:
    _per_project(result.projects, "pull", lambda batch: pull_batch(batch, show_files=batch.dry_run))


def monorepo_status(report: MonorepoStatus) -> None:
    for message in report.interrupted:
        warn(message)
    for message in report.errors:
        err(message)
    if not report.rows:
        out(f"no micro-packages installed in {plural(len(report.projects), 'project')}")
        return
    rows = [("PROJECT", "MODULE", "VERSION", "STATE", "SOURCE")]
    rows += [(r.project, r.module, r.version, r.state, r.source) for r in report.rows]
    _table(rows)
    for row in report.rows:
        if row.depends_on:
            out(f"  {row.project}: {row.module} depends on {', '.join(row.depends_on)}")
        if row.needed_by:
            out(f"  {row.project}: {row.module} is needed by {', '.join(row.needed_by)}")
        for path in row.edited:
            out(f"  {row.project}: edited: {path}")


def check_result(model: CopyModel) -> None:
    """``check``: every copy with its owner and state, what to do about each finding, and a verdict."""
    for message in model.interrupted:
        warn(message)
    for message in model.errors:
        err(message)
    if model.copies:
        rows = [("PROJECT", "MODULE", "VERSION", "STATE", "OWNER")]
        rows += [(c.project, c.module, c.version, c.state, c.owner or "ad-hoc pull") for c in model.copies]
        _table(rows)
    findings = [c for c in model.copies if c.resolved_by]
    for c in findings:
        detail = f" ({c.detail})" if c.detail else ""
        out(f"{c.project}: {c.module} (from {c.comes_from}): {c.state}{detail}: {c.resolved_by}")
        for path in (*c.edited, *c.missing):
            out(f"  edited: {path}")
    copies = f"{len(model.copies)} {'copy' if len(model.copies) == 1 else 'copies'}"
    if model.exit_code == 0:
        out(f"{copies} in {plural(len(model.projects), 'project')}: every copy is in sync or customised")
    else:
        out(f"{len(findings)} of {copies} need attention"
            + (f"; {plural(len(model.errors), 'configuration error')}" if model.errors else ""))


_COMPILE_WORDS = {
    "skipped-unchanged": "skipped (requirements.in unchanged since the last compile)",
    "disabled": "skipped (compile = false)",
    "no-requirements-in": "skipped (no requirements.in)",
}


def compile_outcomes(outcomes: Sequence[CompileOutcome], *, verbose: bool = False, always: bool = False) -> None:
    """One line per project compiled after a batch (or by compile-reqs), with the pins that moved."""
    for outcome in outcomes:
        if outcome.error:
            err(f"{outcome.project}: compile failed: {outcome.error}")
            for line in outcome.details:
                err(f"  {line}")
            continue
        result = outcome.result
        assert result is not None
        if result.status in _COMPILE_WORDS:
            out(f"{outcome.project}: {result.requirements_txt} {_COMPILE_WORDS[result.status]}")
        else:
            moved = len(result.added) + len(result.removed) + len(result.repinned)
            out(f"{outcome.project}: compiled {result.requirements_txt} in {result.seconds:.1f} s "
                f"({plural(moved, 'pin')} changed)")
            for change in result.added:
                out(f"  + {change.name}=={change.new}")
            for change in result.removed:
                out(f"  - {change.name}=={change.old}")
            for change in result.repinned:
                out(f"  ~ {change.name} {change.old} -> {change.new}")
        if verbose:
            out(f"  command: {' '.join(result.command)}")
            for message in result.warnings:
                warn(message)
    if always and not outcomes:
        out("no projects to compile")


def prerelease_report(result: PrereleaseReport) -> None:
    """The summary table (one row per check per project), then each failure with its reason."""
    if not result.checks:
        out("no projects to check")  # --since REF, and the change touches none
        return
    rows = [("PROJECT", "CHECK", "RESULT", "TIME")]
    for check in result.checks:
        rows.append((check.project, check.check, check.status.upper(), f"{check.seconds:.1f}s"))
    _table(rows)
    for check in result.checks:
        if check.status == "pass" and is_verbose():
            out(f"{check.project}: {check.check}: {check.reason}")
    for check in result.failures:
        err(f"FAIL {check.project}: {check.check}: {check.reason}")
        for line in check.details:
            err(f"  {line}")
    passed = sum(1 for check in result.checks if check.status == "pass")
    out(f"{passed} of {len(result.checks)} checks passed" + ("" if result.ok else "; prerelease failed"))


def accept_result(result: AcceptResult) -> None:
    if result.recovered:
        out(result.recovered)
    if not result.accepted:
        out(f"{result.module}: no local edits to accept")
        return
    for path in result.accepted:
        out(f"  accepted  {path}")
    out(f"{result.module}: {plural(len(result.accepted), 'file')} recorded as intended: the copy is customised")


def recover_result(result: RecoverResult) -> None:
    for message in result.messages:
        out(message)
    for message in result.failed:
        err(message)
    if not result.recovered and not result.failed:
        out(f"nothing to recover in {plural(len(result.projects), 'project')}: no run was interrupted")


def affected_result(result: AffectedResult) -> None:
    """Each affected project with its reasons; a change that affects none says so."""
    for item in result.projects:
        out(item.project)
        for reason in item.reasons:
            out(f"  {reason}")
    if not result.projects:
        out(f"no project is affected by the {plural(len(result.changed), 'changed file')} since {result.since}")


def remove_result(result: RemoveResult) -> None:
    if result.recovered:
        warn(result.recovered)
    out(f"{result.module} {result.version} (from {result.source}): "
        f"{'would remove' if result.dry_run else 'removed'} {plural(len(result.deleted), 'file')}")
    for item in result.files:
        if item.action == DELETE or is_verbose():
            reason = f" ({item.reason})" if item.reason else ""
            out(f"  {item.action:<9} {item.path}{reason}")
    for path in result.left:
        warn(f"{path} was not installed by micropkg and stays")
    if result.dependents:
        warn(f"{', '.join(result.dependents)} import(s) {result.module}, which is no longer installed")
    if result.requirements_kept:
        out(f"requirements it added stay in requirements.in (drop any nothing else needs): "
            f"{', '.join(result.requirements_kept)}")
    if result.lock_deleted:
        out(f"micropkg.lock {'would be' if result.dry_run else 'was'} deleted: nothing else is installed")
    if result.dry_run:
        if result.refused:
            err(f"a real remove would stop: {result.refused}")
        out("dry run: nothing was written")
