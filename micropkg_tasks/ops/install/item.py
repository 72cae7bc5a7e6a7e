"""One sdist to install into a project, checked, with how to install it.

Pull, sync and prerelease build these; install (ops/install/apply.py) installs a batch of
them, and the dependency search (ops/install/dependencies.py) adds the ones a batch needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from micropkg_tasks.core.sdist.read import SdistContents


@dataclass(frozen=True)
class FetchedFrom:
    """Where a requested sdist came from, so its dependencies can be looked for next to it."""

    location: str  # as the user gave it
    kind: str  # path, url or index
    fs_args: str | None
    env: str


@dataclass(frozen=True)
class SdistToInstall:
    """A checked sdist and how to install it."""

    sdist: SdistContents
    location: str  # as recorded in the lock: never secrets
    alias: str | None = None
    destination: str | None = None
    env: str = "base"
    dependency_of: str | None = None  # set when fetched only because that micro-package imports it
    declared: bool = False  # a shared entry or a pull-manifest entry asks for it (else an ad-hoc pull)
    merge: bool = False  # its declaration asks for local edits to be merged (merge = true)
    fetched_from: FetchedFrom | None = None  # where it was fetched from, for its dependencies (--with-deps)
    commit: str | None = None  # a git source's commit it was packaged from
