"""Shared entries whose source project is in another git repository.

Such an entry (``source = "git+https://host/org/repo.git@main#projects/core"``) is read
like a sibling project once its ref is resolved: each distinct repository and ref is asked
for its commit once per run (``git ls-remote``), and the project's files at that commit
come from the cache, fetched into it the first time (``ops/sources/git.py``). The entry
then names that folder as its source, and the commit its targets' locks record.

An entry whose ref, path or module cannot be read fails alone, in one sentence naming it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.project.monorepo import Monorepo, SharedEntry
from micropkg_tasks.ops.sources.git import GitSourceError, project_at, resolve_commit, settings_timeout


def resolve_git_entries(
    monorepo: Monorepo, entries: Sequence[SharedEntry]
) -> tuple[tuple[SharedEntry, ...], dict[int, MicropkgError]]:
    """``entries`` with each git source resolved to its project's files at the commit its ref
    names now, and the entries that could not be (by index, with why). Entries of the
    monorepo itself pass through as they are."""
    if not any(entry.git is not None for entry in entries):
        return tuple(entries), {}
    timeout = settings_timeout(monorepo.settings, monorepo.config_path)  # a bad setting stops the run (exit 2)
    commits: dict[tuple[str, str], str | MicropkgError] = {}
    resolved: list[SharedEntry] = []
    failed: dict[int, MicropkgError] = {}
    for entry in entries:
        source = entry.git
        if source is None:
            resolved.append(entry)
            continue
        key = (source.identity, source.ref)
        if key not in commits:
            try:
                commits[key] = resolve_commit(source, timeout=timeout)
            except MicropkgError as exc:
                commits[key] = exc
        commit = commits[key]
        try:
            if isinstance(commit, MicropkgError):
                raise commit
            project = project_at(source, commit, timeout=timeout)
        except MicropkgError as exc:
            failed[entry.index] = GitSourceError(f"{entry.label}: {exc}")
            resolved.append(entry)
            continue
        resolved.append(replace(entry, source=project.root, commit=commit))
    return tuple(resolved), failed


def local_entries(entries: Sequence[SharedEntry]) -> tuple[SharedEntry, ...]:
    """The entries whose source is a project of the monorepo (no git source)."""
    return tuple(entry for entry in entries if entry.git is None)
