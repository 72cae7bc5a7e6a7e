"""``micropkg.lock``: what each pull installed, so updates know what they may touch.

The file is TOML, written in sorted order with a trailing newline so that it
diffs cleanly in review. Each entry records the installed module path, where
it came from, the version and sha256 of the sdist, the options, the
requirements the pull added, and every installed file with its sha256 and its
git blob id (so a three-way merge can recover the installed content from git).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from micropkg_tasks.core.bounded import MAX_SDIST_BYTES, read_file_bytes
from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.merge import git_blob_id, has_conflict_markers
from micropkg_tasks.core.pathguard import guard, relative_path_problem
from micropkg_tasks.core.project import Project, read_toml

LOCK_FORMAT = 1
_HEADER = "# Written by micropkg-tasks: what each pulled micro-package installed. Do not edit by hand.\n"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str | None:
    """The file's digest, or None if it does not exist."""
    try:
        return sha256_bytes(read_file_bytes(path, limit=MAX_SDIST_BYTES))
    except FileNotFoundError:
        return None


@dataclass
class LockEntry:
    module: str  # installed dotted path inside the project package
    name: str  # package name inside the sdist
    source: str  # the location, never the fs-args
    version: str
    sdist_sha256: str
    source_sha256: str | None = None  # content hash from the sdist's [tool.micropkg], if any
    options: dict[str, str] = field(default_factory=dict)
    requirements: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # project-relative path -> sha256
    # project-relative path -> git blob id of the content as installed: the merge base.
    blobs: dict[str, str] = field(default_factory=dict)
    # files written with merge conflict markers, "conflicted" until the markers are gone
    conflicts: list[str] = field(default_factory=list)
    origin: str | None = None  # "<source package>#<module path>" from our sdists: the same for every build
    depends_on: list[str] = field(default_factory=list)  # installed modules of the micro-packages it imports


def changed_files(root: Path, entry: LockEntry) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(edited, missing)``: the entry's files whose bytes differ from the lock, and those gone."""
    edited, missing = [], []
    for relative, digest in sorted(entry.files.items()):
        actual = sha256_file(root / relative)
        if actual is None:
            missing.append(relative)
        elif actual != digest:
            edited.append(relative)
    return tuple(edited), tuple(missing)


def conflicted_files(root: Path, entry: LockEntry) -> tuple[str, ...]:
    """The entry's files that a ``--merge`` wrote with conflict markers and that still have them."""
    conflicted = []
    for relative in sorted(entry.conflicts):
        try:
            data = read_file_bytes(root / relative, limit=MAX_SDIST_BYTES)
        except (OSError, ProjectError):
            continue  # deleted since, or no regular file: whatever it is now, it holds no markers
        if has_conflict_markers(data):
            conflicted.append(relative)
    return tuple(conflicted)


@dataclass
class Lock:
    entries: dict[str, LockEntry] = field(default_factory=dict)

    def owner_of(self, relative: str) -> LockEntry | None:
        for entry in self.entries.values():
            if relative in entry.files:
                return entry
        return None

    def owners_other_than(self, relative: str, module: str) -> list[str]:
        return [key for key, entry in self.entries.items() if key != module and relative in entry.files]

    def dependents_of(self, module: str) -> list[str]:
        """Installed micro-packages that import ``module``."""
        return sorted(key for key, entry in self.entries.items() if module in entry.depends_on)

    def requirements_of_others(self, module: str) -> set[str]:
        return {req for key, entry in self.entries.items() if key != module for req in entry.requirements}


def _string(where: str, data: Mapping[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ProjectError(f"{where}: key {key!r} must be a string")
    return value


def _string_map(where: str, data: Mapping[str, Any], key: str) -> dict[str, str]:
    value = data.get(key, {})
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise ProjectError(f"{where}: {key!r} must be a table of strings")
    return {str(k): str(v) for k, v in value.items()}


def _path_problem(relative: str, folders: Sequence[str]) -> str | None:
    """Why an installed-file path from a lock must not be acted on, or None if it is fine."""
    return relative_path_problem(relative, folders)


def validate_lock_paths(lock: Lock, *, display: str, folders: Sequence[str] = ()) -> None:
    """Refuse the whole lock, in one sentence naming the entry, if any installed path could
    reach outside the project (or, given ``folders``, outside those folders)."""
    for module in sorted(lock.entries):
        entry = lock.entries[module]
        for relative in sorted(set(entry.files) | set(entry.blobs) | set(entry.conflicts)):
            problem = _path_problem(relative, folders)
            if problem:
                raise ProjectError(
                    f"{display} is invalid and was not used: [micropkg.{json.dumps(module)}] lists "
                    f"{json.dumps(relative)}, {problem}; fix or remove that entry"
                )


def parse_lock(data: Mapping[str, Any], *, display: str) -> Lock:
    version = data.get("version", LOCK_FORMAT)
    if version != LOCK_FORMAT:
        raise ProjectError(f"{display}: lock format {version!r} is not supported (expected {LOCK_FORMAT})")
    raw_entries = data.get("micropkg", {})
    if not isinstance(raw_entries, Mapping):
        raise ProjectError(f"{display}: [micropkg] must be a table")
    entries: dict[str, LockEntry] = {}
    for module, raw in raw_entries.items():
        where = f"{display} [micropkg.{json.dumps(module)}]"
        if not isinstance(raw, Mapping):
            raise ProjectError(f"{where} must be a table")
        requirements = raw.get("requirements", [])
        if not isinstance(requirements, list) or not all(isinstance(r, str) for r in requirements):
            raise ProjectError(f"{where}: 'requirements' must be a list of strings")
        depends_on = raw.get("depends-on", [])
        if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
            raise ProjectError(f"{where}: 'depends-on' must be a list of strings")
        files = _string_map(where, raw, "files")
        conflicts = raw.get("conflicts", [])
        if not isinstance(conflicts, list) or not all(isinstance(c, str) and c in files for c in conflicts):
            raise ProjectError(f"{where}: 'conflicts' must be a list of paths listed under 'files'")
        blobs = _string_map(where, raw, "blobs")
        if not set(blobs) <= set(files):
            raise ProjectError(f"{where}: 'blobs' names a path that is not listed under 'files'")
        entries[str(module)] = LockEntry(
            module=str(module),
            name=str(_string(where, raw, "name")),
            source=str(_string(where, raw, "source")),
            version=str(_string(where, raw, "version")),
            sdist_sha256=str(_string(where, raw, "sdist-sha256")),
            source_sha256=_string(where, raw, "source-sha256", optional=True),
            options=_string_map(where, raw, "options"),
            requirements=[str(r) for r in requirements],
            files=files,
            blobs=blobs,
            conflicts=[str(c) for c in conflicts],
            origin=_string(where, raw, "origin", optional=True),
            depends_on=[str(d) for d in depends_on],
        )
    lock = Lock(entries)
    validate_lock_paths(lock, display=display)
    return lock


def read_lock(path: Path) -> Lock:
    """The lock at ``path``; an absent file is an empty lock."""
    if not path.exists():
        return Lock()
    return parse_lock(read_toml(path), display=str(path))


def lock_folders(project: Project) -> tuple[str, ...]:
    """The folders a lock may list installed files in: the package code, the tests and the config."""
    return project.managed_paths()[0]


def read_project_lock(project: Project) -> Lock:
    """The project's ``micropkg.lock``, refused whole if it lists a file outside the project's
    code, tests and conf folders: such a lock is never acted on, nor read through."""
    path = project.lock_path
    if path.is_symlink():
        guard(project.root, path, "read")
    lock = read_lock(path)
    validate_lock_paths(lock, display=str(path), folders=lock_folders(project))
    return lock


_SURROGATE = re.compile("[\ud800-\udfff]")


def _q(value: str) -> str:
    """A TOML basic string. JSON's escaping leaves DEL and other non-printable characters raw,
    which TOML forbids, so those are escaped too: whatever reaches the lock, it stays readable."""
    if _SURROGATE.search(value):
        raise ProjectError(f"cannot record {ascii(value)} in the lock: it is not valid Unicode text")
    text = json.dumps(value, ensure_ascii=False)
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else (f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
        for char in text
    )


def render_lock(lock: Lock) -> str:
    """Deterministic TOML text: sorted entries, sorted keys, one trailing newline."""
    out = [_HEADER, f"version = {LOCK_FORMAT}\n"]
    for module in sorted(lock.entries):
        entry = lock.entries[module]
        head = f"micropkg.{_q(module)}"
        out.append(f"\n[{head}]\n")
        out.append(f"name = {_q(entry.name)}\n")
        out.append(f"source = {_q(entry.source)}\n")
        out.append(f"version = {_q(entry.version)}\n")
        out.append(f"sdist-sha256 = {_q(entry.sdist_sha256)}\n")
        if entry.source_sha256:
            out.append(f"source-sha256 = {_q(entry.source_sha256)}\n")
        if entry.origin:
            out.append(f"origin = {_q(entry.origin)}\n")
        if entry.depends_on:
            out.append(f"depends-on = [{', '.join(_q(d) for d in sorted(entry.depends_on))}]\n")
        requirements = ", ".join(_q(r) for r in sorted(entry.requirements))
        out.append(f"requirements = [{requirements}]\n")
        if entry.conflicts:
            out.append(f"conflicts = [{', '.join(_q(c) for c in sorted(entry.conflicts))}]\n")
        out.append(f"\n[{head}.options]\n")
        out.extend(f"{key} = {_q(value)}\n" for key, value in sorted(entry.options.items()))
        out.append(f"\n[{head}.files]\n")
        out.extend(f"{_q(path)} = {_q(digest)}\n" for path, digest in sorted(entry.files.items()))
        if entry.blobs:
            out.append(f"\n[{head}.blobs]\n")
            out.extend(f"{_q(path)} = {_q(blob)}\n" for path, blob in sorted(entry.blobs.items()))
    return "".join(out)


def fill_missing_blobs(root: Path, lock: Lock) -> bool:
    """Give entries written before blob ids were recorded theirs, from the files that are still
    exactly as installed (an edited file's installed content is not known, so it gets none).
    True when some entry got one."""
    filled = False
    for entry in lock.entries.values():
        for relative, digest in entry.files.items():
            if relative in entry.blobs:
                continue
            try:
                data = read_file_bytes(root / relative, limit=MAX_SDIST_BYTES)
            except (OSError, ProjectError):
                continue  # missing, unreadable or no regular file: its installed content is unknown, so no blob id
            if sha256_bytes(data) == digest:
                entry.blobs[relative] = git_blob_id(data)
                filled = True
    return filled
