"""Dependencies between micro-packages of one project (SPEC §6 "Dependencies").

A micro-package whose code or tests import another micro-package of the same
project depends on it. Packaging records each dependency in the sdist's
``[[tool.micropkg.dependencies]]``; pull looks each one up in the target's
lock and points the references at wherever the target installed it.

Everything here is pure: finding the references (with ``ast``, never by
importing project code), matching them to micro-packages, finding cycles,
and reading and writing the recorded table.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from packaging.version import InvalidVersion, Version

from micropkg_tasks.core.project.names import is_identifier, is_module_path
from micropkg_tasks.core.rewrite.pysource import parse_file_bytes
from micropkg_tasks.core.rewrite.strings import is_within, split_literal


@dataclass(frozen=True)
class Dependency:
    """One micro-package another one needs, as recorded in the sdist."""

    module: str  # module path in the source project, e.g. ``utils.cleaning``
    name: str  # its sdist name, alias applied
    version: str
    sha256: str  # the content hash of its sources, as sync records it
    project: str  # the source project's package name

    @property
    def origin(self) -> str:
        """Source identity: the same for every build of it, whatever it is called."""
        return f"{self.project}#{self.module}"

    def as_table(self) -> dict[str, str]:
        return {"module": self.module, "name": self.name, "version": self.version, "sha256": self.sha256}


@dataclass(frozen=True)
class Reference:
    """A reference into the project package, found in one file of a micro-package."""

    file: str  # path relative to the folder scanned
    line: int
    name: str  # the dotted module it points at
    micropkg: str | None  # the micro-package it falls in, or None for a plain sibling package


def owning_micropackage(name: str, project_package: str, micropackages: Iterable[str]) -> str | None:
    """The micro-package (longest module path) that the dotted ``name`` is in, if any."""
    if not is_within(name, project_package) or name == project_package:
        return None
    below = name[len(project_package) + 1 :]
    best = None
    for module in micropackages:
        if is_within(below, module) and (best is None or len(module) > len(best)):
            best = module
    return best


def find_references(
    files: Mapping[str, bytes], project_package: str, micropackages: Iterable[str], own_module: str
) -> list[Reference]:
    """Every absolute reference into the project package outside ``own_module``.

    ``from pkg.utils import cleaning`` names ``pkg.utils.cleaning`` when that is a
    micro-package. Docstrings are left out, as the rewriter leaves them.
    """
    known = tuple(micropackages)
    own = f"{project_package}.{own_module}"
    found: list[Reference] = []

    def add(relative: str, line: int, name: str) -> None:
        if is_within(name, own) or not is_within(name, project_package):
            return
        found.append(Reference(relative, line, name, owning_micropackage(name, project_package, known)))

    for relative, content in sorted(files.items()):
        if not relative.endswith(".py") or project_package.encode() not in content:
            continue
        parsed = parse_file_bytes(content, relative)
        if parsed is None:
            continue
        docstrings = {
            id(node.value) for node in parsed.nodes() if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        }
        for node in parsed.nodes():
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(relative, node.lineno, alias.name)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if alias.name != "*" and owning_micropackage(full, project_package, known):
                        add(relative, node.lineno, full)
                    else:
                        add(relative, node.lineno, node.module)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                parts = split_literal(node.value)
                if parts is not None and "." in parts[0]:
                    add(relative, node.lineno, parts[0])
    return found


def find_cycle(graph: Mapping[str, Iterable[str]], start: str) -> list[str] | None:
    """A dependency cycle reachable from ``start``, as ``[a, b, a]``; None if there is none."""
    path: list[str] = []
    on_path: set[str] = set()
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_path:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in done:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    return visit(start)


def dependencies_table(dependencies: Sequence[Dependency]) -> list[dict[str, str]]:
    return [dep.as_table() for dep in sorted(dependencies, key=lambda d: d.module)]


def recorded_dependencies(micropkg: Mapping[str, Any], *, source: str) -> list[Dependency]:
    """The dependencies an sdist of ours records; [] for any other sdist.

    Every part is checked before any use, because each ends up in a module path, a file
    name or a location to fetch: the project is a package name, the module a module path,
    the name a package name (an sdist's name is its package's), the version a version.
    Raises ``ValueError`` naming the sdist and the value at fault when the table is malformed.
    """
    raw = micropkg.get("dependencies", [])
    project = micropkg.get("project")
    if not raw:
        return []
    if not isinstance(raw, list) or not isinstance(project, str):
        raise ValueError(f"{source}: [tool.micropkg] dependencies must be a list of tables, with a project name")
    if not is_identifier(project):
        raise ValueError(f"{source}: [tool.micropkg] project {project!r} is not a package name")
    found = []
    for item in raw:
        if not isinstance(item, Mapping) or not all(
            isinstance(item.get(key), str) and item.get(key) for key in ("module", "name", "version", "sha256")
        ):
            raise ValueError(
                f"{source}: every [[tool.micropkg.dependencies]] needs string keys module, name, version and sha256"
            )
        problem = _dependency_problem(item)
        if problem:
            raise ValueError(f"{source}: [[tool.micropkg.dependencies]] {problem}, so the sdist is refused")
        found.append(Dependency(item["module"], item["name"], item["version"], item["sha256"], project))
    return found


def _dependency_problem(item: Mapping[str, str]) -> str | None:
    module, name, version = item["module"], item["name"], item["version"]
    if not is_module_path(module):
        return f"module {module!r} is not a dotted module path"
    if not is_identifier(name):
        return f"name {name!r} (of {module}) is not a package name"
    try:
        Version(version)
    except InvalidVersion:
        return f"version {version!r} (of {module}) is not a version"
    if version != version.strip():
        return f"version {version!r} (of {module}) has spaces around it"
    if not all(ch in "0123456789abcdef" for ch in item["sha256"]):
        return f"sha256 {item['sha256']!r} (of {module}) is not a hex digest"
    return None
