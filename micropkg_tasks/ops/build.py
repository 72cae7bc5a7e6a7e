"""Build a micro-package's sdist in memory from a project: read the inputs, rewrite, archive.

Reading the inputs is cheap (files and a hash); building rewrites every Python
file. Sync compares the hash with the lock before deciding to build at all.
"""

from __future__ import annotations

import ast
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from micropkg_tasks.core.bounded import MAX_SDIST_BYTES, parsing, read_file_bytes
from micropkg_tasks.core.errors import MicropkgError, ProjectError, UsageError
from micropkg_tasks.core.lockfile import sha256_bytes
from micropkg_tasks.core.micropkg_deps import Dependency, dependencies_table
from micropkg_tasks.core.names import shadows_stdlib, validate_alias, validate_env, validate_module_path
from micropkg_tasks.core.params import rename_for_alias, select_parameter_files, skipped_symlinks
from micropkg_tasks.core.project import Project
from micropkg_tasks.core.pysource import parse_file_bytes
from micropkg_tasks.core.requirements import read_requirements_file
from micropkg_tasks.core.restore import RESTORE_MEMBER, record_edits, render_records
from micropkg_tasks.core.rewrite import ModuleMove, rewrite_module
from micropkg_tasks.core.sdist_write import SdistSpec, build_sdist_bytes, sdist_filename
from micropkg_tasks.core.version import resolve_version
from micropkg_tasks.ops.package_deps import MicropackageSet, analyse, micropackages_of

_SKIPPED_NAMES = frozenset({"__pycache__", ".DS_Store", ".ipynb_checkpoints", ".pytest_cache"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


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


def _collect(folder: Path, project: Project) -> tuple[dict[str, bytes], list[str]]:
    """Every file below ``folder`` (relative posix path -> bytes), skipping caches.

    Symlinks are skipped with a warning: following them could package files
    from outside the project.
    """
    files: dict[str, bytes] = {}
    warnings: list[str] = []
    if not folder.is_dir():
        return files, warnings
    for dirpath, dirnames, filenames in os.walk(folder):
        current = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            if name in _SKIPPED_NAMES:
                continue
            if (current / name).is_symlink():
                warnings.append(f"{project.relative(current / name)}: symlinked folder skipped")
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = current / name
            if name in _SKIPPED_NAMES or name.endswith(_SKIPPED_SUFFIXES):
                continue
            if path.is_symlink():
                warnings.append(f"{project.relative(path)}: symlink skipped")
                continue
            files[path.relative_to(folder).as_posix()] = read_input(path, project)
    return files, warnings


def read_input(path: Path, project: Project) -> bytes:
    """One file to package: a regular file of bounded size, or one clear sentence."""
    shown = project.relative(path)
    try:
        return read_file_bytes(path, display=shown, limit=MAX_SDIST_BYTES)
    except FileNotFoundError:
        if path.is_symlink():
            raise ProjectError(f"{shown} is a symlink to a missing file; remove it or fix its target") from None
        raise ProjectError(f"{shown} disappeared while it was being read") from None
    except OSError as exc:
        raise ProjectError(f"{shown} cannot be read: {exc.strerror or type(exc).__name__}") from None


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


def source_digest(module_path: str, env: str, parts: dict[str, dict[str, bytes]]) -> str:
    """A hash of everything a micro-package is made from, before rewriting.

    Sync compares it with the lock to skip packaging work when nothing changed.
    The alias is left out: it names the sdist, while what a target installs
    depends only on the target's own name for it.
    """
    digest = hashlib.sha256()
    digest.update(f"{module_path}\0{env}\0".encode())
    for kind in sorted(parts):
        for relative in sorted(parts[kind]):
            digest.update(f"{kind}\0{relative}\0".encode())
            digest.update(hashlib.sha256(parts[kind][relative]).digest())
    return digest.hexdigest()


def validated_inputs(
    project: Project, module_path: str, alias: str | None, env: str, *, for_distribution: bool = True
) -> tuple[str, Path]:
    validate_module_path(module_path, option="module path")
    if alias is not None:
        validate_alias(alias)
    validate_env(env)
    name = alias or module_path.rsplit(".", 1)[-1]
    if for_distribution and shadows_stdlib(name):
        raise UsageError(
            f"micro-package name {name!r} would shadow the standard library module {name!r} "
            f"once packaged; give it another name with --alias (for example --alias {name}_utils)"
        )
    module_dir = project.module_dir(module_path)
    shown = project.relative(module_dir)
    if not module_dir.is_dir():
        raise UsageError(f"micro-package {module_path!r} does not exist: {shown} is not a folder")
    if not (module_dir / "__init__.py").is_file():
        raise UsageError(f"micro-package {module_path!r} is not a Python package: {shown}/__init__.py is missing")
    env_dir = project.env_dir(env)
    if not env_dir.is_dir() and (project.conf_dir.is_dir() or env != "base"):
        raise UsageError(f"env {env!r} does not exist: {project.relative(env_dir)} is not a folder")
    return name, module_dir


@dataclass(frozen=True)
class PackageInputs:
    """What a micro-package's sdist is made from, as read from the project, before any rewriting."""

    module_path: str
    name: str
    alias: str | None
    env: str
    module_dir: Path
    tests_dir: Path
    code: dict[str, bytes]
    tests: dict[str, bytes]
    config: dict[str, bytes]
    warnings: tuple[str, ...]

    @property
    def digest(self) -> str:
        return source_digest(self.module_path, self.env, {"code": self.code, "tests": self.tests, "config": self.config})


def read_inputs(
    project: Project, module_path: str, alias: str | None = None, env: str = "base", *, for_distribution: bool = True
) -> PackageInputs:
    """Validate the options and read every input file; cheap enough to run just to compare digests.

    ``for_distribution=False`` is for sdists that never leave memory (sync), where a
    name that shadows the standard library does no harm.
    """
    name, module_dir = validated_inputs(project, module_path, alias, env, for_distribution=for_distribution)
    code, warnings = _collect(module_dir, project)
    tests_dir = project.module_tests_dir(module_path)
    tests, test_warnings = _collect(tests_dir, project)
    env_dir = project.env_dir(env)
    short_name = module_path.rsplit(".", 1)[-1]
    selected, refused = select_parameter_files(env_dir, short_name)
    config = {relative: read_input(env_dir / relative, project) for relative in selected}
    notes = [f"{project.relative(env_dir / r)}: catalog and credentials files are never packaged" for r in refused]
    notes += [f"{project.relative(env_dir / r)}: symlink skipped" for r in skipped_symlinks(env_dir, short_name)]
    if not any(content.strip() for relative, content in code.items() if relative.endswith(".py")):
        # Kedro packaged these too; a new micro-package is often a skeleton at first.
        notes.append(f"micro-package {module_path!r} has no Python code yet: every .py file in "
                     f"{project.relative(module_dir)} is empty; packaged anyway")
    if not selected and env != "base":
        base_dir = project.env_dir("base")
        in_base, _ = select_parameter_files(base_dir, short_name)
        if in_base:
            notes.append(
                f"{project.relative(env_dir)} has no parameter files for {module_path!r}, but "
                f"{project.relative(base_dir)} has {', '.join(in_base)}; the sdist carries no parameters "
                f"(package with --env base to include those)"
            )
    return PackageInputs(
        module_path, name, alias, env, module_dir, tests_dir, code, tests, config,
        tuple(warnings + test_warnings + notes),
    )


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
    """For each Python file packaging changed, how to get the source back exactly (see core/restore.py)."""
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
    name, module_dir, tests_dir = inputs.name, inputs.module_dir, inputs.tests_dir
    clashes = _imports_of(inputs.code, name, module_dir, project) + _imports_of(inputs.tests, name, tests_dir, project)
    if clashes:
        raise UsageError(
            f"micro-package name {name!r} is also a module that its code imports ({', '.join(clashes)}); "
            "package it under another name with --alias"
        )
    warnings = list(inputs.warnings)
    parsed = read_requirements_file(
        module_dir / "requirements.txt",
        display=project.relative(module_dir / "requirements.txt"),
        includes_within=module_dir,
    )
    warnings += parsed.warnings
    version, notes = resolve_version(project, module_dir)
    warnings += notes

    moves = [
        ModuleMove(f"{project.package_name}.{inputs.module_path}", name),
        ModuleMove(f"tests.{inputs.module_path}", "tests"),
    ]
    code, outside = _rewrite_tree(inputs.code, moves, project=project, shown_root=module_dir, check_outside=True)
    tests, tests_outside = _rewrite_tree(inputs.tests, moves, project=project, shown_root=tests_dir, check_outside=False)
    outside += tests_outside
    if micropackages is None:
        micropackages = micropackages_of(project)
    warnings += micropackages.warnings
    analysis = analyse(project, inputs.module_path, inputs.code, inputs.tests, micropackages)
    outside = [ref for ref in outside if (ref.file, ref.line) not in analysis.covered_lines]

    files: dict[str, bytes] = {f"{name}/{relative}": content for relative, content in code.items()}
    files.update({f"tests/{relative}": content for relative, content in tests.items()})
    old_name = inputs.module_path.rsplit(".", 1)[-1]
    files.update(
        {f"{name}/config/{rename_for_alias(rel, old_name, name)}": content for rel, content in inputs.config.items()}
    )
    files[RESTORE_MEMBER] = render_records(
        {**_restore_records(inputs.code, code, f"{name}/"), **_restore_records(inputs.tests, tests, "tests/")}
    )
    source_sha = inputs.digest
    spec = SdistSpec(
        name=name,
        version=version.version,
        requires=parsed.requirements,
        files=files,
        micropkg={
            "module": inputs.module_path,
            "project": project.package_name,
            "source-sha256": source_sha,
            "restore": RESTORE_MEMBER,
            **({"alias": name} if inputs.alias else {}),
            "dependencies": dependencies_table(analysis.dependencies),
        },
    )
    data = build_sdist_bytes(spec)
    result = PackageResult(
        module_path=inputs.module_path,
        name=name,
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
    return BuiltSdist(sdist_filename(name, version.version), data, result)


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

