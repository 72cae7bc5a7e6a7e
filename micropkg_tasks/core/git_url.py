"""The git source form: ``git+<scheme>://<repository>@<ref>#[<path>:]<module path>``.

``git+https://host/org/repo.git@v1.2#projects/core:pipelines.data_cleaning`` names the
micro-package ``pipelines.data_cleaning`` of the project in ``projects/core`` of that
repository, at the tag, branch or commit ``v1.2``. The path is left out when the
project is the repository's root (``...@main#pipelines.data_cleaning``). The schemes
are ``https``, ``http``, ``ssh`` and ``file``.

Pure parsing: no git is run here. A URL's credentials (``https://user:token@host``)
are kept for git, and never part of what is shown (:attr:`GitSource.display`) or of
what identifies the repository (:attr:`GitSource.identity`).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass

from micropkg_tasks.core.errors import UsageError
from micropkg_tasks.core.redaction import redact_url, strip_url_credentials

PREFIX = "git+"
SCHEMES = ("https", "http", "ssh", "file")
# A full commit id: SHA-1 (40 hex digits) or SHA-256 (64).
COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# What git accepts as a ref name, less what could be read as an option or a range.
_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/+-]*")


@dataclass(frozen=True)
class GitSource:
    url: str  # the repository URL git is given, credentials and all: never shown, never stored
    ref: str  # tag, branch or full commit id
    path: str  # the project folder inside the repository, "" for its root
    module: str  # the micro-package's dotted module path in that project
    location: str  # the whole location as given

    @property
    def display(self) -> str:
        """The location with any credentials hidden: safe to show and to record in the lock."""
        return redact_git_location(self.location)

    @property
    def repository(self) -> str:
        """The repository URL without credentials: safe to show."""
        return strip_url_credentials(self.url)

    @property
    def identity(self) -> str:
        """What makes two locations the same repository: its URL without credentials or a
        trailing ``.git`` or slash."""
        text = self.repository.rstrip("/")
        return text[: -len(".git")] if text.endswith(".git") else text

    @property
    def key(self) -> str:
        """A file name for the repository in the cache: a hash, so no part of the URL is in it."""
        return hashlib.sha256(self.identity.encode("utf-8")).hexdigest()[:32]

    def with_module(self, module: str) -> "GitSource":
        """The same project at the same ref, naming another of its modules."""
        head = self.location.rpartition("#")[0]
        location = f"{head}#{self.path}:{module}" if self.path else f"{head}#{module}"
        return GitSource(url=self.url, ref=self.ref, path=self.path, module=module, location=location)

    @property
    def pinned(self) -> bool:
        """The ref is a full commit id, so it cannot move."""
        return COMMIT.fullmatch(self.ref) is not None


def is_git_location(location: str) -> bool:
    return location.startswith(PREFIX) and "://" in location


def redact_git_location(location: str) -> str:
    """``location`` with the credentials of its URL replaced by ``***``."""
    if not is_git_location(location):
        return location
    rest = location[len(PREFIX):]
    user = re.match(r"ssh://([A-Za-z0-9._-]+)@", rest)
    if user:  # ssh takes no password in a URL: its user name (git@) is no secret
        return f"{PREFIX}ssh://{user.group(1)}@{redact_url('ssh://' + rest[user.end():])[len('ssh://'):]}"
    return PREFIX + redact_url(rest)


def _split_ref(rest: str, shown: str) -> tuple[str, str]:
    """``scheme://host/repo.git@ref`` -> (``scheme://host/repo.git``, ``ref``); the ``@`` of
    the credentials, before the path, is not the ref's."""
    scheme, _, after = rest.partition("://")
    slash = after.find("/")
    if slash < 0:
        raise UsageError(f"{shown}: the repository URL has no path after its host")
    authority, path = after[:slash], after[slash:]
    repository_path, at, ref = path.rpartition("@")
    if not at:
        raise UsageError(f"{shown}: give the tag, branch or commit after an @, as in ...repo.git@v1.0#pipelines.x")
    if not _REF.fullmatch(ref) or ".." in ref or ref.endswith((".lock", "/", ".")):
        raise UsageError(f"{shown}: {ref!r} is not a tag, branch or commit name")
    return f"{scheme}://{authority}{repository_path}", ref


def _split_target(fragment: str, shown: str) -> tuple[str, str]:
    """``projects/core:pipelines.x`` -> (``projects/core``, ``pipelines.x``)."""
    folder, colon, module = fragment.rpartition(":")
    if not colon:
        folder, module = "", fragment
    if not module or not all(part.isidentifier() for part in module.split(".")):
        raise UsageError(f"{shown}: {module!r} after the # is not a dotted module path such as pipelines.x")
    folder = folder.strip("/")
    if folder:
        normal = posixpath.normpath(folder)
        if normal.startswith("..") or normal.startswith("/") or "\\" in folder or ".git" in normal.split("/"):
            raise UsageError(f"{shown}: {folder!r} is not a folder inside the repository")
        folder = "" if normal == "." else normal
    return folder, module


def parse_git_location(location: str) -> GitSource:
    """The parts of a git location, or a :class:`UsageError` naming what is wrong."""
    shown = redact_git_location(location)
    rest = location[len(PREFIX):]
    scheme = rest.partition("://")[0]
    if scheme not in SCHEMES:
        raise UsageError(f"{shown}: git sources use git+https://, git+http://, git+ssh:// or git+file://")
    head, hash_sep, fragment = rest.rpartition("#")
    if not hash_sep or not fragment:
        raise UsageError(f"{shown}: name the micro-package after a #, as in ...repo.git@v1.0#pipelines.x")
    if "?" in head:
        raise UsageError(f"{shown}: a git source takes no ?query")
    url, ref = _split_ref(head, shown)
    folder, module = _split_target(fragment, shown)
    return GitSource(url=url, ref=ref, path=folder, module=module, location=location)


def same_repository_ref(first: str, second: str) -> bool:
    """Whether two git locations name the same micro-package of one repository at one ref
    (whatever credentials each carries)."""
    try:
        a, b = parse_git_location(first), parse_git_location(second)
    except UsageError:
        return False
    return (a.identity, a.ref, a.path, a.module) == (b.identity, b.ref, b.path, b.module)
