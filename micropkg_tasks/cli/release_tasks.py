"""The tasks that get projects ready to release: compile-reqs and prerelease (see collection.py
for the collection)."""

from __future__ import annotations

from invoke import task
from invoke.exceptions import Exit

from micropkg_tasks.cli import github, report
from micropkg_tasks.cli.arguments import ShortFlagTask
from micropkg_tasks.cli.options import compile_config, fail_on_compile_errors, number, scope
from micropkg_tasks.cli.options import jobs as jobs_setting
from micropkg_tasks.cli.output import Progress, is_verbose, print_json, reports_errors, shown_path
from micropkg_tasks.cli.state_tasks import projects_since
from micropkg_tasks.cli.task_help import JSON_HELP, MONOREPO_HELP, PROJECT_HELP, VERBOSITY_HELP, VERBOSITY_SHORT
from micropkg_tasks.core.project.monorepo import Monorepo

COMPILE_HELP = {
    "project": PROJECT_HELP,
    "all-projects": "Compile every project of the monorepo.",
    "monorepo": MONOREPO_HELP,
    "jobs": "Projects compiled in parallel (default: one per core).",
    "upgrade": "Let pip-compile upgrade pins (pip-compile --upgrade).",
    "force": "Compile even if requirements.in has not changed since the last compile.",
    "since": "Only the projects a change since this git ref affects (see affected).",
    "json": JSON_HELP,
}


@task(help={**COMPILE_HELP, **VERBOSITY_HELP}, klass=ShortFlagTask, short_flags=VERBOSITY_SHORT)
@reports_errors
def compile_reqs(
    c, project=None, all_projects=False, monorepo=False, upgrade=False, force=False, jobs=None, since=None,
    json=False, quiet=False, verbose=False,
):
    """Compile requirements.in into requirements.txt with pip-tools (skipped when unchanged)."""
    from micropkg_tasks.ops.compile.batch import compile_projects

    where = scope(project, all_projects or monorepo, task="compile-reqs")
    if isinstance(where, Monorepo):
        roots = projects_since(where, since, "compile-reqs")
        shown = {path: where.relative(path) for path in roots}
    else:
        projects_since(where, since, "compile-reqs")
        roots, shown = [where.root], {where.root: shown_path(str(where.root))}
    with Progress(enabled=not json) as progress:
        outcomes = compile_projects(
            roots, invoke_config=compile_config(c), upgrade=upgrade, force=force,
            lock_timeout=number(c, None, "lock_timeout"), shown=shown,
            jobs=jobs_setting(c, None, jobs), activity=progress,
        )
    if json:
        print_json(outcomes)
    else:
        report.compile_outcomes(outcomes, verbose=is_verbose(), always=True)
    fail_on_compile_errors(outcomes)


PRERELEASE_HELP = {
    "project": "Check only this project (default: every project of the monorepo, or the current project).",
    "monorepo": MONOREPO_HELP,
    "keep-going": "Run every check even after one fails.",
    "json": "Print the report as JSON (the schema is docs/prerelease.schema.json).",
    "junit-xml": "Also write the report as JUnit XML to this file (one test case per project and check).",
    "since": COMPILE_HELP["since"],
    "format": github.FORMAT_HELP,
    **VERBOSITY_HELP,
}


@task(help=PRERELEASE_HELP, klass=ShortFlagTask, short_flags=VERBOSITY_SHORT)
@reports_errors
def prerelease(
    c, project=None, monorepo=False, keep_going=False, json=False, junit_xml=None, since=None, format=None,
    quiet=False, verbose=False,
):
    """Check that every micro-package builds reproducibly, installs, pulls and passes its tests, and nothing drifted."""
    from micropkg_tasks.cli.junit import junit_target, write_junit
    from micropkg_tasks.ops.inspect.prerelease import PrereleaseReport
    from micropkg_tasks.ops.inspect.prerelease import prerelease as prerelease_operation

    junit = str(junit_target(junit_xml)) if junit_xml else None
    github.github_format(format)
    where = scope(project, monorepo, task="prerelease")
    roots, base = projects_since(where, since, "prerelease"), where.root if isinstance(where, Monorepo) else None
    with Progress(enabled=not json) as progress:
        result = prerelease_operation(base, projects=roots, keep_going=keep_going, progress=progress) if roots \
            else PrereleaseReport(str(where.root), ())
    if junit:
        write_junit(result, junit)
    if json:
        print_json(result)
    else:
        report.prerelease_report(result)
    github.publish_prerelease(result, format, json=json)
    if not result.ok:
        raise Exit(code=1)
