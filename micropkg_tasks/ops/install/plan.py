"""Plan the installation of one sdist into a project, without writing anything.

The plan takes each file of the sdist at its place in the project, with its
imports rewritten back into the project namespace (ops/install/files.py), merges requirements, classifies
every file (create / update / delete / unchanged / conflict) against the disk
and ``micropkg.lock``, and stages the result in a ``Staging`` overlay.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from micropkg_tasks.core.change.staging import Staging
from micropkg_tasks.core.change.transaction import CREATE, DELETE, UNCHANGED, UPDATE
from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.lock.lockfile import Lock, LockEntry, sha256_bytes
from micropkg_tasks.core.merge import (
    CONFLICT,
    KEPT,
    MERGE_CONFLICT,
    MERGED,
    git_blob_id,
    has_conflict_markers,
    is_text,
    merge_three,
)
from micropkg_tasks.core.project.project import Project
from micropkg_tasks.core.requirements.merge import merge_requirements
from micropkg_tasks.core.sdist.read import SdistContents
from micropkg_tasks.ops.install.files import target_files
from micropkg_tasks.ops.install.git_base import RecordedCommitBases, recorded_bases
from micropkg_tasks.ops.install.merge_base import find_base
from micropkg_tasks.ops.sources.locations import GIT, SIBLING, location_kind, source_identity


@dataclass(frozen=True)
class PlannedFile:
    path: str  # relative to the project root
    action: str  # create, update, delete, unchanged or conflict
    reason: str = ""


@dataclass
class InstallPlan:
    module: str
    location: str
    files: list[PlannedFile] = field(default_factory=list)
    requirements_added: list[str] = field(default_factory=list)
    requirements_present: list[str] = field(default_factory=list)
    requirements_conflicts: list[str] = field(default_factory=list)  # lines that cannot both hold: refused
    requirements_overlaps: list[str] = field(default_factory=list)  # same name, both kept: pip-compile intersects
    requirements_removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refusal: str = ""  # why this micro-package may not be installed at all (another owner), if it may not
    dangling: str = ""  # its code imports a module of its source project this project lacks: never installed

    @property
    def conflicts(self) -> list[PlannedFile]:
        return [item for item in self.files if item.action == CONFLICT]

    @property
    def merge_conflicts(self) -> list[PlannedFile]:
        return [item for item in self.files if item.action == MERGE_CONFLICT]


def install_module(destination: str | None, name: str) -> str:
    return f"{destination}.{name}" if destination else name


def _intermediate_inits(project: Project, module: str, staging: Staging) -> list[Path]:
    """``__init__.py`` files missing on the way to the destination, so the result imports."""
    parts = module.split(".")[:-1]
    needed = []
    for depth in range(1, len(parts) + 1):
        init = project.package_dir.joinpath(*parts[:depth], "__init__.py")
        if staging.read(init) is None:
            needed.append(init)
        tests_init = project.tests_dir.joinpath(*parts[:depth], "__init__.py")
        if (project.tests_dir / "__init__.py").is_file() and staging.read(tests_init) is None:
            needed.append(tests_init)
    return needed


def _classify(
    project: Project, staging: Staging, path: Path, content: bytes, lock: Lock, module: str, force: bool
) -> PlannedFile:
    relative = project.relative(path)
    current = staging.read(path)
    owner = lock.owner_of(relative)
    if current is None and staging.is_special(path) and not staging.is_pending(path):
        if not force:
            return PlannedFile(relative, CONFLICT, "a FIFO, device or socket is in the way")
        if owner is not None and owner.module != module:
            del owner.files[relative]
        return PlannedFile(relative, CREATE, "replaces a FIFO, device or socket (--force)")
    if owner is not None and owner.module != module:
        # Another installed micro-package owns this file: taking it over silently would
        # let one pull overwrite, and a later one delete, what the other installed.
        if not force:
            return PlannedFile(relative, CONFLICT, f"installed by {owner.module}")
        del owner.files[relative]
        owner.blobs.pop(relative, None)
        if relative in owner.conflicts:
            owner.conflicts.remove(relative)
        return PlannedFile(relative, UPDATE if current is not None else CREATE, f"taken over from {owner.module} (--force)")
    if current is None:
        if owner is not None and not force:
            # We installed it and someone deleted it: that is a local edit too.
            return PlannedFile(relative, CONFLICT, f"deleted since {owner.module} installed it")
        return PlannedFile(relative, CREATE)
    if current == content:
        return PlannedFile(relative, UNCHANGED)
    if owner is not None and owner.files.get(relative) == sha256_bytes(current):
        return PlannedFile(relative, UPDATE)
    if force:
        return PlannedFile(relative, UPDATE, "overwritten (--force)")
    if owner is None:
        return PlannedFile(relative, CONFLICT, "exists and was not installed by micropkg")
    return PlannedFile(relative, CONFLICT, f"edited since {owner.module} installed it")


def _requirements(
    project: Project,
    staging: Staging,
    sdist: SdistContents,
    module: str,
    lock: Lock,
    plan: InstallPlan,
) -> list[str]:
    """Merge the sdist's requirements into ``requirements.in``; return those this pull owns."""
    previous = lock.entries.get(module)
    previously_ours = set(previous.requirements) if previous else set()
    still_wanted = set(sdist.requires)
    removable = sorted(previously_ours - still_wanted - lock.requirements_of_others(module))
    if not sdist.requires and not removable:
        return []
    path = project.requirements_in
    existing = staging.read(path)
    read_from = path
    if existing is None:
        # requirements.in starts as a copy of requirements.txt, so compiling it keeps what the project had.
        read_from = project.requirements_txt
        existing = staging.read(read_from) or b""
        if existing:
            plan.warnings.append(f"{project.relative(path)} created from {project.relative(read_from)}")
    try:
        text = existing.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MicropkgError(
            f"{project.relative(read_from)} is not valid UTF-8 (byte {exc.start}); fix it before pulling"
        ) from None
    merged = merge_requirements(text, list(sdist.requires), origin=module, remove=removable)
    plan.requirements_added = list(merged.added)
    plan.requirements_present = list(merged.already_present)
    plan.requirements_removed = list(merged.removed)
    plan.requirements_conflicts = [
        f"{c.name}: requirements.in has '{c.existing}', {module} needs '{c.incoming}', and no version satisfies both"
        for c in merged.conflicts
    ]
    plan.requirements_overlaps = [
        f"{c.name}: requirements.in has '{c.existing}'; '{c.incoming}' added for {module} (pip-compile intersects them)"
        for c in merged.overlaps
    ]
    if merged.changed or staging.read(path) is None:
        staging.write(path, merged.text.encode("utf-8"))
    return sorted(set(merged.added) | (previously_ours & still_wanted))


def _other_owner(project: Project, previous: LockEntry, sdist: SdistContents, location: str) -> str:
    """Why installing ``sdist`` from ``location`` over ``previous`` would take the copy from its owner, or "".

    One owner per installed copy: another source (a synced copy and an sdist, say)
    must not silently replace it, and neither may a different build carrying the
    same version, which could be older content under an unchanged number.
    """
    installed_from = source_identity(previous.source, previous.name, project.root, previous.origin)
    built_from = sdist.micropkg.get("project"), sdist.micropkg.get("module")
    origin = f"{built_from[0]}#{built_from[1]}" if all(isinstance(part, str) for part in built_from) else None
    if installed_from != source_identity(location, sdist.name, project.root, origin):
        return (
            f"{previous.module} was installed from {previous.source}, not from {location}; "
            f"use --force to switch it to the new source, or `micropkg remove {previous.module}` it first"
        )
    if (
        previous.version == sdist.version
        and previous.sdist_sha256 != sdist.sha256
        and location_kind(location, project.root) not in (SIBLING, GIT)  # built from source: its content moves on
    ):
        return (
            f"{location} is a different build of {previous.module} {sdist.version} than the one installed "
            f"from {previous.source} (same version, other content); use --force to replace it"
        )
    return ""


def _merge_edited(
    project: Project, staging: Staging, path: Path, upstream: bytes, previous: LockEntry,
    recorded: RecordedCommitBases | None = None,
) -> tuple[PlannedFile, bytes | None]:
    """--merge for a file this micro-package installed and someone changed since: what to do,
    and the content to write (None: leave the file as it is)."""
    relative = project.relative(path)
    installed = previous.files[relative]
    local = staging.read(path)
    if local is None:
        changed = "changed" if sha256_bytes(upstream) != installed else "unchanged"
        return PlannedFile(relative, KEPT, f"deleted locally, {changed} upstream: left deleted"), None
    if sha256_bytes(upstream) == installed:
        return PlannedFile(relative, KEPT, "edited locally, unchanged upstream: local edits kept"), None
    first = (lambda: recorded.get(relative)) if recorded is not None else None
    base = find_base(project.root, previous.blobs.get(relative), installed, first)
    if base is None:
        where = "at the commit micropkg.lock records, " if recorded is not None else ""
        raise MicropkgError(
            f"cannot merge {relative}: the content it was installed with is neither {where}in git nor in the "
            "local store of installed files; use --force to take upstream's version, or merge it by hand",
        )
    if not (is_text(base) and is_text(local) and is_text(upstream)):
        return PlannedFile(relative, CONFLICT, "binary file edited locally and changed upstream: cannot merge"), None
    merged = merge_three(base, local, upstream)
    if merged.conflicts:
        regions = f"{merged.conflicts} conflict{'s' if merged.conflicts > 1 else ''}"
        return PlannedFile(relative, MERGE_CONFLICT, f"{regions} marked in the file"), merged.content
    return PlannedFile(relative, MERGED, "local edits kept on top of upstream's"), merged.content


def plan_install(
    project: Project,
    staging: Staging,
    lock: Lock,
    sdist: SdistContents,
    *,
    location: str,
    alias: str | None,
    destination: str | None,
    env: str,
    force: bool,
    placed: dict[Path, bytes] | None = None,
    merge: bool = False,
    declared: bool = False,
    commit: str | None = None,
    dependencies: Sequence[tuple[str, str]] = (),
) -> InstallPlan:
    """Stage the installation of ``sdist`` and record the new lock entry in ``lock``.

    ``placed`` is ``target_files(...)`` computed ahead (in parallel, for a batch).
    With ``merge``, files edited locally are merged three ways instead of refused; a copy
    pulled from a git source takes its merge bases from the commit the lock records.
    ``commit``: the git commit a git source was packaged from. ``dependencies`` are those
    ``placed`` was computed with (see :func:`target_files`).
    """
    install_name = alias or sdist.name
    module = install_module(destination, install_name)
    plan = InstallPlan(module=module, location=location)
    if placed is None:
        placed = target_files(project, sdist, module=module, env=env, install_name=install_name)
    previous = lock.entries.get(module)
    if previous is not None and not force:
        plan.refusal = _other_owner(project, previous, sdist, location)
        if plan.refusal:
            return plan  # nothing staged: this micro-package is left exactly as it is
    # A copy whose local changes were kept on purpose (a merge, or `accept`) merges again.
    merge = merge or bool(previous is not None and previous.customised and not force)
    recorded = _recorded_bases(project, previous, module, dependencies) if merge else None
    customised = _stage_files(project, staging, lock, module, placed, previous, plan, force=force, merge=merge,
                              recorded=recorded)
    if previous is not None:
        _stage_dropped_files(project, staging, lock, module, placed, previous, plan, force=force, merge=merge)
    created = _stage_missing_inits(project, staging, module, previous, plan)
    requirements = _requirements(project, staging, sdist, module, lock, plan)
    source_sha = sdist.micropkg.get("source-sha256")
    lock.entries[module] = LockEntry(
        module=module, name=sdist.name, source=location, version=sdist.version, sdist_sha256=sdist.sha256,
        source_sha256=str(source_sha) if source_sha else None,
        options=_lock_options(env, alias, destination, declared),
        requirements=requirements,
        files={project.relative(path): sha256_bytes(content) for path, content in placed.items()},
        blobs={project.relative(path): git_blob_id(content) for path, content in placed.items()},
        conflicts=_still_conflicted(project, staging, placed, previous, plan),
        created=sorted(created), customised=customised, commit=commit,
    )
    return plan


def _recorded_bases(
    project: Project, previous: LockEntry | None, module: str, dependencies: Sequence[tuple[str, str]],
) -> RecordedCommitBases | None:
    """Where a merge into a copy pulled from a git source looks first for its bases: the files
    as packaged from the commit the lock records (None for any other copy)."""
    place = functools.partial(target_files, project, module=module, dependencies=dependencies)
    return recorded_bases(project, previous, place)


def _stage_files(
    project: Project, staging: Staging, lock: Lock, module: str, placed: dict[Path, bytes],
    previous: LockEntry | None, plan: InstallPlan, *, force: bool, merge: bool,
    recorded: RecordedCommitBases | None = None,
) -> dict[str, str]:
    """Classify and stage every file the sdist installs (merging edited ones with ``merge``);
    returns the files whose local changes were kept, with the hash of what was kept."""
    customised: dict[str, str] = {}
    for path in sorted(placed):
        planned = _classify(project, staging, path, placed[path], lock, module, force)
        content: bytes | None = placed[path]
        if merge and planned.action == CONFLICT and previous is not None and planned.path in previous.files:
            planned, content = _merge_edited(project, staging, path, placed[path], previous, recorded)
            kept = content if planned.action == MERGED else staging.read(path) if planned.action == KEPT else None
            if kept is not None:
                customised[planned.path] = sha256_bytes(kept)
        plan.files.append(planned)
        if planned.action in (CREATE, UPDATE, MERGED, MERGE_CONFLICT) and content is not None:
            staging.write(path, content)
    return customised


def _stage_dropped_files(
    project: Project, staging: Staging, lock: Lock, module: str, placed: dict[Path, bytes],
    previous: LockEntry, plan: InstallPlan, *, force: bool, merge: bool,
) -> None:
    """Delete the files the installed copy had and the new one drops, unless edited locally
    (then kept with ``merge``, else a conflict) or owned by another micro-package too."""
    new_paths = {project.relative(path) for path in placed}
    for relative, digest in sorted(previous.files.items()):
        if relative in new_paths or lock.owners_other_than(relative, module):
            continue
        path = project.root / relative
        current = staging.read(path)
        if current is None:
            continue
        if sha256_bytes(current) == digest or force:
            plan.files.append(PlannedFile(relative, DELETE, "dropped upstream"))
            staging.delete(path)
        elif merge:
            plan.files.append(PlannedFile(relative, KEPT, "dropped upstream, edited locally: kept, no longer tracked"))
        else:
            plan.files.append(PlannedFile(relative, CONFLICT, "dropped upstream but edited locally"))


def _stage_missing_inits(
    project: Project, staging: Staging, module: str, previous: LockEntry | None, plan: InstallPlan
) -> set[str]:
    """Create the package ``__init__.py`` files missing on the way to the module; returns every
    file the install created (the earlier install's too), for the lock."""
    created = set(previous.created) if previous is not None else set()
    for init in _intermediate_inits(project, module, staging):
        plan.files.append(PlannedFile(project.relative(init), CREATE, "missing package __init__.py"))
        staging.write(init, b"")
        created.add(project.relative(init))
    return created


def _lock_options(env: str, alias: str | None, destination: str | None, declared: bool) -> dict[str, str]:
    """How the micro-package was installed, as its lock entry records it."""
    options = {"env": env}
    if alias:
        options["alias"] = alias
    if destination:
        options["destination"] = destination
    if declared:
        # A declaration asked for it: once none does, the copy is "orphaned", not an ad-hoc pull.
        options["declared"] = "true"
    return options


def _still_conflicted(
    project: Project, staging: Staging, placed: dict[Path, bytes], previous: LockEntry | None, plan: InstallPlan
) -> list[str]:
    """Files written with conflict markers now, and those from an earlier merge whose markers remain."""
    conflicted = {item.path for item in plan.merge_conflicts}
    installed = {project.relative(path): path for path in placed}
    for relative in previous.conflicts if previous is not None else ():
        path = installed.get(relative)
        current = staging.read(path) if path is not None else None
        if current is not None and has_conflict_markers(current):
            conflicted.add(relative)
    return sorted(conflicted)
