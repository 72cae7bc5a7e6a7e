"""``kedro micropkg package`` and ``kedro micropkg pull`` again, for Kedro 1.x projects.

Kedro 1.0 removed its micro-packaging commands. ``pip install micropkg-tasks[kedro]``
registers this module's ``commands`` group under Kedro's ``kedro.project_commands``
entry point, so inside any Kedro project ``kedro micropkg package ...`` and ``kedro
micropkg pull ...`` take Kedro 0.19's options and run the same ``package`` and
``pull`` tasks as ``micropkg`` and ``invoke`` do, on the project Kedro found.

Only this module imports click and Kedro; nothing else in micropkg-tasks does.
Under Kedro 0.19, which still ships its own ``kedro micropkg``, the group stays
empty and Kedro's command is used.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click
from invoke import Context
from invoke.exceptions import Exit

from micropkg_tasks.cli import collection, task_help


def _kedro_ships_micropkg() -> bool:
    try:
        from kedro import __version__ as kedro_version
    except ImportError:
        return False
    return kedro_version.split(".")[0] == "0"


def _logging_to_stderr() -> None:
    """Send every logging handler that writes to stdout (Kedro's rich handler above all) to stderr
    instead, so that with ``--json`` stdout holds the JSON document alone."""
    loggers = [logging.getLogger()]
    loggers += [item for item in logging.Logger.manager.loggerDict.values() if isinstance(item, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            console = getattr(handler, "console", None)  # rich's handler prints through a console
            if console is not None and getattr(console, "file", None) is sys.stdout:
                handler.console = type(console)(stderr=True)  # type: ignore[attr-defined]
            elif isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)


def _wants_json(argv: list[str]) -> bool:
    """``kedro micropkg ... --json``: Kedro's command-line hooks run (and log) before our command
    does, so this is decided when Kedro loads the plugin."""
    return len(argv) > 1 and "micropkg" in argv[1:3] and "--json" in argv


if _wants_json(sys.argv):
    _logging_to_stderr()


def _run(task: Any, metadata: Any, **options: Any) -> None:
    """Run one of our tasks for the Kedro project in ``metadata``; its errors are already
    printed as one sentence, so only the exit code is passed on."""
    if metadata is None:
        raise click.UsageError("kedro micropkg needs a Kedro project; run it inside one")
    if options.get("json"):
        _logging_to_stderr()  # whatever Kedro set up since the plugin was loaded
    try:
        task(Context(), project=str(metadata.project_path), **options)
    except Exit as exc:
        if exc.message:
            click.echo(exc.message, err=True)
        sys.exit(exc.code)


@click.group(name="micropkg-tasks")
def commands() -> None:
    """Commands that micropkg-tasks adds to Kedro."""


ENV_HELP = "Kedro config env whose parameters are packaged or pulled into (default: base)."
# Kedro 1.x refuses every command when [tool.kedro] holds keys it does not know: its projects keep
# the manifests in [tool.micropkg.*], and these commands exist only under Kedro 1.x.
PACKAGE_ALL_HELP = "Package every entry of [tool.micropkg.package] in pyproject.toml."
PULL_ALL_HELP = "Pull every entry of [tool.micropkg.pull] in pyproject.toml, as one unit."
VERBOSE_HELP = task_help.VERBOSITY_HELP["verbose"]
QUIET_HELP = task_help.VERBOSITY_HELP["quiet"]


if not _kedro_ships_micropkg():

    @commands.group(name="micropkg")
    def micropkg() -> None:
        """Share micro-packages between projects as source: package and pull (micropkg-tasks)."""

    @micropkg.command("package")
    @click.argument("module_path", required=False)
    @click.option("-e", "--env", default="base", help=ENV_HELP)
    @click.option("--alias", default=None, help=collection.PACKAGE_HELP["alias"])
    @click.option("-d", "--destination", default=None, help=collection.PACKAGE_HELP["destination"])
    @click.option("-a", "--all", "all_flag", is_flag=True, help=PACKAGE_ALL_HELP)
    @click.option("--fs-args", default=None, help=collection.PACKAGE_HELP["fs-args"])
    @click.option("-v", "--verbose", is_flag=True, help=VERBOSE_HELP)
    @click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
    @click.option("--json", "as_json", is_flag=True, help=task_help.JSON_HELP)
    @click.pass_obj
    def package(
        metadata: Any, module_path: str | None, env: str, alias: str | None, destination: str | None,
        all_flag: bool, fs_args: str | None, verbose: bool, quiet: bool, as_json: bool,
    ) -> None:
        """Package a micro-package (or --all in the manifest) as an sdist, as kedro micropkg package did."""
        _run(
            collection.package, metadata, module=module_path or "", all=all_flag, alias=alias,
            destination=destination, env=env, fs_args=fs_args, json=as_json, quiet=quiet, verbose=verbose,
        )

    @micropkg.command("pull")
    @click.argument("package_path", required=False)
    @click.option("-a", "--all", "all_flag", is_flag=True, help=PULL_ALL_HELP)
    @click.option("-e", "--env", default="base", help=ENV_HELP)
    @click.option("--alias", default=None, help=collection.PULL_HELP["alias"])
    @click.option("-d", "--destination", default=None, help=collection.PULL_HELP["destination"])
    @click.option("--fs-args", default=None, help=collection.PULL_HELP["fs-args"])
    @click.option("--force", is_flag=True, help=collection.PULL_HELP["force"])
    @click.option("--dry-run", is_flag=True, help=collection.PULL_HELP["dry-run"])
    @click.option("--diff", is_flag=True, help=collection.PULL_HELP["diff"])
    @click.option("--no-cache", is_flag=True, help=collection.PULL_HELP["no-cache"])
    @click.option("--no-compile", is_flag=True, help=collection.PULL_HELP["no-compile"])
    @click.option("-v", "--verbose", is_flag=True, help=VERBOSE_HELP)
    @click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
    @click.option("--json", "as_json", is_flag=True, help=task_help.JSON_HELP)
    @click.pass_obj
    def pull(
        metadata: Any, package_path: str | None, all_flag: bool, env: str, alias: str | None,
        destination: str | None, fs_args: str | None, force: bool, dry_run: bool, diff: bool,
        no_cache: bool, no_compile: bool, verbose: bool, quiet: bool, as_json: bool,
    ) -> None:
        """Pull an sdist (or --all in the manifest) into the project, as kedro micropkg pull did."""
        _run(
            collection.pull, metadata, location=package_path or "", all=all_flag, alias=alias,
            destination=destination, env=env, fs_args=fs_args, force=force, dry_run=dry_run, diff=diff,
            no_cache=no_cache, no_compile=no_compile, json=as_json, quiet=quiet, verbose=verbose,
        )
