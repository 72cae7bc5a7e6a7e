"""Undo a pull: delete an installed copy's code, tests and parameter files and its lock entry, as one unit.

Only the files the lock lists for the copy are deleted, and only when they still hold
what was installed (``--force`` deletes edited ones too). Files another entry also
lists stay. Folders left empty are pruned by the transaction. The requirements the
copy added stay in ``requirements.in``: other code may use them, and the result names
them so they can be dropped by hand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from micropkg_tasks.core.change.transaction import DELETE, UPDATE, FileChange, apply_changes
from micropkg_tasks.core.errors import ConflictError, UsageError
from micropkg_tasks.core.lock.lockfile import Lock, LockEntry, changed_files, read_project_lock, render_lock
from micropkg_tasks.core.project.project import Project
from micropkg_tasks.ops.install.apply import locked_for_writing
from micropkg_tasks.ops.install.plan import PlannedFile

MISSING = "missing"  # listed in the lock, already gone from the disk: nothing to delete


@dataclass(frozen=True)
class RemoveResult:
    """What removing one installed copy did (or, with ``dry_run``, would do)."""

    module: str
    source: str
    version: str
    files: tuple[PlannedFile, ...]  # every file of the copy: delete, or missing
    requirements_kept: tuple[str, ...] = ()  # what the copy added to requirements.in, left there
    dependents: tuple[str, ...] = ()  # installed micro-packages that import it (only with --force)
    left: tuple[str, ...] = ()  # files in the copy's folders that micropkg did not install: kept
    lock_deleted: bool = False  # the last entry went, so micropkg.lock went too
    refused: str = ""  # with dry_run: why a real run would stop (without --force)
    applied: bool = False
    dry_run: bool = False
    recovered: str = ""

    @property
    def deleted(self) -> tuple[str, ...]:
        return tuple(item.path for item in self.files if item.action == DELETE)


def _entry(project: Project, lock: Lock, module: str) -> LockEntry:
    entry = lock.entries.get(module)
    if entry is not None:
        return entry
    installed = ", ".join(sorted(lock.entries)) or "nothing"
    raise UsageError(f"{module} is not installed in {project.root} (micropkg.lock lists {installed})")


def _generated(root: Path, entry: LockEntry) -> list[str]:
    """Byte-code caches inside the copy's folders: Python made them, and they go with the copy."""
    found = []
    for folder in sorted({os.path.dirname(relative) for relative in [*entry.files, *entry.created]}):
        cache = root / folder / "__pycache__"
        if cache.is_dir() and not cache.is_symlink():
            found += [f"{folder}/__pycache__/{name}" for name in sorted(os.listdir(cache)) if name.endswith(".pyc")]
    return found


def _created_inits(root: Path, entry: LockEntry, gone: set[str]) -> list[str]:
    """The empty ``__init__.py`` files the pull added on the way to the copy that are left alone
    in their folder once ``gone`` is deleted: they go too, deepest first."""
    deleted = []
    for relative in sorted(entry.created, key=lambda path: -path.count("/")):
        path = root / relative
        if path.is_symlink() or not path.is_file() or path.stat().st_size:
            continue
        folder = path.parent
        others = [
            item for item in folder.rglob("*")
            if (item.is_symlink() or not item.is_dir()) and item.relative_to(root).as_posix() not in gone
            and item != path
        ]
        if not others:
            deleted.append(relative)
            gone.add(relative)
    return deleted


def _left_behind(project: Project, module: str, deleted: set[str]) -> tuple[str, ...]:
    """Files in the copy's own folders (its package and its tests) that micropkg did not install:
    they stay, and so do their folders."""
    left = []
    for folder in (project.module_dir(module), project.module_tests_dir(module)):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for path in sorted(folder.rglob("*")):
            relative = project.relative(path)
            if path.is_file() and relative not in deleted and "__pycache__" not in path.parts:
                left.append(relative)
    return tuple(left)


def remove_module(
    project: Project, module: str, *, force: bool = False, dry_run: bool = False, lock_timeout: float = 30.0,
) -> RemoveResult:
    """Delete ``module``'s installed files and lock entry as one transaction, under the project's lock.

    Refuses (``ConflictError``, nothing written) files edited since they were installed,
    and a copy other installed micro-packages import, unless ``force``.
    """
    with locked_for_writing(project, dry_run=dry_run, timeout=lock_timeout) as recovery:
        lock = read_project_lock(project)
        entry = _entry(project, lock, module)
        edited, missing = changed_files(project.root, entry)
        dependents = tuple(name for name in lock.dependents_of(module) if name != module)
        refused = "" if force else _refusal(module, edited, dependents)
        if refused and not dry_run:
            raise ConflictError(f"remove refused: {refused}", details=list(edited))
        shared = {relative for relative in entry.files if lock.owners_other_than(relative, module)}
        files = []
        for relative in sorted(entry.files):
            if relative in missing:
                files.append(PlannedFile(relative, MISSING, "already deleted"))
            elif relative in shared:
                continue
            else:
                reason = "edited since installed" if relative in edited else ""
                files.append(PlannedFile(relative, DELETE, reason))
        caches = _generated(project.root, entry)
        gone = {item.path for item in files if item.action == DELETE} | set(caches)
        for relative in _created_inits(project.root, entry, gone):
            files.append(PlannedFile(relative, DELETE, "package __init__.py the pull added"))
        changes = [FileChange(project.root / relative, DELETE) for relative in sorted(gone)]
        del lock.entries[module]
        if lock.entries:
            changes.append(FileChange(project.lock_path, UPDATE, render_lock(lock).encode("utf-8")))
        elif project.lock_path.exists():
            changes.append(FileChange(project.lock_path, DELETE))
        if not dry_run:
            apply_changes(project.root, changes, managed=project.managed_paths())
    return RemoveResult(
        module=module,
        source=entry.source,
        version=entry.version,
        files=tuple(files),
        requirements_kept=tuple(sorted(entry.requirements)),
        dependents=dependents,
        left=_left_behind(project, module, gone),
        lock_deleted=not lock.entries,
        applied=not dry_run,
        dry_run=dry_run,
        recovered=recovery.message if recovery else "",
        refused=refused,
    )


def _refusal(module: str, edited: tuple[str, ...], dependents: tuple[str, ...]) -> str:
    """Why removing ``module`` needs ``--force``, or ""."""
    if edited:
        return (
            f"{len(edited)} file(s) of {module} were edited since they were installed; nothing was deleted "
            "(use --force to delete them anyway)"
        )
    if dependents:
        return (
            f"{', '.join(dependents)} import(s) {module}; nothing was deleted (remove them first, or use --force "
            "to leave them without it)"
        )
    return ""

