"""Build a micro-package's sdist in memory from its inputs: rewrite, archive.

Reading the inputs (ops/package/inputs.py) is cheap (files and a hash); building
rewrites every Python file. Sync compares the hash with the lock before deciding
to build at all.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from micropkg_tasks.core.change.bounded import parsing
from micropkg_tasks.core.errors import MicropkgError, UsageError
from micropkg_tasks.core.lock.lockfile import sha256_bytes
from micropkg_tasks.core.project.micropkg_deps import Dependency, dependencies_table
from micropkg_tasks.core.project.params import rename_for_alias
from micropkg_tasks.core.project.project import Project
from micropkg_tasks.core.project.version import resolve_version
from micropkg_tasks.core.requirements.read import read_requirements_file
from micropkg_tasks.core.rewrite.pysource import parse_file_bytes
from micropkg_tasks.core.rewrite.restore import RESTORE_MEMBER, record_edits, render_records
from micropkg_tasks.core.rewrite.rewriter import ModuleMove, rewrite_module
from micropkg_tasks.core.sdist.write import SdistSpec, build_sdist_bytes, sdist_filename
from micropkg_tasks.ops.package.dependencies import MicropackageSet, analyse, micropackages_of
from micropkg_tasks.ops.package.inputs import PackageInputs, read_inputs


@dataclass(frozen=True)
class OutsideImport:
    """An import that points outside the micro-package and will not resolve after a pull."""

    file: str
    line: int
    name: str
    kind: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.name} is outside the micro-package and will not resolve after a pull"


@dataclass(frozen=True)
class PackageResult:
    module_path: str
    name: str
    path: str
    version: str
    version_source: str
    code_files: int
    test_files: int
    config_files: int
    requirements: tuple[str, ...]
    sha256: str
    source_sha256: str
    outside_imports: tuple[OutsideImport, ...] = ()
    warnings: tuple[str, ...] = ()
    artifact: str = ""  # once written: created, overwritten, or unchanged (the same bytes were there)
    dependencies: tuple[Dependency, ...] = ()  # other micro-packages of the project it imports


@dataclass(frozen=True)
class BuiltSdist:
    """An sdist built in memory, before it is written anywhere."""

    filename: str
    data: bytes
    result: PackageResult



def _package_depth(relative: str) -> int:
    """How many package levels below the micro-package root a module file sits."""
    return relative.count("/")


def _rewrite_tree(
    files: dict[str, bytes],
    moves: Sequence[ModuleMove],
    *,
    project: Project,
    shown_root: Path,
    check_outside: bool,
) -> tuple[dict[str, bytes], list[OutsideImport]]:
    rewritten: dict[str, bytes] = {}
    outside: list[OutsideImport] = []
    for relative, content in files.items():
        if not relative.endswith(".py"):
            rewritten[relative] = content
            continue
        shown = project.relative(shown_root / relative)
        try:
            source = content.decode("utf-8")
        except UnicodeDecodeError:
            raise MicropkgError(f"{shown} is not valid UTF-8 Python source") from None
        result = rewrite_module(
            source,
            moves,
            project_package=project.package_name if check_outside else None,
            package_depth=_package_depth(relative) if check_outside else None,
            filename=shown,
        )
        rewritten[relative] = result.code.encode("utf-8") if result.changed else content
        outside += [OutsideImport(shown, ref.line, ref.name, ref.kind) for ref in result.outside]
    return rewritten, outside


def _imports_of(files: dict[str, bytes], name: str, shown_root: Path, project: Project) -> list[str]:
    """Absolute imports of a top-level module called ``name``: once the micro-package itself is
    called ``name``, a pull could not tell them apart from references to it."""
    found = []
    for relative, content in files.items():
        if not relative.endswith(".py") or name.encode() not in content:
            continue
        shown = project.relative(shown_root / relative)
        with parsing(shown, "read its imports"):
            parsed = parse_file_bytes(content, shown)
        if parsed is None:
            continue  # the rewriter reports syntax errors with their location
        for node in parsed.nodes():
            modules = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            if any(module.split(".")[0] == name for module in modules):
                found.append(f"{shown}:{node.lineno}")
    return found


def _restore_records(
    before: dict[str, bytes], after: dict[str, bytes], prefix: str
) -> dict[str, dict[str, object]]:
    """For each Python file packaging changed, how to get the source back exactly (see core/rewrite/restore.py)."""
    return {
        f"{prefix}{relative}": record_edits(before[relative].decode("utf-8"), content.decode("utf-8"))
        for relative, content in after.items()
        if relative.endswith(".py") and content != before[relative]
    }


def build_from_inputs(
    project: Project, inputs: PackageInputs, micropackages: MicropackageSet | None = None
) -> BuiltSdist:
    """Rewrite the inputs and build the sdist in memory.

    ``micropackages`` are the project's micro-packages (default: found from its
    manifest and the monorepo's shared entries); imports into them are recorded
    as dependencies instead of reported.
    """
    _refuse_name_clash(project, inputs)
    warnings = list(inputs.warnings)
    requirements_path = inputs.module_dir / "requirements.txt"
    parsed = read_requirements_file(
        requirements_path, display=project.relative(requirements_path), includes_within=inputs.module_dir
    )
    warnings += parsed.warnings
    version, notes = resolve_version(project, inputs.module_dir)
    warnings += notes
    code, tests, outside = _rewrite_inputs(project, inputs)
    if micropackages is None:
        micropackages = micropackages_of(project)
    warnings += micropackages.warnings
    analysis = analyse(project, inputs.module_path, inputs.code, inputs.tests, micropackages)
    outside = [ref for ref in outside if (ref.file, ref.line) not in analysis.covered_lines]
    source_sha = inputs.digest
    spec = SdistSpec(
        name=inputs.name,
        version=version.version,
        requires=parsed.requirements,
        files=_sdist_files(inputs, code, tests),
        micropkg={
            "module": inputs.module_path,
            "project": project.package_name,
            "source-sha256": source_sha,
            "restore": RESTORE_MEMBER,
            **({"alias": inputs.name} if inputs.alias else {}),
            "dependencies": dependencies_table(analysis.dependencies),
        },
    )
    data = build_sdist_bytes(spec)
    result = PackageResult(
        module_path=inputs.module_path,
        name=inputs.name,
        path="",
        version=version.version,
        version_source=version.source,
        code_files=len(code),
        test_files=len(tests),
        config_files=len(inputs.config),
        requirements=tuple(parsed.requirements),
        sha256=sha256_bytes(data),
        source_sha256=source_sha,
        outside_imports=tuple(outside),
        warnings=tuple(warnings),
        dependencies=analysis.dependencies,
    )
    return BuiltSdist(sdist_filename(inputs.name, version.version), data, result)


def _refuse_name_clash(project: Project, inputs: PackageInputs) -> None:
    """Refuse a name that the micro-package's own code also imports as a top-level module."""
    name = inputs.name
    clashes = (_imports_of(inputs.code, name, inputs.module_dir, project)
               + _imports_of(inputs.tests, name, inputs.tests_dir, project))
    if clashes:
        raise UsageError(
            f"micro-package name {name!r} is also a module that its code imports ({', '.join(clashes)}); "
            "package it under another name with --alias"
        )


def _rewrite_inputs(
    project: Project, inputs: PackageInputs
) -> tuple[dict[str, bytes], dict[str, bytes], list[OutsideImport]]:
    """The code and tests with the project's paths to the micro-package rewritten to its own name,
    and the code's imports that point outside it."""
    moves = [
        ModuleMove(f"{project.package_name}.{inputs.module_path}", inputs.name),
        ModuleMove(f"tests.{inputs.module_path}", "tests"),
    ]
    code, outside = _rewrite_tree(inputs.code, moves, project=project, shown_root=inputs.module_dir,
                                  check_outside=True)
    tests, tests_outside = _rewrite_tree(inputs.tests, moves, project=project, shown_root=inputs.tests_dir,
                                         check_outside=False)
    return code, tests, outside + tests_outside


def _sdist_files(inputs: PackageInputs, code: dict[str, bytes], tests: dict[str, bytes]) -> dict[str, bytes]:
    """Every member of the sdist below its root: code, tests, parameters, and the restore records."""
    name = inputs.name
    files: dict[str, bytes] = {f"{name}/{relative}": content for relative, content in code.items()}
    files.update({f"tests/{relative}": content for relative, content in tests.items()})
    old_name = inputs.module_path.rsplit(".", 1)[-1]
    files.update(
        {f"{name}/config/{rename_for_alias(rel, old_name, name)}": content for rel, content in inputs.config.items()}
    )
    files[RESTORE_MEMBER] = render_records(
        {**_restore_records(inputs.code, code, f"{name}/"), **_restore_records(inputs.tests, tests, "tests/")}
    )
    return files


def build_package(
    project: Project,
    module_path: str,
    alias: str | None = None,
    env: str = "base",
    *,
    for_distribution: bool = True,
    micropackages: MicropackageSet | None = None,
) -> BuiltSdist:
    """Build the sdist for one micro-package in memory."""
    inputs = read_inputs(project, module_path, alias, env, for_distribution=for_distribution)
    return build_from_inputs(project, inputs, micropackages)

