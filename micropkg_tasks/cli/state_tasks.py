"""The tasks that look at and look after installed copies: status, check, recover, accept,
affected and remove (see collection.py for the collection)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invoke import task
from invoke.exceptions import Exit

from micropkg_tasks.cli import github, report
from micropkg_tasks.cli.arguments import ShortFlagTask
from micropkg_tasks.cli.options import cli_path, not_an_option, number, one_project_only, scope
from micropkg_tasks.cli.output import print_json, reports_errors
from micropkg_tasks.cli.task_help import (
    JSON_HELP,
    MONOREPO_HELP,
    PROJECT_HELP,
    ROOT_HELP,
    VERBOSITY_HELP,
    VERBOSITY_SHORT,
)
from micropkg_tasks.core.errors import UsageError
from micropkg_tasks.core.project.monorepo import Monorepo
from micropkg_tasks.core.project.project import Project


@task(help={
    "project": PROJECT_HELP,
    "all-projects": "Show every project of the monorepo, even from inside one project.",
    "monorepo": MONOREPO_HELP,
    "json": "Print the status as JSON.",
    "format": github.FORMAT_HELP,
    **VERBOSITY_HELP,
}, klass=ShortFlagTask, short_flags=VERBOSITY_SHORT)
@reports_errors
def status(c, project=None, all_projects=False, monorepo=False, json=False, format=None, quiet=False, verbose=False):
    """List installed micro-packages and their state: in sync, upstream moved, or locally edited."""
    from micropkg_tasks.ops.inspect.monorepo_status import monorepo_status
    from micropkg_tasks.ops.inspect.status import status as project_status

    where = scope(project, all_projects or monorepo, task="status")
    if isinstance(where, Monorepo):
        result: Any = monorepo_status(where.root)
        show = report.monorepo_status
    else:
        result = project_status(where)
        show = report.project_status
    if json:
        print_json(result)
    else:
        show(result)
    github.publish_status(result, format, json=json)


@task(help={
    "project": PROJECT_HELP,
    "all-projects": "Check every project of the monorepo, even from inside one project.",
    "monorepo": MONOREPO_HELP,
    "since": "Only the projects a git change since this ref touches (see affected).",
    "offline": "Do not ask git where the refs of git sources are now: such copies are checked against "
    "their recorded commit and reported as not checked (offline).",
    "json": "Print every copy, its owner and state as JSON.",
    "format": github.FORMAT_HELP,
    **VERBOSITY_HELP,
}, klass=ShortFlagTask, short_flags=VERBOSITY_SHORT)
@reports_errors
def check(c, project=None, all_projects=False, monorepo=False, since=None, json=False, format=None, quiet=False,
          verbose=False, offline=False):
    """The CI gate: every installed copy, whatever brought it in, must be in sync or customised.
    Writes nothing. Exit 0 clean, 1 drift or broken, 3 edited locally."""
    from micropkg_tasks.ops.copies.copy_state import copy_model

    where = scope(project, all_projects or monorepo, task="check")
    result = copy_model(where.root, projects=projects_since(where, since, "check"), offline=offline)
    print_json(result) if json else report.check_result(result)
    github.publish_check(result, format, json=json)
    if result.exit_code:
        raise Exit(code=result.exit_code)


@task(help={
    "project": PROJECT_HELP,
    "all-projects": "Recover every project of the monorepo, even from inside one project.",
    "monorepo": MONOREPO_HELP,
    "json": JSON_HELP,
    **VERBOSITY_HELP,
}, klass=ShortFlagTask, short_flags=VERBOSITY_SHORT)
@reports_errors
def recover(c, project=None, all_projects=False, monorepo=False, json=False, quiet=False, verbose=False):
    """Finish runs that were killed part-way: roll each project back to before (or forward to after) them."""
    from micropkg_tasks.ops.inspect.recover import recover_projects

    where = scope(project, all_projects or monorepo, task="recover")
    if isinstance(where, Monorepo):
        roots = list(where.projects)
        result = recover_projects(
            roots, lock_timeout=number(c, None, "lock_timeout"),
            shown={root: where.relative(root) for root in roots},
        )
    else:
        result = recover_projects([where.root], lock_timeout=number(c, where, "lock_timeout"))
    if json:
        print_json(result)
    else:
        report.recover_result(result)
    if result.exit_code:
        raise Exit(code=result.exit_code)


@task(help={
    "module": "The installed micro-package whose local edits are intended, e.g. pipelines.data_cleaning.",
    "project": PROJECT_HELP,
    "json": JSON_HELP,
    **VERBOSITY_HELP,
}, klass=ShortFlagTask, short_flags=VERBOSITY_SHORT, positional=["module"])
@reports_errors
def accept(c, module=None, project=None, json=False, quiet=False, verbose=False):
    """Record a copy's local edits as intended: it becomes customised, passes check, and merges upstream's changes."""
    from micropkg_tasks.ops.copies.accept import accept as accept_operation

    if not module:
        raise UsageError("accept needs the module of an installed micro-package, such as pipelines.data_cleaning")
    where = one_project_only(scope(project, False, task="accept"), "accept")
    result = accept_operation(where, not_an_option(module), lock_timeout=number(c, where, "lock_timeout"))
    if json:
        print_json(result)
    else:
        report.accept_result(result)


def projects_since(where: Project | Monorepo, since: str | None, task: str) -> list[Path]:
    """The projects a task acts on: every project, or with ``--since`` only the affected ones."""
    if since is None:
        return list(where.projects) if isinstance(where, Monorepo) else [where.root]
    if not isinstance(where, Monorepo):
        raise UsageError(f"{task} --since acts on the monorepo's affected projects; run it at the monorepo root "
                         "without --project")
    from micropkg_tasks.ops.inspect.affected import affected_roots

    return affected_roots(where.root, since)


@task(help={
    "since": "The git ref to compare with, such as HEAD~1 or origin/main (from where it left the branch).",
    "root": ROOT_HELP,
    "json": "Print a list of {project, reasons} for a CI matrix (fromJSON).",
    **VERBOSITY_HELP,
}, klass=ShortFlagTask, short_flags=VERBOSITY_SHORT)
@reports_errors
def affected(c, since=None, root=None, json=False, quiet=False, verbose=False):
    """List the projects a git change touches, with the reason: changed files, or a copy whose source changed."""
    from micropkg_tasks.ops.inspect.affected import affected as affected_operation

    if not since:
        raise UsageError("affected needs --since REF, such as --since HEAD~1 or --since origin/main")
    result = affected_operation(cli_path(root), not_an_option(since))
    print_json(result.projects) if json else report.affected_result(result)


REMOVE_HELP = {
    "module": "Module path of the installed micro-package, as micropkg.lock lists it (e.g. pipelines.x).",
    "force": "Delete files edited since they were installed, and a copy other micro-packages import.",
    "dry-run": "Show what would be deleted and write nothing.",
    "project": PROJECT_HELP,
    "json": JSON_HELP,
}


@task(positional=["module"], help={**REMOVE_HELP, **VERBOSITY_HELP}, klass=ShortFlagTask,
      short_flags=VERBOSITY_SHORT)
@reports_errors
def remove(c, module, force=False, dry_run=False, project=None, json=False, quiet=False, verbose=False):
    """Undo a pull: delete a micro-package's code, tests and parameter files and its lock entry, as one unit."""
    from micropkg_tasks.ops.copies.remove import remove_module

    where = one_project_only(scope(project, False, task="remove"), "remove MODULE")
    result = remove_module(
        where, not_an_option(module), force=force, dry_run=dry_run, lock_timeout=number(c, where, "lock_timeout")
    )
    print_json(result) if json else report.remove_result(result)
