"""Nox sessions for the example monorepo: each project's tests in a session of its own, and
``prerelease`` for the whole monorepo.

    nox -l                              # list the sessions
    nox -s "tests(projects/core)"       # one project's tests
    nox -s tests                        # every project's tests, each in its own virtualenv
    nox -s prerelease -- --keep-going   # the pre-release checks; arguments after -- go to the task

A project's session installs that project's compiled ``requirements.txt`` (``invoke
compile-reqs`` writes it) and pytest, nothing else, and puts the project's source folder on
``PYTHONPATH``. The prerelease session installs micropkg-tasks from ``$MICROPKG_TASKS_SPEC`` when
that is set (``micropkg-tasks==0.4``, a path), else from the repository checkout this example lives
in, else from the package index.

Needs ``pip install "micropkg-tasks[nox]"`` where nox runs: the project list comes from
``micropkg_tasks.nox``, which reads ``[tool.micropkg.monorepo]`` in pyproject.toml.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

from micropkg_tasks import nox as micropkg_nox

HERE = Path(__file__).resolve().parent
PROJECTS = micropkg_nox.projects(HERE)

# The repository checkout this example lives in, if it still does.
CHECKOUT = HERE.parent.parent


def micropkg_tasks_spec() -> str:
    """What the prerelease session installs: $MICROPKG_TASKS_SPEC, else this checkout, else the
    released package."""
    spec = os.environ.get("MICROPKG_TASKS_SPEC")
    if spec:
        return spec
    if (CHECKOUT / "micropkg_tasks" / "__init__.py").is_file():
        return str(CHECKOUT)
    return "micropkg-tasks"


nox.options.sessions = ["tests", "prerelease"]


@nox.session
@nox.parametrize("project", PROJECTS, ids=PROJECTS)
def tests(session: nox.Session, project: str) -> None:
    """Run one project's tests, installed from its compiled requirements.txt."""
    root = micropkg_nox.project_root(project, HERE)
    requirements = micropkg_nox.requirements_file(project, HERE)
    if requirements.is_file():
        session.install("-r", str(requirements), "pytest")
    else:
        session.warn(f"{requirements} does not exist; run `invoke compile-reqs --project {project}`")
        session.install("pytest")
    tests_dir = micropkg_nox.tests_dir(project, HERE)
    session.chdir(root)
    session.run(
        "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests_dir.relative_to(root)),
        *session.posargs,
        env={"PYTHONPATH": str(micropkg_nox.source_dir(project, HERE))},
    )


@nox.session
def prerelease(session: nox.Session) -> None:
    """Run `invoke prerelease` on every project of the monorepo."""
    session.install(micropkg_tasks_spec(), "pytest")
    # The round-trip check imports each micro-package and runs its tests in this virtualenv,
    # so it needs what the projects need.
    for project in PROJECTS:
        requirements = micropkg_nox.requirements_file(project, HERE)
        if requirements.is_file():
            session.install("-r", str(requirements))
    session.chdir(HERE)
    session.run("invoke", "prerelease", *session.posargs)
