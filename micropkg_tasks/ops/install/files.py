"""What an sdist installs into a project: each file at its project path, imports rewritten back.

Our own sdists are restored exactly from their records; others follow the rules of SPEC §4.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from micropkg_tasks.core.change.bounded import parsing
from micropkg_tasks.core.errors import MicropkgError, UsageError
from micropkg_tasks.core.project.params import rename_for_alias
from micropkg_tasks.core.project.project import Project
from micropkg_tasks.core.rewrite.restore import ExactRestore, restore_source
from micropkg_tasks.core.rewrite.rewriter import ModuleMove, rewrite_module
from micropkg_tasks.core.rewrite.splice import SplicedRewrites
from micropkg_tasks.core.sdist.read import SdistContents


def _top_level_names(files: dict[str, bytes]) -> frozenset[str]:
    """Names a dotted string may continue with after the package name: its submodules and
    what its ``__init__`` defines. Only these strings are rewritten back on pull."""
    names = set()
    for relative in files:
        head = relative.split("/", 1)[0]
        if head.endswith(".py"):
            head = head[:-3]
        if head.isidentifier() and head != "__init__":
            names.add(head)
    init = files.get("__init__.py")
    if init:
        try:
            with parsing("__init__.py of the pulled micro-package", "read its names"):
                tree = ast.parse(init)
        except SyntaxError:
            tree = ast.Module(body=[], type_ignores=[])
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return frozenset(names)


# Installing one sdist into many projects (sync-shared) rewrites its files once per run and
# process: entries are keyed by the run (see core/runs.py).
_SPLICED = SplicedRewrites()


def _rewrite_files(
    files: Mapping[str, bytes], moves: list[ModuleMove], shown_prefix: str, exact: ExactRestore | None = None
) -> dict[str, bytes]:
    out = {}
    for relative, content in files.items():
        if relative.endswith(".py"):
            try:
                source = content.decode("utf-8")
            except UnicodeDecodeError:
                raise MicropkgError(f"{shown_prefix}{relative} in the sdist is not valid UTF-8 Python source") from None
            installed = exact.installed(relative, source) if exact else None
            if installed is not None:
                # Our own sdist: back to the source text, then full paths to the target's.
                content = installed.encode("utf-8")
            else:
                result = rewrite_module(source, moves, filename=f"{shown_prefix}{relative}")
                content = result.code.encode("utf-8") if result.changed else content
        out[relative] = content
    return out


def target_files(
    project: Project,
    sdist: SdistContents,
    *,
    module: str,
    env: str,
    install_name: str,
    dependencies: Sequence[tuple[str, str]] = (),
    run: str | None = None,
) -> dict[Path, bytes]:
    """Every file the sdist installs, at its project path, with imports rewritten back.

    ``dependencies`` are ``(full module path in the source, installed module in the target)``
    for the micro-packages it imports: their references are pointed at the target's copy.
    Our own sdists are restored exactly from their records; others follow the rules of SPEC §4.
    ``run`` names the run (see core/runs.py): an sdist it installs into several projects is
    rewritten once, then spliced (without it, every call rewrites).
    """
    package_files = sdist.package_files()
    test_files = sdist.test_files()
    rewrite = _Rewrite(
        sdist, module, tuple(dependencies), _top_level_names(package_files), _top_level_names(test_files),
        restore_source(sdist.micropkg, sdist.files, sdist.source, sdist.name),
    )
    placed: dict[Path, bytes] = {}
    code_dir = project.module_dir(module)
    code = rewrite.for_project(project, run, package_files, f"{sdist.root}/{sdist.name}/", f"{sdist.name}/", "code")
    for relative, content in code.items():
        placed[code_dir / relative] = content
    tests_dir = project.module_tests_dir(module)
    for relative, content in rewrite.for_project(project, run, test_files, f"{sdist.root}/tests/", "tests/",
                                                 "tests").items():
        placed[tests_dir / relative] = content
    _place_config(project, sdist, env, install_name, placed)
    return placed


@dataclass(frozen=True)
class _Rewrite:
    """How one sdist's files are rewritten for a project that installs it at ``module``."""

    sdist: SdistContents
    module: str
    dependencies: tuple[tuple[str, str], ...]
    code_roots: frozenset[str]  # what a dotted string may continue with after the package's name
    test_roots: frozenset[str]  # ... after "tests"
    ours: tuple[Mapping[str, Any], str, str] | None  # our own sdist: restore records, source package and module

    def for_project(
        self, project: Project, run: str | None, files: Mapping[str, bytes], shown_prefix: str, key_prefix: str,
        kind: str,
    ) -> dict[str, bytes]:
        """``files`` rewritten for ``project``: spliced from the run's rewrite when it has one."""
        rewrite = functools.partial(self.files, shown_prefix=shown_prefix, key_prefix=key_prefix)
        if run is None or (self.ours is not None and self.ours[1] == project.package_name):
            # Back under the source project's own name, some moves are no moves at all and are left
            # out; a placeholder name would turn them into real rewrites, so no splicing here.
            return rewrite(files, project.package_name)
        key = (run, self.sdist.sha256, self.sdist.name, self.module, kind, self.dependencies)
        return _SPLICED.rewrite(key, files, rewrite, project.package_name)

    def files(
        self, files: Mapping[str, bytes], package_name: str, *, shown_prefix: str, key_prefix: str
    ) -> dict[str, bytes]:
        """``files`` rewritten for a project whose package is called ``package_name``."""
        sdist, module = self.sdist, self.module
        to_dependencies = [ModuleMove(old, f"{package_name}.{installed}") for old, installed in self.dependencies]
        moves = [
            ModuleMove(sdist.name, f"{package_name}.{module}", string_roots=self.code_roots),
            ModuleMove("tests", f"tests.{module}", string_roots=self.test_roots),
            *(move for move in to_dependencies if move.old != move.new),
        ]
        exact = None
        if self.ours is not None:
            records, source_project, source_module = self.ours
            full = [
                ModuleMove(f"{source_project}.{source_module}", f"{package_name}.{module}"),
                ModuleMove(f"tests.{source_module}", f"tests.{module}"),
                *to_dependencies,
            ]
            packaging = (
                ModuleMove(f"{source_project}.{source_module}", sdist.name),
                ModuleMove(f"tests.{source_module}", "tests"),
            )
            exact = ExactRestore(records, tuple(m for m in full if m.old != m.new), key_prefix, packaging, sdist.source)
        return _rewrite_files(files, moves, shown_prefix, exact)


def _place_config(
    project: Project, sdist: SdistContents, env: str, install_name: str, placed: dict[Path, bytes]
) -> None:
    """The sdist's parameter files, renamed for ``install_name``, into the env's folder."""
    env_dir = project.env_dir(env)
    for relative, content in sdist.config_files().items():
        target = env_dir / rename_for_alias(relative, sdist.name, install_name)
        if target in placed:
            raise UsageError(
                f"{sdist.source}: with the name {install_name!r}, two parameter files would both be installed as "
                f"{project.relative(target)} (one of them is config/{relative}); pull it under another --alias"
            )
        placed[target] = content
