"""The Invoke task collection: thin tasks that parse options and call one operation each.

Defaults live in ``ns.configure`` under ``micropkg`` and can be overridden in
``invoke.yaml`` (``micropkg: {jobs: 2}``), by ``INVOKE_MICROPKG_*`` variables,
or per project in ``[tool.micropkg]`` of its ``pyproject.toml``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from invoke import Collection, Program, task
from invoke.exceptions import Exit

from micropkg_tasks.cli import github, report, sync_report
from micropkg_tasks.cli.arguments import NEEDS, PositionalOrFlagTask, ShortFlagTask
from micropkg_tasks.cli.options import (
    DEFAULTS,
    cli_path,
    compile_config,
    fail_on_compile_errors,
    fail_on_merge_conflicts,
    fail_on_refusals,
    not_an_option,
    number,
    one_project_only,
    say_compile_errors,
    scope,
    sdist_limits,
    split_list,
)
from micropkg_tasks.cli.options import (
    jobs as jobs_setting,
)
from micropkg_tasks.cli.output import Progress, print_json, reports_errors, warn
from micropkg_tasks.cli.release_tasks import compile_reqs, prerelease
from micropkg_tasks.cli.state_tasks import accept, affected, check, recover, remove, status
from micropkg_tasks.cli.task_help import (
    JSON_HELP,
    KEDRO_SHORT,
    MONOREPO_HELP,
    PROJECT_HELP,
    ROOT_HELP,
    VERBOSITY_HELP,
    VERBOSITY_SHORT,
)
from micropkg_tasks.core.errors import EXIT_INSTALLED_NOT_COMPILED, MicropkgError, UsageError
from micropkg_tasks.core.project.manifest import PackageEntry, PullEntry
from micropkg_tasks.core.project.monorepo import Monorepo, require_monorepo
from micropkg_tasks.core.quantities import option_count

# Each task imports the operation it runs when it runs: a command then loads only
# what it uses, and ``micropkg --help`` or a usage error answers at once.


PACKAGE_HELP = {
    "module": "Dotted module path of the micro-package, e.g. pipelines.data_cleaning; "
    "several as a comma-separated list (a,b,c).",
    "all": "Package every entry of the package manifest in pyproject.toml: [tool.micropkg.package] "
    "(or [tool.kedro.micropkg.package] before Kedro 1.0).",
    "alias": "Package under another name (one module only).",
    "destination": "Folder or fsspec URL to write the sdists to (default: <project>/dist, or each "
    "manifest entry's own with --all).",
    "env": "Config env to take parameters from (default: base).",
    "fs-args": "YAML file of fsspec arguments for a remote destination.",
    "project": PROJECT_HELP,
    "monorepo": MONOREPO_HELP + " Only with --all.",
    "jobs": "Parallel build processes (default: one per core).",
    "mark-micropackages": "Comma-separated module paths to treat as micro-packages too: imports of them are "
    "recorded as dependencies (the manifest's and shared entries' micro-packages always are).",
    "with-deps": "Deprecated name of --mark-micropackages.",
    "json": JSON_HELP,
}


@task(
    klass=PositionalOrFlagTask, positional=["module"], filled_by={"module": "all"},
    help={**PACKAGE_HELP, **VERBOSITY_HELP}, short_flags=KEDRO_SHORT,
)
@reports_errors
def package(
    c, module=None, all=False, alias=None, destination=None, env="base", fs_args=None,
    project=None, monorepo=False, jobs=None, mark_micropackages=None, with_deps=None, json=False, quiet=False,
    verbose=False,
):
    """Package micro-packages as Kedro-compatible sdists (<name>-<version>.tar.gz)."""
    from micropkg_tasks.ops.package.monorepo import package_projects
    from micropkg_tasks.ops.package.package import package_all, package_entries

    if module in HELP_FLAGS:
        return show_task_help("package")
    modules = split_list(module or "")
    if not all and not modules:
        raise UsageError(f"package needs {NEEDS['package']}")
    if all and modules:
        raise UsageError("give a module path (or a comma-separated list) or --all, not both")
    marked = _marked_micropackages(mark_micropackages, with_deps)
    where = scope(project, monorepo, task="package")
    if isinstance(where, Monorepo):
        if not all:
            one_project_only(where, "package MODULE")
        if alias or env != "base":
            raise UsageError("--alias and --env come from the manifest with --all")
        with Progress(enabled=not json) as progress:
            every = package_projects(
                where, jobs=jobs_setting(c, None, jobs),
                destination=cli_path(destination), fs_args=cli_path(fs_args), progress=progress,
            )
        print_json(every) if json else report.package_projects(every)
        if every.failed:
            raise MicropkgError(f"{len(every.failed)} project(s) failed: " + ", ".join(p.project for p in every.failed))
        return
    resolved = where
    workers = jobs_setting(c, resolved, jobs)
    if all:
        if alias or env != "base":
            raise UsageError("--alias and --env come from the manifest with --all")
        with Progress(enabled=not json) as progress:
            batch = package_all(
                resolved, jobs=workers or None, destination=cli_path(destination), fs_args=cli_path(fs_args),
                progress=progress, with_deps=marked,
            )
    else:
        if alias and len(modules) > 1:
            raise UsageError("--alias can only be used when packaging one module")
        entries = [
            PackageEntry(name, alias, cli_path(destination), env, cli_path(fs_args)) for name in modules
        ]
        batch = package_entries(resolved, entries, jobs=workers or None, with_deps=marked)
    if json:
        print_json(batch)
    else:
        report.package_batch(batch)


def _marked_micropackages(mark_micropackages: str | None, with_deps: str | None) -> list[str]:
    """The modules ``--mark-micropackages`` names, or its deprecated name ``--with-deps`` (with a warning:
    on ``pull`` that option fetches dependencies, which is another thing)."""
    if with_deps is None:
        return split_list(mark_micropackages or "")
    if mark_micropackages is not None:
        raise UsageError("give --mark-micropackages only: --with-deps is its deprecated name")
    warn("package --with-deps is deprecated and will be removed: use --mark-micropackages (same meaning)")
    return split_list(with_deps)


PULL_HELP = {
    "location": "Path, fsspec URL, or package spec (name==1.2) of the sdist to pull; or a git source, "
    "git+https://host/org/repo.git@REF#[path/to/project:]pipelines.x (see docs/sources.md).",
    "update": "Git sources: move to the commit the ref names now, instead of the commit micropkg.lock records.",
    "all": "Pull every entry of the pull manifest in pyproject.toml, as one unit: [tool.micropkg.pull] "
    "(or [tool.kedro.micropkg.pull] before Kedro 1.0).",
    "alias": "Install under another name.",
    "destination": "Dotted module path inside the project package to install under, e.g. pipelines.",
    "env": "Config env to install parameters into (default: base).",
    "force": "Overwrite files that micropkg does not own or that were edited.",
    "merge": "Merge local edits with upstream's changes three ways instead of refusing; conflicts are "
    "written with markers (exit 1).",
    "dry-run": "Show the plan (create / update / delete / unchanged / conflict) and write nothing.",
    "diff": "With --dry-run (or alone), also show unified diffs.",
    "fs-args": "YAML file of fsspec arguments for a remote location.",
    "no-cache": "Always download remote sdists, bypassing the local cache.",
    "no-compile": "Do not compile requirements.in into requirements.txt afterwards.",
    "with-deps": "Also fetch micro-packages the sdists import that the project lacks, from next to them "
    "(same folder, bucket, index or sibling project), and install them in the same unit.",
    "project": PROJECT_HELP,
    "monorepo": MONOREPO_HELP + " Only with --all (the same as pull-all).",
    "jobs": "With --monorepo: projects pulled in parallel (default: one per core).",
    "json": JSON_HELP,
}


@task(
    klass=PositionalOrFlagTask, positional=["location"], filled_by={"location": "all"},
    help={**PULL_HELP, **VERBOSITY_HELP}, short_flags=KEDRO_SHORT,
)
@reports_errors
def pull(
    c, location=None, all=False, alias=None, destination=None, env="base", force=False,
    dry_run=False, diff=False, fs_args=None, no_cache=False, no_compile=False, with_deps=False, project=None,
    monorepo=False, jobs=None, json=False, quiet=False, verbose=False, merge=False, update=False,
):
    """Install micro-package sdists into the project, safely and as one unit."""
    from micropkg_tasks.ops.pull.pull import pull_all as pull_manifest
    from micropkg_tasks.ops.pull.pull import pull_batch

    if location in HELP_FLAGS:
        return show_task_help("pull")
    if not all and not location:
        raise UsageError(f"pull needs {NEEDS['pull']}")
    if all and location:
        raise UsageError("give a location or --all, not both")
    where = scope(project, monorepo, task="pull")
    if isinstance(where, Monorepo):
        if not all:
            one_project_only(where, "pull LOCATION")
        if alias or destination or env != "base" or fs_args or merge:
            raise UsageError(
                "--alias, --destination, --env and --fs-args come from the manifest with --all, and --merge "
                "needs one project; give --project DIR"
            )
        return _pull_every_project(
            c, where, force=force, dry_run=dry_run, diff=diff, no_cache=no_cache, no_compile=no_compile, jobs=jobs,
            json=json, with_deps=with_deps,
        )
    resolved = where
    limits = sdist_limits(c, resolved)
    timeout = number(c, resolved, "lock_timeout")
    if location:
        not_an_option(location)
    if all:
        if alias or destination or env != "base" or fs_args:
            raise UsageError("--alias, --destination, --env and --fs-args come from the manifest with --all")
        batch = pull_manifest(
            resolved, force=force, dry_run=dry_run, diff=diff, limits=limits, lock_timeout=timeout,
            use_cache=not no_cache, recompile=not no_compile, compile_config=compile_config(c), merge=merge,
            with_deps=with_deps, update=update,
        )
    else:
        entry = PullEntry(location, alias, destination, env, cli_path(fs_args))
        batch = pull_batch(
            resolved, [entry], force=force, dry_run=dry_run, diff=diff, limits=limits, lock_timeout=timeout,
            base=Path.cwd(), use_cache=not no_cache, recompile=not no_compile, compile_config=compile_config(c),
            merge=merge, with_deps=with_deps, update=update,
        )
    if json:
        print_json(batch)
    else:
        report.pull_batch(batch, show_files=dry_run or verbose)
        report.compile_outcomes(batch.compiled, verbose=verbose)
    fail_on_compile_errors(batch.compiled, installed=True, name_projects=False)
    fail_on_merge_conflicts(batch.merge_conflicts, dry_run=dry_run)
    fail_on_refusals(batch.refusals, "pull")


SYNC_HELP = {
    "check": "Write nothing; report each target as in sync, upstream moved or locally edited. "
    "Exit 0 in sync, 1 upstream moved, 3 locally edited.",
    "dry-run": "Show what would change and write nothing.",
    "diff": "Also show unified diffs.",
    "force": "Overwrite local edits in targets.",
    "merge": "Merge local edits in targets with upstream's changes three ways; conflicts are written "
    "with markers (exit 1).",
    "only": "Only the shared micro-package with this module path, name or alias.",
    "jobs": "Parallel processes (default: one per core).",
    "root": ROOT_HELP,
    "no-compile": PULL_HELP["no-compile"],
    "json": JSON_HELP,
    "format": github.FORMAT_HELP,
}


@task(help={**SYNC_HELP, **VERBOSITY_HELP}, klass=ShortFlagTask, short_flags=VERBOSITY_SHORT)
@reports_errors
def sync_shared(
    c, check=False, dry_run=False, diff=False, force=False, only=None, jobs=None, root=None, no_compile=False,
    json=False, format=None, quiet=False, verbose=False, merge=False,
):
    """Install every [[tool.micropkg.shared]] micro-package from its source into its targets."""
    from micropkg_tasks.ops.sync.sync import sync_shared as sync_shared_operation

    with Progress(enabled=not json) as progress:
        result = sync_shared_operation(
            cli_path(root), check=check, dry_run=dry_run, diff=diff, force=force, only=only,
            jobs=option_count("jobs", jobs),
            lock_timeout=number(c, None, "lock_timeout"),
            recompile=not no_compile, compile_config=compile_config(c), progress=progress, merge=merge,
        )
    if json:
        print_json(result)
    else:
        sync_report.sync_result(result, verbose_files=dry_run or verbose)
        report.compile_outcomes(result.compiled)
    github.publish_sync(result, format, json=json)
    if result.exit_code == EXIT_INSTALLED_NOT_COMPILED:
        fail_on_compile_errors(result.compiled, installed=True)
    if result.exit_code:
        say_compile_errors(result.compiled)
        raise Exit(code=result.exit_code)


def _pull_every_project(
    c: Any, where: Monorepo, *, force: bool, dry_run: bool, diff: bool, no_cache: bool, no_compile: bool,
    jobs: str | int | None, json: bool, with_deps: bool = False,
) -> None:
    """``pull --all`` at the root and ``pull-all``: every project's manifest, one report."""
    from micropkg_tasks.ops.pull.pull_all import pull_all_projects

    with Progress(enabled=not json) as progress:
        result = pull_all_projects(
            where.root, force=force, dry_run=dry_run, diff=diff, jobs=option_count("jobs", jobs),
            use_cache=not no_cache, lock_timeout=number(c, None, "lock_timeout"),
            recompile=not no_compile, compile_config=compile_config(c), progress=progress, with_deps=with_deps,
        )
    if json:
        print_json(result)
    else:
        report.pull_all_result(result)
        report.compile_outcomes(result.compiled)
    if not result.failed:
        fail_on_compile_errors(result.compiled, installed=True)
    say_compile_errors(result.compiled)
    if result.failed:
        raise MicropkgError(
            f"{len(result.failed)} project(s) failed: " + ", ".join(p.project for p in result.failed)
        )
    fail_on_refusals([r for p in result.projects if p.batch is not None for r in p.batch.refusals], "pull")


PULL_ALL_HELP = {
    key: PULL_HELP[key] for key in ("force", "dry-run", "diff", "no-cache", "no-compile", "with-deps", "json")
}
PULL_ALL_HELP.update({key: SYNC_HELP[key] for key in ("jobs", "root")})


@task(help={**PULL_ALL_HELP, **VERBOSITY_HELP}, klass=ShortFlagTask, short_flags=VERBOSITY_SHORT)
@reports_errors
def pull_all(
    c, force=False, dry_run=False, diff=False, no_cache=False, no_compile=False, jobs=None, root=None, json=False,
    quiet=False, verbose=False, with_deps=False,
):
    """Run pull --all in every project of the monorepo; one failing project does not stop the others."""
    _pull_every_project(
        c, require_monorepo(cli_path(root)), force=force, dry_run=dry_run, diff=diff, no_cache=no_cache,
        no_compile=no_compile, jobs=jobs, json=json, with_deps=with_deps,
    )


HELP_FLAGS = ("-h", "--help")


def show_task_help(name: str) -> None:
    """``package --help``: Invoke hands the flag to the missing positional argument, so the
    task prints its own help, exactly as ``--help package`` would."""
    invoked_as = Path(sys.argv[0]).name
    binary = "micropkg" if invoked_as in ("micropkg", "__main__.py") else "inv[oke]"
    Program(namespace=make_collection(), name=binary, binary=binary).run([binary, "--help", name], exit=False)


def make_collection(*extra_tasks: Any) -> Collection:
    """A fresh collection of the micropkg tasks, plus any of your own, at the top level."""
    collection = Collection(
        package, pull, pull_all, sync_shared, status, check, accept, compile_reqs, prerelease, recover, affected,
        remove,
        *extra_tasks,
    )
    collection.configure({"micropkg": dict(DEFAULTS)})
    return collection


ns = make_collection()
