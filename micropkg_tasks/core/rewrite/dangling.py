"""Imports an installed copy cannot satisfy: modules of its source project the target lacks.

A micro-package whose ``nodes.py`` does ``from core.utils import x`` while ``utils``
is no micro-package of ``core`` carries that import unchanged into every target,
where ``core`` does not exist. This finds such imports with the same finder that
packaging uses to warn about references outside a micro-package
(:func:`micropkg_tasks.core.rewrite.rewriter.rewrite_module`, with no moves).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.rewrite.rewriter import rewrite_module


@dataclass(frozen=True)
class DanglingImport:
    file: str  # project-relative
    line: int
    name: str  # the dotted module imported

    def sentence(self, module: str) -> str:
        return (
            f"{module} imports {self.name} ({self.file}:{self.line}), a module of its source project that "
            "this project does not have: add it to the source's package manifest, or pull with --with-deps"
        )


def _resolves(package_root: Path, package: str, name: str) -> bool:
    """Whether the module ``name`` (``core.utils``) is in the target's package folder ``package_root``."""
    parts = name.split(".")
    if parts[0] != package:
        return False
    folder = package_root.joinpath(*parts[1:])
    return (folder / "__init__.py").is_file() or (len(parts) > 1 and folder.with_suffix(".py").is_file())


def modules_of(paths: Iterable[Path], package_root: Path, package: str) -> frozenset[str]:
    """The dotted modules (and their parent packages) the ``.py`` files at ``paths`` make."""
    found = set()
    for path in paths:
        if path.suffix != ".py" or not path.is_relative_to(package_root):
            continue
        parts = [package, *path.relative_to(package_root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
    return frozenset(found)


def dangling_imports(
    files: Iterable[tuple[str, str]], *, source_package: str, target_package: str, target_package_root: Path,
    provided: frozenset[str] = frozenset(),
) -> list[DanglingImport]:
    """Absolute imports of ``source_package`` in ``files`` (project-relative path, text) that
    do not resolve in the target, on disk or among the ``provided`` modules about to be
    installed. Files that are not valid Python are left to others to report. A source
    package named like a standard-library module cannot be told from it, so it is not looked at."""
    if source_package in sys.stdlib_module_names:
        return []
    found = []
    for relative, text in files:
        try:
            result = rewrite_module(text, [], project_package=source_package, filename=relative)
        except ProjectError:
            continue
        for ref in result.outside:
            if ref.kind != "import":
                continue
            if source_package == target_package and (
                ref.name in provided or _resolves(target_package_root, target_package, ref.name)
            ):
                continue
            found.append(DanglingImport(relative, ref.line, ref.name))
    return found
