"""``micropkg.lock``: what each pull installed, so updates know what they may touch.

The file is TOML, written in sorted order with a trailing newline so that it
diffs cleanly in review. Each entry records the installed module path, where
it came from (and, for a git source, the commit its ref named), the version and
sha256 of the sdist, the options, the
requirements the pull added, and every installed file with its sha256 and its
git blob id (so a three-way merge can recover the installed content from git).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from micropkg_tasks.core.change.bounded import MAX_SDIST_BYTES, MIB, read_file_bytes
from micropkg_tasks.core.change.pathguard import guard, relative_path_problem
from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.lock.lock_text import HEADER, parse_rendered
from micropkg_tasks.core.merge import git_blob_id, has_conflict_markers
from micropkg_tasks.core.project.project import Project, read_toml

LOCK_FORMAT = 1
# The largest micropkg.lock the tool writes, and so the largest it reads: one limit for both, so a
# lock it wrote is never one it then refuses. 100,000 entries of one file each take about 40 MiB.
MAX_LOCK_BYTES = 64 * MIB


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path | str) -> str | None:
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
    # empty package __init__.py files the pull added on the way to the copy (not part of the sdist):
    # `remove` deletes them again when nothing else is left beside them
    created: list[str] = field(default_factory=list)
    # project-relative path -> sha256 of local content kept on purpose (a --merge kept it, or
    # `micropkg accept`): that file is "customised", not edited. ``files`` stays upstream's.
    customised: dict[str, str] = field(default_factory=dict)
    commit: str | None = None  # a git source: the full commit id it was packaged from


def changed_files(root: Path, entry: LockEntry) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(edited, missing)``: the entry's files whose bytes differ from the lock, and those gone.
    A path that is no longer a regular file we can read (a folder, a FIFO, a file we may not
    read) counts as edited: nothing shows it is still what was installed."""
    edited, missing = [], []
    base = os.fspath(root)  # joined as text: a Path per file costs as much as reading it
    for relative, digest in sorted(entry.files.items()):
        try:
            actual = sha256_file(os.path.join(base, relative))
        except (OSError, ProjectError):
            edited.append(relative)
            continue
        if actual is None:
            missing.append(relative)
        elif actual != digest and actual != entry.customised.get(relative):
            edited.append(relative)
    return tuple(edited), tuple(missing)


def customised_files(root: Path, entry: LockEntry) -> tuple[str, ...]:
    """The entry's files that hold the local content recorded as intended, not upstream's."""
    found = []
    for relative, digest in sorted(entry.customised.items()):
        try:
            actual = sha256_file(os.path.join(os.fspath(root), relative))
        except (OSError, ProjectError):
            continue
        if actual == digest and actual != entry.files.get(relative):
            found.append(relative)
    return tuple(found)


def conflicted_files(root: Path, entry: LockEntry) -> tuple[str, ...]:
    """The entry's files that a ``--merge`` wrote with conflict markers and that still have them."""
    conflicted = []
    for relative in sorted(entry.conflicts):
        try:
            data = read_file_bytes(root / relative, limit=MAX_SDIST_BYTES)
        except FileNotFoundError:
            continue  # deleted since: it holds no markers (status lists it as missing)
        except (OSError, ProjectError):
            # A folder, a FIFO, a file we may not read or one too large: nobody has shown the
            # markers are gone, so it stays conflicted.
            conflicted.append(relative)
            continue
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
        """Installed micro-packages that import ``module``. For every entry at once, use
        :meth:`dependents`: this one looks through the whole lock each time."""
        return sorted(key for key, entry in self.entries.items() if module in entry.depends_on)

    def dependents(self) -> dict[str, tuple[str, ...]]:
        """``{module: installed micro-packages that import it}`` for every module some entry
        depends on, in one pass over the lock."""
        index: dict[str, set[str]] = {}
        for key, entry in self.entries.items():
            for module in entry.depends_on:
                index.setdefault(module, set()).add(key)
        return {module: tuple(sorted(keys)) for module, keys in index.items()}

    def requirements_of_others(self, module: str) -> set[str]:
        return {req for key, entry in self.entries.items() if key != module for req in entry.requirements}


def _is_table(value: Any) -> bool:
    # The parsers give plain dicts; typing.Mapping's isinstance is many times slower, per entry.
    return type(value) is dict or isinstance(value, Mapping)


_STR_TYPES = {str}
_COMMIT = re.compile("[0-9a-f]{40}|[0-9a-f]{64}")


def _strings(value: Any) -> bool:
    """A list of strings (one C-level pass over the types, not a Python loop per item)."""
    return type(value) is list and set(map(type, value)) <= _STR_TYPES


class _Bad(Exception):
    """What is wrong with one entry; :func:`parse_lock` names the entry (and only then formats it)."""


def _string(data: Mapping[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if type(value) is not str:
        raise _Bad(f"key {key!r} must be a string")
    return value


def _string_map(data: Mapping[str, Any], key: str) -> dict[str, str]:
    value = data.get(key)
    if value is None:
        return {}
    if not _is_table(value) or not set(map(type, value.values())) <= _STR_TYPES:
        raise _Bad(f"{key!r} must be a table of strings")
    return value if type(value) is dict else {str(k): v for k, v in value.items()}


def _entry(module: str, raw: Any) -> LockEntry:
    if not _is_table(raw):
        raise _Bad("must be a table")
    requirements = raw.get("requirements", [])
    if not _strings(requirements):
        raise _Bad("'requirements' must be a list of strings")
    depends_on = raw.get("depends-on", [])
    if not _strings(depends_on):
        raise _Bad("'depends-on' must be a list of strings")
    files = _string_map(raw, "files")
    conflicts = raw.get("conflicts", [])
    if not _strings(conflicts) or not all(c in files for c in conflicts):
        raise _Bad("'conflicts' must be a list of paths listed under 'files'")
    created = raw.get("created", [])
    if not _strings(created):
        raise _Bad("'created' must be a list of strings")
    blobs = _string_map(raw, "blobs")
    if not blobs.keys() <= files.keys():
        raise _Bad("'blobs' names a path that is not listed under 'files'")
    customised = _string_map(raw, "customised")
    if not customised.keys() <= files.keys():
        raise _Bad("'customised' names a path that is not listed under 'files'")
    commit = _string(raw, "commit", optional=True)
    if commit is not None and not _COMMIT.fullmatch(commit):
        raise _Bad("'commit' must be a full git commit id (40 or 64 lower-case hex digits)")
    return LockEntry(
        module=module,
        name=str(_string(raw, "name")),
        source=str(_string(raw, "source")),
        version=str(_string(raw, "version")),
        sdist_sha256=str(_string(raw, "sdist-sha256")),
        source_sha256=_string(raw, "source-sha256", optional=True),
        options=_string_map(raw, "options"),
        requirements=list(requirements),
        files=files,
        blobs=blobs,
        conflicts=list(conflicts),
        origin=_string(raw, "origin", optional=True),
        depends_on=list(depends_on),
        created=list(created),
        customised=customised,
        commit=commit,
    )


def validate_lock_paths(lock: Lock, *, display: str, folders: Sequence[str] = ()) -> None:
    """Refuse the whole lock, in one sentence naming the entry, if any installed path could
    reach outside the project (or, given ``folders``, outside those folders)."""
    prefixes = tuple(folder.rstrip("/") + "/" for folder in folders)
    for module in sorted(lock.entries):
        entry = lock.entries[module]
        paths = set(entry.files).union(entry.blobs, entry.conflicts, entry.created)
        if not any(relative_path_problem(relative, folders, prefixes=prefixes) for relative in paths):
            continue
        for relative in sorted(paths):  # the first bad path, in the order the lock lists them
            problem = relative_path_problem(relative, folders, prefixes=prefixes)
            if problem:
                raise ProjectError(
                    f"{display} is invalid and was not used: [micropkg.{json.dumps(module)}] lists "
                    f"{json.dumps(relative)}, {problem}; fix or remove that entry"
                )


def parse_lock(data: Mapping[str, Any], *, display: str, folders: Sequence[str] = ()) -> Lock:
    """The lock in ``data``, refused whole (one sentence naming the entry) if anything is out of
    shape or any installed path could reach outside the project (or, given ``folders``,
    outside those folders)."""
    version = data.get("version", LOCK_FORMAT)
    if version != LOCK_FORMAT:
        raise ProjectError(f"{display}: lock format {version!r} is not supported (expected {LOCK_FORMAT})")
    raw_entries = data.get("micropkg", {})
    if not isinstance(raw_entries, Mapping):
        raise ProjectError(f"{display}: [micropkg] must be a table")
    entries: dict[str, LockEntry] = {}
    for module, raw in raw_entries.items():
        try:
            entries[str(module)] = _entry(str(module), raw)
        except _Bad as exc:
            where = f"{display} [micropkg.{json.dumps(module)}]"
            raise ProjectError(f"{where} {exc}" if str(exc).startswith("must") else f"{where}: {exc}") from None
    lock = Lock(entries)
    validate_lock_paths(lock, display=display, folders=folders)
    return lock


def read_lock(path: Path, *, folders: Sequence[str] = ()) -> Lock:
    """The lock at ``path``; an absent file is an empty lock."""
    if not path.exists():
        return Lock()
    data = read_toml(path, limit=MAX_LOCK_BYTES, shortcut=parse_rendered)
    return parse_lock(data, display=str(path), folders=folders)


def lock_folders(project: Project) -> tuple[str, ...]:
    """The folders a lock may list installed files in: the package code, the tests and the config."""
    return project.managed_paths()[0]


def read_project_lock(project: Project) -> Lock:
    """The project's ``micropkg.lock``, refused whole if it lists a file outside the project's
    code, tests and conf folders: such a lock is never acted on, nor read through."""
    path = project.lock_path
    if path.is_symlink():
        guard(project.root, path, "read")
    return read_lock(path, folders=lock_folders(project))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _q(value: str) -> str:
    """A TOML basic string. JSON's escaping leaves DEL and other non-printable characters raw,
    which TOML forbids, so those are escaped too: whatever reaches the lock, it stays readable."""
    if value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'  # what json.dumps gives for these, without its cost
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
    """Deterministic TOML text: sorted entries, sorted keys, one trailing newline.

    A lock larger than :data:`MAX_LOCK_BYTES` is refused here, before anything is written:
    the tool would refuse to read it back."""
    text = _render(lock)
    size = len(text.encode("utf-8"))
    if size > MAX_LOCK_BYTES:
        raise ProjectError(
            f"micropkg.lock would be {_size(size)} with {len(lock.entries)} entries, over the "
            f"{_size(MAX_LOCK_BYTES)} this tool reads back; nothing was written (split the project, "
            "or remove micro-packages it no longer uses)"
        )
    return text


def _size(count: int) -> str:
    return f"{count / MIB:.1f} MiB" if count >= MIB else f"{count:,} bytes"


def _render(lock: Lock) -> str:
    out = [HEADER, f"version = {LOCK_FORMAT}\n"]
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
        if entry.commit:
            out.append(f"commit = {_q(entry.commit)}\n")
        if entry.depends_on:
            out.append(f"depends-on = [{', '.join(_q(d) for d in sorted(entry.depends_on))}]\n")
        requirements = ", ".join(_q(r) for r in sorted(entry.requirements))
        out.append(f"requirements = [{requirements}]\n")
        if entry.conflicts:
            out.append(f"conflicts = [{', '.join(_q(c) for c in sorted(entry.conflicts))}]\n")
        if entry.created:
            out.append(f"created = [{', '.join(_q(c) for c in sorted(entry.created))}]\n")
        out.append(f"\n[{head}.options]\n")
        out.extend(f"{key} = {_q(value)}\n" for key, value in sorted(entry.options.items()))
        out.append(f"\n[{head}.files]\n")
        out.extend(f"{_q(path)} = {_q(digest)}\n" for path, digest in sorted(entry.files.items()))
        if entry.blobs:
            out.append(f"\n[{head}.blobs]\n")
            out.extend(f"{_q(path)} = {_q(blob)}\n" for path, blob in sorted(entry.blobs.items()))
        if entry.customised:
            out.append(f"\n[{head}.customised]\n")
            out.extend(f"{_q(path)} = {_q(digest)}\n" for path, digest in sorted(entry.customised.items()))
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
