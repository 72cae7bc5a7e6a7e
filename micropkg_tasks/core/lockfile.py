"""``micropkg.lock``: what each pull installed, so updates know what they may touch.

The file is TOML, written in sorted order with a trailing newline so that it
diffs cleanly in review. Each entry records the installed module path, where
it came from, the version and sha256 of the sdist, the options, the
requirements the pull added, and every installed file with its sha256.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.project import read_toml, tomlkit_to_plain

LOCK_FORMAT = 1
_HEADER = "# Written by micropkg-tasks: what each pulled micro-package installed. Do not edit by hand.\n"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str | None:
    """The file's digest, or None if it does not exist."""
    try:
        return sha256_bytes(path.read_bytes())
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
        entries[str(module)] = LockEntry(
            module=str(module),
            name=str(_string(where, raw, "name")),
            source=str(_string(where, raw, "source")),
            version=str(_string(where, raw, "version")),
            sdist_sha256=str(_string(where, raw, "sdist-sha256")),
            source_sha256=_string(where, raw, "source-sha256", optional=True),
            options=_string_map(where, raw, "options"),
            requirements=[str(r) for r in requirements],
            files=_string_map(where, raw, "files"),
            origin=_string(where, raw, "origin", optional=True),
            depends_on=[str(d) for d in depends_on],
        )
    return Lock(entries)


def read_lock(path: Path) -> Lock:
    """The lock at ``path``; an absent file is an empty lock."""
    if not path.exists():
        return Lock()
    return parse_lock(tomlkit_to_plain(read_toml(path)), display=str(path))


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


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
        out.append(f"\n[{head}.options]\n")
        out.extend(f"{key} = {_q(value)}\n" for key, value in sorted(entry.options.items()))
        out.append(f"\n[{head}.files]\n")
        out.extend(f"{_q(path)} = {_q(digest)}\n" for path, digest in sorted(entry.files.items()))
    return "".join(out)
