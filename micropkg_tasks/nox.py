"""Helpers for a monorepo's ``noxfile.py``: which projects there are, and where each keeps its
compiled requirements, its tests and its source.

Everything is read from the file layout (``[tool.micropkg.monorepo]`` and each project's
``pyproject.toml``); nothing here imports nox, so this module works without the ``nox`` extra::

    import nox
    from micropkg_tasks import nox as micropkg_nox

    HERE = Path(__file__).parent

    @nox.session
    @nox.parametrize("project", micropkg_nox.projects(HERE), ids=micropkg_nox.projects(HERE))
    def tests(session, project):
        session.install("-r", str(micropkg_nox.requirements_file(project, HERE)), "pytest")
        ...

Project arguments are folders relative to the monorepo root (as :func:`projects` returns
them), or any absolute path to a project folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from micropkg_tasks.core.project.monorepo import require_monorepo
from micropkg_tasks.core.project.project import Project, load_project

__all__ = [
    "monorepo_root",
    "project",
    "project_root",
    "projects",
    "requirements_file",
    "source_dir",
    "tests_dir",
]

PathLike = Union[str, "os.PathLike[str]"]


def monorepo_root(start: PathLike = ".") -> Path:
    """The monorepo root at or above ``start`` (a folder or a file in it, e.g. ``__file__``)."""
    folder = Path(start)
    if folder.is_file():
        folder = folder.parent
    return require_monorepo(folder).root


def projects(start: PathLike = ".") -> list[str]:
    """The monorepo's project folders, relative to its root, with slashes, sorted:
    ``["projects/churn", "projects/core", "projects/forecast"]``."""
    folder = Path(start)
    if folder.is_file():
        folder = folder.parent
    monorepo = require_monorepo(folder)
    return sorted(monorepo.relative(path) for path in monorepo.projects)


def project_root(name: PathLike, start: PathLike = ".") -> Path:
    """The absolute folder of a project given as returned by :func:`projects`."""
    path = Path(name)
    if path.is_absolute():
        return path.resolve()
    return (monorepo_root(start) / path).resolve()


def project(name: PathLike, start: PathLike = ".") -> Project:
    """The project's layout (``micropkg_tasks.core.project.project.Project``)."""
    return load_project(project_root(name, start))


def requirements_file(name: PathLike, start: PathLike = ".") -> Path:
    """The project's compiled ``requirements.txt``: at its root (Kedro 0.19) or in its source
    folder (older layouts). It may not exist yet; check with ``.is_file()``."""
    return project(name, start).requirements_txt


def tests_dir(name: PathLike, start: PathLike = ".") -> Path:
    """The project's tests: ``tests/`` at its root, or ``<source_dir>/tests/`` for older layouts."""
    return project(name, start).tests_dir


def source_dir(name: PathLike, start: PathLike = ".") -> Path:
    """The folder holding the project package (``src/``): put it on ``PYTHONPATH`` to import it."""
    return project(name, start).source_dir
