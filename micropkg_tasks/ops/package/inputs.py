"""What a micro-package's sdist is made from: the options checked and every input file read.

Reading the inputs is cheap (files and a hash), so sync reads them just to compare
the digest with the lock; building (ops/package/build.py) rewrites them into an sdist.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from micropkg_tasks.core.change.bounded import MAX_SDIST_BYTES, read_file_bytes
from micropkg_tasks.core.errors import ProjectError, UsageError
from micropkg_tasks.core.project.names import shadows_stdlib, validate_alias, validate_env, validate_module_path
from micropkg_tasks.core.project.params import select_parameter_files, skipped_symlinks
from micropkg_tasks.core.project.project import Project

_SKIPPED_NAMES = frozenset({"__pycache__", ".DS_Store", ".ipynb_checkpoints", ".pytest_cache"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")

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
