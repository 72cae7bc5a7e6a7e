"""``--format github``: findings as GitHub Actions workflow commands, and a step summary.

Each finding becomes one line such as ``::error file=projects/churn/src/churn/x.py,line=1,title=…::…``,
so the runner shows it on the pull request at the file at fault. Paths are relative to the
root of the git repository (the monorepo root outside one). When ``$GITHUB_STEP_SUMMARY``
names a file, a Markdown table of states is appended to it.

The format is chosen by ``--format github``, or automatically when ``GITHUB_ACTIONS=true``
(``--format text`` turns it off there).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from micropkg_tasks.core.errors import UsageError
from micropkg_tasks.core.git_url import is_git_location
from micropkg_tasks.core.lock.copy_state import PASSING as PASSING_STATES
from micropkg_tasks.core.project.monorepo import shared_location
from micropkg_tasks.core.redaction import redact_text

if TYPE_CHECKING:
    from micropkg_tasks.ops.copies.copy_state import CopyModel
    from micropkg_tasks.ops.inspect.monorepo_status import MonorepoStatus
    from micropkg_tasks.ops.inspect.prerelease import PrereleaseReport
    from micropkg_tasks.ops.inspect.status import ProjectStatus
    from micropkg_tasks.ops.sync.results import SyncResult, TargetState, TargetSync

FORMATS = ("text", "github")
FORMAT_HELP = "Output format: text, or github for workflow-command annotations and a step summary " \
    "(the default when GITHUB_ACTIONS=true)."


@dataclass(frozen=True)
class Finding:
    level: str  # "error" or "warning"
    file: Path  # absolute
    title: str
    message: str
    line: int = 1  # the whole file: its first line


def github_format(value: str | None) -> bool:
    """Whether findings go out as annotations: ``--format``, else the ``GITHUB_ACTIONS`` variable."""
    if value is None:
        return os.environ.get("GITHUB_ACTIONS", "").lower() == "true"
    if value not in FORMATS:
        raise UsageError(f"--format takes {' or '.join(FORMATS)}, not {value!r}")
    return value == "github"


def escape_data(text: str) -> str:
    """A workflow command's message: ``%``, CR and LF are percent-encoded."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: also ``:`` and ``,``, which separate properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(finding: Finding, base: Path) -> str:
    shown = Path(os.path.relpath(finding.file, base)).as_posix()
    properties = {"file": shown, "line": str(finding.line), "title": finding.title}
    joined = ",".join(f"{key}={escape_property(redact_text(value))}" for key, value in properties.items())
    return f"::{finding.level} {joined}::{escape_data(redact_text(finding.message))}"


def annotation_base(folder: Path) -> Path:
    """Paths in annotations are relative to the git repository's root, else to ``folder``."""
    from micropkg_tasks.ops.inspect.git_changes import repository_root

    return repository_root(folder) or folder.resolve()


def emit(findings: Iterable[Finding], folder: Path, *, to_stderr: bool = False) -> None:
    """Print each finding as a workflow command (on stderr when stdout carries JSON: the runner reads both)."""
    base = annotation_base(folder)
    stream = sys.stderr if to_stderr else sys.stdout
    for finding in findings:
        print(workflow_command(finding, base), file=stream, flush=True)


def _cell(text: str) -> str:
    return redact_text(text).replace("|", "\\|").replace("\r", " ").replace("\n", " ") or " "


def markdown_table(title: str, header: Sequence[str], rows: Iterable[Sequence[str]], verdict: str) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join([*lines, "", verdict, "", ""])


def write_summary(markdown: str) -> None:
    """Append to the file ``$GITHUB_STEP_SUMMARY`` names, when it names one."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    with open(target, "a", encoding="utf-8") as summary:
        summary.write(markdown)


# -- findings of each report ------------------------------------------------------------------


def _source_file(root: Path, source: str, micropkg: str) -> Path:
    """The upstream side of a moved copy: the source micro-package's ``__init__.py``."""
    from micropkg_tasks.core.errors import MicropkgError
    from micropkg_tasks.core.project.project import load_project

    try:
        return load_project(root / source).module_dir(micropkg) / "__init__.py"
    except MicropkgError:
        return root / source / "pyproject.toml"


def _upstream_files(root: Path, target: TargetSync, state: TargetState) -> list[Path]:
    """The source files whose change moved a copy: each file the check would update or create in the
    target, traced back to the source micro-package (code and tests); else the source's ``__init__.py``."""
    from micropkg_tasks.core.errors import MicropkgError
    from micropkg_tasks.core.project.project import load_project

    try:
        copy, source = load_project(root / state.project), load_project(root / state.source)
    except MicropkgError:
        return [_source_file(root, state.source, state.micropkg)]
    folders = (
        (copy.module_dir(state.module), source.module_dir(state.micropkg)),
        (copy.module_tests_dir(state.module), source.module_tests_dir(state.micropkg)),
    )
    found = []
    for planned in target.files:
        path = copy.root / planned.path
        for installed, upstream in folders:
            if installed in path.parents and (upstream / path.relative_to(installed)).is_file():
                found.append(upstream / path.relative_to(installed))
                break
    return found or [_source_file(root, state.source, state.micropkg)]


def sync_findings(result: SyncResult) -> list[Finding]:
    from micropkg_tasks.core.lock.copy_state import (
        CONFLICTED,
        IN_SYNC,
        LOCALLY_EDITED,
        NOT_INSTALLED,
        SOURCE_MISSING,
        UPSTREAM_MOVED,
    )

    root = Path(result.root)
    found = []
    for target in result.targets:
        for state in target.states:
            if state.state == IN_SYNC:
                continue
            copy = f"{state.project}: {state.module} (from {shared_location(state.source, state.micropkg)})"
            title = f"micropkg: {state.state}"
            if state.state in (LOCALLY_EDITED, CONFLICTED) and state.edited:
                found += [
                    Finding("error", root / state.project / path, title,
                            f"{copy} is {state.state}: this file differs from what sync-shared installed; "
                            "undo the edit, move it upstream, or run sync-shared --merge")
                    for path in state.edited
                ]
            elif state.state == UPSTREAM_MOVED:
                # A source in another repository has no file here to point at: the target's lock names it.
                at_fault = ([root / state.project / "micropkg.lock"] if is_git_location(state.source)
                            else _upstream_files(root, target, state))
                found += [
                    Finding("error", path, title, f"{copy}: upstream moved; run sync-shared to update the copy")
                    for path in at_fault
                ]
            elif state.state in (NOT_INSTALLED, SOURCE_MISSING):
                found.append(Finding("error", root / "pyproject.toml", title, f"{copy}: {state.state}; run sync-shared"))
            else:
                found.append(Finding("error", root / state.project / "micropkg.lock", title, f"{copy}: {state.state}"))
        if target.outcome == "failed" and target.error:
            found.append(Finding("error", root / target.project / "micropkg.lock", "micropkg: failed",
                                 f"{target.project}: {target.error}"))
    return found


def sync_summary(result: SyncResult) -> str:
    rows = [
        (s.project, s.module, shared_location(s.source, s.micropkg), s.state) for t in result.targets for s in t.states
    ]
    verdict = {0: "Everything is in sync.", 1: "Upstream moved: run `sync-shared`.", 3: "Targets were edited locally."}
    return markdown_table("micropkg sync-shared --check", ("Project", "Copy", "Source", "State"), rows,
                          verdict.get(result.exit_code, "Some copies could not be checked."))


def _status_finding(root: Path, project: str, module: str, source: str, state: str, edited: Sequence[str],
                    level: str = "warning") -> list[Finding]:
    from micropkg_tasks.ops.sources.locations import split_sibling

    title = f"micropkg: {state}"
    message = f"{project}: {module} (from {source}) is {state}"
    if edited:
        return [Finding(level, root / project / path, title, message) for path in edited]
    sibling = split_sibling(source)
    if state == "upstream moved" and sibling is not None:
        source_root = Path(os.path.normpath(root / project / sibling[0]))
        return [Finding(level, _source_file(source_root, ".", sibling[1]), title, message)]
    return [Finding(level, root / project / "micropkg.lock", title, message)]


def monorepo_status_findings(report: MonorepoStatus) -> list[Finding]:
    root = Path(report.root)
    return [
        finding for row in report.rows if row.state not in PASSING_STATES
        for finding in _status_finding(root, row.project, row.module, row.source, row.state, row.edited)
    ]


def project_status_findings(report: ProjectStatus) -> list[Finding]:
    root = Path(report.project)
    return [
        finding for p in report.packages if p.state not in PASSING_STATES
        for finding in _status_finding(root, ".", p.module, p.source, p.state, (*p.edited, *p.missing))
    ]


def status_summary(rows: Iterable[Sequence[str]]) -> str:
    return markdown_table("micropkg status", ("Project", "Copy", "Version", "State", "Source"), rows, "")


def _check_file(folder: Path, check: str) -> Path:
    """The file a failing prerelease check is about: requirements.in, the lock, or the project's pyproject.toml."""
    from micropkg_tasks.core.errors import MicropkgError
    from micropkg_tasks.core.project.project import load_project

    try:
        project = load_project(folder)
    except MicropkgError:
        return folder / "pyproject.toml"
    if check == "requirements current":
        return project.requirements_in
    return project.lock_path if check in ("in sync", "lock clean") else project.pyproject_path


def prerelease_findings(result: PrereleaseReport) -> list[Finding]:
    root = Path(result.root)
    return [
        Finding("error", _check_file(root / check.project, check.check), f"micropkg prerelease: {check.check}",
                "\n".join((f"{check.project}: {check.reason}", *check.details)))
        for check in result.failures
    ]


def prerelease_summary(result: PrereleaseReport) -> str:
    rows = [(c.project, c.check, c.status.upper(), c.reason) for c in result.checks]
    passed = sum(1 for c in result.checks if c.status == "pass")
    return markdown_table("micropkg prerelease", ("Project", "Check", "Result", "Detail"), rows,
                          f"{passed} of {len(result.checks)} checks passed.")


# -- what each task calls after its own report ----------------------------------------------------


def publish_sync(result: SyncResult, fmt: str | None, *, json: bool) -> None:
    if github_format(fmt) and result.check:
        emit(sync_findings(result), Path(result.root), to_stderr=json)
        write_summary(sync_summary(result))


def publish_status(result: MonorepoStatus | ProjectStatus, fmt: str | None, *, json: bool) -> None:
    if not github_format(fmt):
        return
    from micropkg_tasks.ops.inspect.monorepo_status import MonorepoStatus

    if isinstance(result, MonorepoStatus):
        findings, folder = monorepo_status_findings(result), Path(result.root)
        rows = [(r.project, r.module, r.version, r.state, r.source) for r in result.rows]
    else:
        findings, folder = project_status_findings(result), Path(result.project)
        rows = [(".", p.module, p.version, p.state, p.source) for p in result.packages]
    emit(findings, folder, to_stderr=json)
    write_summary(status_summary(rows))


def publish_check(result: CopyModel, fmt: str | None, *, json: bool) -> None:
    """``check``: one annotation per copy that needs attention, at the file at fault, and the table."""
    if not github_format(fmt):
        return
    root = Path(result.root)
    findings = [
        finding for c in result.copies if c.resolved_by
        for finding in _status_finding(root, c.project, c.module, c.source, c.state, (*c.edited, *c.missing), "error")
    ]
    emit(findings, root, to_stderr=json)
    rows = [(c.project, c.module, c.version, c.state, c.source) for c in result.copies]
    verdict = "Every copy is in sync or customised." if result.clean else "Some copies need attention."
    write_summary(markdown_table("micropkg check", ("Project", "Copy", "Version", "State", "Source"), rows, verdict))


def publish_prerelease(result: PrereleaseReport, fmt: str | None, *, json: bool) -> None:
    if github_format(fmt):
        emit(prerelease_findings(result), Path(result.root), to_stderr=json)
        write_summary(prerelease_summary(result))
