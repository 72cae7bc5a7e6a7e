"""A small content-addressed cache of fetched sdists, under the user cache folder.

Layout::

    <cache>/sdists/<sha256>.tar.gz      the bytes, named by their sha256
    <cache>/index/<key>.json            {"fingerprint": ..., "sha256": ...}

``<key>`` is the sha256 of the location plus the endpoint it was read from
(so the same ``s3://bucket/key`` on two S3-compatible stores never mixes).
The fingerprint comes from the remote file's metadata (ETag, last-modified
time, size). A pull whose location and fingerprint match an entry reads the
blob instead of downloading; the blob's sha256 is checked on every read.

Every write is atomic (temporary file, then a rename: core/change/atomic.py). The cache is an
optimisation only: any error reading or writing it is ignored and the sdist
is downloaded as if there were no cache. No secret is stored: index files hold
only hashes and the fingerprint.

The folder is ``$MICROPKG_CACHE_DIR``, else ``$XDG_CACHE_HOME/micropkg-tasks``,
else ``~/.cache/micropkg-tasks``. At most ``MAX_BLOBS`` blobs are kept; the
least recently used go first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from micropkg_tasks.core.change.atomic import write_atomically

MAX_BLOBS = 256
# fs.info() keys that change when the content changes. Size alone is too weak
# to trust (a same-size rewrite would be missed), so it only counts next to one of these.
_STRONG_KEYS = (
    "ETag", "etag", "Content-MD5", "md5Hash", "md5", "Digest", "crc32c", "generation", "VersionId",
    "LastModified", "Last-Modified", "last_modified", "mtime", "updated", "created",
)


def cache_dir() -> Path:
    explicit = os.environ.get("MICROPKG_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "micropkg-tasks"


def fingerprint(info: Mapping[str, Any]) -> str | None:
    """A string that changes whenever the remote file does, or None if the metadata is too weak."""
    strong = {key: str(info[key]) for key in _STRONG_KEYS if info.get(key) not in (None, "")}
    if not strong:
        return None
    strong["size"] = str(info.get("size"))
    return json.dumps(strong, sort_keys=True)


def cache_key(location: str, endpoint: str | None) -> str:
    return hashlib.sha256(f"{location}\0{endpoint or ''}".encode()).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomically(path, data)


class SdistCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_dir()

    def blob_path(self, sha256: str) -> Path:
        return self.root / "sdists" / f"{sha256}.tar.gz"

    def _index_path(self, key: str) -> Path:
        return self.root / "index" / f"{key}.json"

    def lookup(self, key: str, print_: str | None) -> bytes | None:
        """The cached bytes for ``key`` if its fingerprint is ``print_`` and the blob is intact."""
        if print_ is None:
            return None
        try:
            entry = json.loads(self._index_path(key).read_text(encoding="utf-8"))
            if entry.get("fingerprint") != print_:
                return None
            sha = str(entry["sha256"])
            blob = self.blob_path(sha)
            data = blob.read_bytes()
        except (OSError, ValueError, KeyError, TypeError):
            # An unreadable or corrupt entry is a cache miss: the sdist is fetched again and
            # checked as usual, so nothing the user asked for is skipped.
            return None
        if hashlib.sha256(data).hexdigest() != sha:
            with contextlib.suppress(OSError):
                blob.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(blob)  # least recently used goes first when pruning
        return data

    def store(self, key: str, print_: str | None, data: bytes) -> None:
        """Keep ``data`` for ``key``; without a fingerprint it could never be found again, so skip it."""
        if print_ is None:
            return
        sha = hashlib.sha256(data).hexdigest()
        try:
            blob = self.blob_path(sha)
            if not blob.is_file():
                _atomic_write(blob, data)
            else:
                os.utime(blob)
            entry = {"fingerprint": print_, "sha256": sha}
            _atomic_write(self._index_path(key), json.dumps(entry, sort_keys=True).encode())
            self._prune()
        except OSError:
            pass  # a cache that cannot be written is no cache; the pull goes on

    def _prune(self) -> None:
        blobs = list((self.root / "sdists").glob("*.tar.gz"))
        if len(blobs) <= MAX_BLOBS:
            return
        blobs.sort(key=lambda path: path.stat().st_mtime)
        for path in blobs[: len(blobs) - MAX_BLOBS]:
            with contextlib.suppress(OSError):
                path.unlink()
