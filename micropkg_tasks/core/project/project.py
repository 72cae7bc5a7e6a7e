"""The project model: where a Kedro-style project keeps its code, config, tests and requirements.

Everything is read from files; no project code is imported and Kedro does not
need to be installed. Two layouts are supported:

* Kedro 0.19: ``requirements.txt`` and ``tests/`` at the project root;
* Kedro 0.17/0.18: ``<source_dir>/requirements.txt`` and ``<source_dir>/tests/``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from micropkg_tasks.core.change.bounded import MAX_PARSED_BYTES, parsing, read_file_text
from micropkg_tasks.core.errors import NotFoundHereError, ProjectError
from micropkg_tasks.core.project.names import is_identifier

PYPROJECT = "pyproject.toml"
LOCK_FILE = "micropkg.lock"


def read_toml(
    path: Path, *, display: str | None = None, limit: int = MAX_PARSED_BYTES,
    shortcut: Callable[[str], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """Parse a TOML file into plain dicts and lists, turning every failure into one clear sentence.

    ``shortcut`` may read one exact form of the file faster (the lock as the tool writes
    it); it returns None for any other text, which ``tomllib`` then parses.

    Reading uses the standard library's parser: tomlkit keeps every detail of the
    file's style, which only an edit needs, and costs about ten times as much, which
    a no-op sync over a large monorepo (a lock and a pyproject.toml per project) pays."""
    shown = display or str(path)
    try:
        text = read_file_text(path, display=shown, limit=limit)
    except FileNotFoundError:
        raise ProjectError(f"{shown} does not exist") from None
    except UnicodeDecodeError:
        raise ProjectError(f"{shown} is not valid UTF-8") from None
    except OSError as exc:
        raise ProjectError(f"{shown} cannot be read: {exc.strerror}") from None
    if shortcut is not None and (data := shortcut(text)) is not None:
        return data
    try:
        with parsing(shown):
            return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{shown} is not valid TOML: {exc}") from None


def table(document: Mapping[str, Any], dotted: str) -> Mapping[str, Any] | None:
    """The table at a dotted path such as ``tool.kedro``, or None if any level is missing."""
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, Mapping) else None


def _project_table(document: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """Which table names the package: ``[tool.kedro]`` first, then ``[tool.micropkg]``."""
    for name in ("tool.kedro", "tool.micropkg"):
        found = table(document, name)
        if found is not None and "package_name" in found:
            return name, found
    return None


@dataclass(frozen=True)
class Project:
    """A project folder and the paths that matter to micro-packaging."""

    root: Path
    package_name: str
    source_dir: Path
    conf_dir: Path
    tests_dir: Path
    requirements_dir: Path
    legacy_layout: bool
    metadata_table: str
    project_version: str | None
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pyproject_path(self) -> Path:
        return self.root / PYPROJECT

    @property
    def package_dir(self) -> Path:
        return self.source_dir / self.package_name

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def requirements_in(self) -> Path:
        return self.requirements_dir / "requirements.in"

    @property
    def requirements_txt(self) -> Path:
        return self.requirements_dir / "requirements.txt"

    def module_dir(self, module_path: str) -> Path:
        """The folder of a micro-package given its dotted path inside the project package."""
        return self.package_dir.joinpath(*module_path.split("."))

    def module_tests_dir(self, module_path: str) -> Path:
        return self.tests_dir.joinpath(*module_path.split("."))

    def env_dir(self, env: str) -> Path:
        return self.conf_dir / env

    def managed_paths(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What micropkg may change here, relative with slashes: the code, tests and conf
        folders, then the requirements files and ``micropkg.lock``."""
        folders = tuple(self.relative(path) for path in (self.package_dir, self.tests_dir, self.conf_dir))
        files = tuple(self.relative(path) for path in (self.requirements_in, self.requirements_txt, self.lock_path))
        return folders, files

    def relative(self, path: Path) -> str:
        """A path as shown to users and stored in the lock: relative to the root, with slashes."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def is_project_dir(folder: Path) -> bool:
    """True if ``folder`` has a pyproject.toml naming a package (cheap, tolerant check)."""
    pyproject = folder / PYPROJECT
    if not pyproject.is_file():
        return False
    try:
        return _project_table(tomllib.loads(read_file_text(pyproject))) is not None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError, ProjectError, RecursionError, MemoryError):
        # A broken pyproject.toml still marks the folder as the project the
        # user meant; load_project will then report exactly what is wrong.
        return True


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` that is a project."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if is_project_dir(folder):
            return folder
    raise NotFoundHereError(
        f"no project found at or above {start}: expected a {PYPROJECT} with "
        "[tool.kedro] or [tool.micropkg] and a package_name"
    )


def _inside(root: Path, candidate: Path) -> bool:
    try:
        candidate.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _string_setting(found: Mapping[str, Any], key: str, default: str, where: str) -> str:
    value = found.get(key, default)
    if not isinstance(value, str) or not value:
        raise ProjectError(f"{where} key {key!r} must be a non-empty string")
    return str(value)


def _static_project_version(document: Mapping[str, Any]) -> str | None:
    project = table(document, "project")
    if project is None:
        return None
    dynamic = project.get("dynamic", [])
    version = project.get("version")
    if "version" in dynamic or not isinstance(version, str):
        return None
    return str(version)


def load_project(root: Path) -> Project:
    """Read the project whose ``pyproject.toml`` sits in ``root``."""
    root = Path(root).resolve()
    pyproject = root / PYPROJECT
    if not root.is_dir():
        raise ProjectError(f"project folder {root} does not exist")
    if not pyproject.is_file():
        raise ProjectError(f"{root} is not a project: {pyproject} does not exist")
    document = read_toml(pyproject)
    found = _project_table(document)
    if found is None:
        if table(document, "tool.kedro") is not None:
            raise ProjectError(f"{pyproject}: [tool.kedro] has no package_name")
        raise ProjectError(
            f"{pyproject} has no [tool.kedro] or [tool.micropkg] table with a package_name; "
            "is this a project folder?"
        )
    table_name, metadata = found
    where = f"{pyproject} [{table_name}]"
    package_name = metadata["package_name"]
    if not isinstance(package_name, str) or not is_identifier(package_name):
        raise ProjectError(f"{where} package_name {package_name!r} is not a valid Python package name")
    package_name = str(package_name)

    source_dir = root / _string_setting(metadata, "source_dir", "src", where)
    if not _inside(root, source_dir):
        raise ProjectError(f"{where} source_dir {source_dir} is outside the project folder {root}")
    if not (source_dir / package_name).is_dir():
        raise ProjectError(
            f"{pyproject} names package {package_name!r}, but {source_dir / package_name} does not exist"
        )

    settings = table(document, "tool.micropkg") or {}
    conf_dir = root / _string_setting(settings, "conf_source", "conf", f"{pyproject} [tool.micropkg]")
    if not _inside(root, conf_dir):
        raise ProjectError(f"{pyproject} [tool.micropkg] conf_source is outside the project folder {root}")

    legacy = _detect_legacy_layout(root, source_dir)
    return Project(
        root=root,
        package_name=package_name,
        source_dir=source_dir,
        conf_dir=conf_dir,
        tests_dir=(source_dir if legacy else root) / "tests",
        requirements_dir=source_dir if legacy else root,
        legacy_layout=legacy,
        metadata_table=table_name,
        project_version=_static_project_version(document),
        settings=dict(settings),
    )


def _detect_legacy_layout(root: Path, source_dir: Path) -> bool:
    """Kedro 0.17/0.18 kept requirements and tests under ``src/``; 0.19 moved them to the root."""
    root_has = (root / "tests").is_dir() or any(
        (root / name).is_file() for name in ("requirements.txt", "requirements.in")
    )
    source_has = (source_dir / "tests").is_dir() or any(
        (source_dir / name).is_file() for name in ("requirements.txt", "requirements.in")
    )
    return source_has and not root_has


def as_project(project: "Project | str | os.PathLike[str]") -> Project:
    """Operations take a loaded project or a path to one."""
    return project if isinstance(project, Project) else load_project(Path(project))
