"""Where the bytes of an sdist come from: the one seam between pull and storage.

A location is a local path, an fsspec URL, or a package name with an optional
version spec (fetched from an index). Pull only ever sees the bytes and a
display name that holds no secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from micropkg_tasks.core.errors import MicropkgError, UsageError
from micropkg_tasks.core.manifest import is_url


@dataclass(frozen=True)
class FetchedSdist:
    location: str  # what the user gave, as recorded in the lock
    data: bytes


def fetch_sdist(
    location: str, *, fs_args: str | None = None, base: Path | None = None, use_cache: bool = True
) -> FetchedSdist:
    """Read the sdist at ``location``; relative paths resolve against ``base`` (default: cwd).

    Remote sdists are kept in a local content-addressed cache unless ``use_cache`` is False.
    """
    if is_url(location):
        from micropkg_tasks.ops.remote import fetch_bytes

        return FetchedSdist(location, fetch_bytes(location, fs_args=fs_args))
    path = Path(location)
    if not path.is_absolute() and base is not None:
        path = base / path
    if path.is_dir():
        raise UsageError(f"{location} is a folder, not an sdist (.tar.gz) file")
    if not path.exists():
        if not location.endswith((".tar.gz", ".tgz")) and "/" not in location:
            raise UsageError(
                f"{location} is not a file; pulling a package by name from an index is not supported yet"
            )
        raise UsageError(f"sdist {location} does not exist")
    try:
        return FetchedSdist(location, path.read_bytes())
    except OSError as exc:
        raise MicropkgError(f"could not read {location}: {exc.strerror or exc}") from None
