"""Static version resolution for a micro-package.

The version is read from source text with ``ast``; project code is never
imported, so packaging cannot run anything the project contains.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from micropkg_tasks.core.change.bounded import parsing, read_file_bytes
from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.project.project import Project

DEFAULT_VERSION = "0.1"


@dataclass(frozen=True)
class ResolvedVersion:
    version: str
    source: str  # where it came from, in words a user can follow


def read_dunder_version(path: Path) -> tuple[str | None, str | None]:
    """The literal ``__version__`` assigned at the top level of ``path``.

    Returns ``(version, None)``, or ``(None, reason)`` when the file has no
    usable literal (missing file, no assignment, or a computed value).
    """
    try:
        with parsing(str(path), "read its __version__"):
            tree = ast.parse(read_file_bytes(path), filename=str(path))
    except FileNotFoundError:
        return None, "no such file"
    except SyntaxError as exc:
        raise ProjectError(f"{path}:{exc.lineno}: invalid Python syntax ({exc.msg})") from None
    found: tuple[str | None, str | None] = (None, "no __version__")
    # The last top-level assignment wins, as it would when the module is imported.
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if any(isinstance(target, ast.Name) and target.id == "__version__" for target in targets):
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found = (value.value, None)
            else:
                found = (None, f"__version__ at line {node.lineno} is computed, not a string literal")
    return found


def _checked(version: str, where: str) -> str:
    try:
        return str(Version(version))
    except InvalidVersion:
        raise ProjectError(f"{where}: version {version!r} is not a valid PEP 440 version") from None


def resolve_version(project: Project, module_dir: Path) -> tuple[ResolvedVersion, list[str]]:
    """Micro-package ``__version__``, else the project package's, else ``[project] version``, else 0.1.

    Also returns notes about sources that were present but unusable, so the
    user learns why a fallback was taken.
    """
    notes: list[str] = []
    candidates = [
        (module_dir / "__init__.py", "micro-package __version__"),
        (project.package_dir / "__init__.py", "project package __version__"),
    ]
    for path, label in candidates:
        version, reason = read_dunder_version(path)
        shown = project.relative(path)
        if version is not None:
            return ResolvedVersion(_checked(version, shown), f"{label} ({shown})"), notes
        if reason and reason.startswith("__version__"):
            notes.append(f"{shown}: {reason}; falling back")
    if project.project_version is not None:
        shown = project.relative(project.pyproject_path)
        return ResolvedVersion(_checked(project.project_version, shown), f"[project] version ({shown})"), notes
    return ResolvedVersion(DEFAULT_VERSION, "default"), notes
