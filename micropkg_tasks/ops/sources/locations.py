"""Where the bytes of an sdist come from: the one seam between pull and storage.

A location is one of four kinds:

- ``path``: a local file (``dist/x-0.1.tar.gz``), relative to ``base``;
- ``url``: any fsspec URL (``s3://``, ``https://``, ``gs://``, ``file://``,
  ``memory://`` ...), read with the ``--fs-args`` and through the cache;
- ``index``: a package name with an optional version spec (``mypkg==0.2``),
  fetched from the index pip is configured with (``PIP_INDEX_URL``, pip config
  files) through its simple API, so nothing in the sdist is ever run;
- ``sibling``: a micro-package of a project folder (``../core#pipelines.x``), packaged in memory;
- ``git``: a micro-package of a project in a git repository at a ref
  (``git+https://host/org/repo.git@v1#projects/core:pipelines.x``), fetched into the cache
  by ``ops/sources/git.py`` and packaged in memory as a sibling's is.

Pull only ever sees the bytes and a location that is safe to display and record.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from micropkg_tasks.core.change.bounded import MAX_SDIST_BYTES, read_file_bytes
from micropkg_tasks.core.errors import MicropkgError, UsageError
from micropkg_tasks.core.fs_args import redact_url
from micropkg_tasks.core.git_url import is_git_location, parse_git_location, redact_git_location
from micropkg_tasks.core.project.manifest import is_requirement_spec, is_url

PATH, URL, INDEX, SIBLING, GIT = "path", "url", "index", "sibling", "git"


@dataclass(frozen=True)
class FetchedSdist:
    location: str  # what the user gave, with any credentials in a URL redacted: safe to show and record
    data: bytes
    kind: str = PATH  # "path", "url", "index", "sibling" or "git"
    commit: str | None = None  # git sources: the commit it was packaged from


def split_sibling(location: str) -> tuple[str, str] | None:
    """``../core#pipelines.x`` -> (``../core``, ``pipelines.x``); None for any other location."""
    if is_url(location) or "#" not in location:
        return None
    folder, _, module = location.rpartition("#")
    if not folder or not module or not all(part.isidentifier() for part in module.split(".")):
        return None
    return folder, module


def location_kind(location: str, base: Path | None = None) -> str:
    """Which kind of location this is; an existing local file always wins over a package name."""
    if is_git_location(location):
        return GIT
    if is_url(location):
        return URL
    if split_sibling(location) is not None:
        return SIBLING
    if is_requirement_spec(location):
        path = Path(location)
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.exists():
            return INDEX
    return PATH


def source_identity(location: str, name: str, base: Path | None = None, origin: str | None = None) -> str:
    """What makes two locations the same source of a micro-package called ``name``.

    A sibling micro-package is its project folder and module path, and so is that
    sibling's own build in its ``dist/`` folder (``origin``, ``<package>#<module path>``
    from the sdist, says which module it was built from). Every other released sdist
    of ``name`` (a file, a URL, a package spec) is one source: a newer release may come
    from another folder or bucket. So a copy synced from a sibling and an sdist of it
    from elsewhere are two sources; two sdists of the same micro-package are one.
    """
    if is_git_location(location):
        try:
            source = parse_git_location(location)
        except UsageError:  # a malformed one (a lock edited by hand) is only ever itself
            return f"git:{redact_git_location(location)}"
        return f"git:{source.identity}#{source.path}:{source.module}"  # any ref: the same source, moving on
    sibling = split_sibling(location)
    if sibling is not None and location_kind(location, base) == SIBLING:
        folder, module = sibling
        return f"{_folder_key(folder, base)}#{module}"
    built = _built_in_sibling(location, base, origin)
    return built if built is not None else f"sdist:{canonicalize_name(name)}"


def _folder_key(folder: str, base: Path | None) -> str:
    if base is None:
        return posixpath.normpath(Path(folder).as_posix())
    return Path(os.path.normpath(base / folder)).as_posix()


def _built_in_sibling(location: str, base: Path | None, origin: str | None) -> str | None:
    """``<sibling>#<module>`` for an sdist a sibling project built into its own ``dist/``, else None."""
    if base is None or not origin or "#" not in origin or is_url(location):
        return None
    from micropkg_tasks.core.project.project import is_project_dir

    path = Path(os.path.normpath(base / location))
    if path.parent.name != "dist" or not is_project_dir(path.parent.parent):
        return None
    return f"{path.parent.parent.as_posix()}#{origin.split('#', 1)[1]}"


def _build_sibling(location: str, base: Path | None, alias: str | None, env: str) -> FetchedSdist:
    from micropkg_tasks.core.project.project import is_project_dir, load_project
    from micropkg_tasks.ops.package.build import build_package

    folder, module = split_sibling(location)  # type: ignore[misc]
    path = Path(folder)
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    path = Path(os.path.normpath(path))
    if not is_project_dir(path):
        raise UsageError(
            f"{location}: {folder} is not a project folder (no pyproject.toml with a package_name), "
            "so its micro-package cannot be packaged"
        )
    built = build_package(load_project(path), module, alias, env, for_distribution=False)
    return FetchedSdist(location, built.data, SIBLING)


def fetch_sdist(
    location: str,
    *,
    fs_args: str | None = None,
    base: Path | None = None,
    use_cache: bool = True,
    alias: str | None = None,
    env: str = "base",
    commit: str | None = None,  # git: the commit a lock recorded, else the one its ref names now
    git_timeout: float | None = None,  # git: seconds per git command (default: MICROPKG_GIT_TIMEOUT, else 120)
) -> FetchedSdist:
    """Read the sdist at ``location``; relative paths resolve against ``base`` (default: cwd).

    Remote sdists are kept in a local content-addressed cache unless ``use_cache`` is False.
    A sibling micro-package is packaged in memory, named after ``alias`` and with the
    parameters of ``env``, exactly as ``sync-shared`` packages it; so is a git source's.
    """
    kind = location_kind(location, base)
    if kind == GIT:
        if fs_args:
            raise UsageError(f"--fs-args only applies to fsspec URLs; {redact_url(location)} is a git source (git uses its own configuration)")
        from micropkg_tasks.ops.sources.git import package_at, resolve_commit

        source = parse_git_location(location)
        commit = commit or resolve_commit(source, timeout=git_timeout)
        return FetchedSdist(source.display, package_at(source, commit, alias, env, timeout=git_timeout), GIT, commit)
    if kind == SIBLING:
        if fs_args:
            raise UsageError(f"--fs-args only applies to fsspec URLs; {location} is a sibling project's micro-package")
        return _build_sibling(location, base, alias, env)
    if kind == URL:
        from micropkg_tasks.ops.sources.remote import fetch_bytes

        return FetchedSdist(redact_url(location), fetch_bytes(location, fs_args=fs_args, use_cache=use_cache), URL)
    if fs_args and kind == INDEX:
        raise UsageError(
            f"--fs-args only applies to files and fsspec URLs; {location} is a package index spec "
            "(pip's own config sets its URL and credentials)"
        )
    if kind == INDEX:
        from micropkg_tasks.ops.sources.index import fetch_from_index

        return FetchedSdist(location, fetch_from_index(location)[1], INDEX)
    path = Path(location)
    if not path.is_absolute() and base is not None:
        path = base / path
    if path.is_dir():
        raise UsageError(f"{location} is a folder, not an sdist (.tar.gz) file")
    if not path.exists():
        raise UsageError(f"sdist {location} does not exist")
    if fs_args:
        # As Kedro did: the arguments go to fsspec's local filesystem.
        from micropkg_tasks.ops.sources.remote import fetch_bytes

        return FetchedSdist(location, fetch_bytes(path.resolve().as_uri(), fs_args=fs_args, use_cache=False), PATH)
    try:
        data = read_file_bytes(path, display=location, limit=MAX_SDIST_BYTES, error=MicropkgError)
        return FetchedSdist(location, data, PATH)
    except OSError as exc:
        raise MicropkgError(f"could not read {location}: {exc.strerror or exc}") from None
