"""Where the bytes of an sdist come from: the one seam between pull and storage.

A location is one of three kinds:

- ``path``: a local file (``dist/x-0.1.tar.gz``), relative to ``base``;
- ``url``: any fsspec URL (``s3://``, ``https://``, ``gs://``, ``file://``,
  ``memory://`` ...), read with the ``--fs-args`` and through the cache;
- ``index``: a package name with an optional version spec (``mypkg==0.2``),
  fetched with ``pip download --no-deps --no-binary :all:`` from the index pip
  is configured with (``PIP_INDEX_URL``, pip config files).

Pull only ever sees the bytes and a location that is safe to display and record.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from micropkg_tasks.core.errors import MicropkgError, UsageError
from micropkg_tasks.core.fs_args import redact_url, redact_urls_in
from micropkg_tasks.core.manifest import _is_requirement_spec, is_url

PATH, URL, INDEX = "path", "url", "index"
# Seconds a ``pip download`` may take before it is stopped.
INDEX_TIMEOUT = 300


@dataclass(frozen=True)
class FetchedSdist:
    location: str  # what the user gave, with any credentials in a URL redacted: safe to show and record
    data: bytes
    kind: str = PATH  # "path", "url" or "index"


def location_kind(location: str, base: Path | None = None) -> str:
    """Which kind of location this is; an existing local file always wins over a package name."""
    if is_url(location):
        return URL
    if _is_requirement_spec(location):
        path = Path(location)
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.exists():
            return INDEX
    return PATH


def fetch_sdist(
    location: str, *, fs_args: str | None = None, base: Path | None = None, use_cache: bool = True
) -> FetchedSdist:
    """Read the sdist at ``location``; relative paths resolve against ``base`` (default: cwd).

    Remote sdists are kept in a local content-addressed cache unless ``use_cache`` is False.
    """
    kind = location_kind(location, base)
    if kind == URL:
        from micropkg_tasks.ops.remote import fetch_bytes

        return FetchedSdist(redact_url(location), fetch_bytes(location, fs_args=fs_args, use_cache=use_cache), URL)
    if fs_args:
        where = "a package index (pip's own config sets its URL and credentials)" if kind == INDEX else "a local file"
        raise UsageError(f"--fs-args only applies to fsspec URLs; {location} is {where}")
    if kind == INDEX:
        return FetchedSdist(location, fetch_from_index(location, use_cache=use_cache), INDEX)
    path = Path(location)
    if not path.is_absolute() and base is not None:
        path = base / path
    if path.is_dir():
        raise UsageError(f"{location} is a folder, not an sdist (.tar.gz) file")
    if not path.exists():
        raise UsageError(f"sdist {location} does not exist")
    try:
        return FetchedSdist(location, path.read_bytes(), PATH)
    except OSError as exc:
        raise MicropkgError(f"could not read {location}: {exc.strerror or exc}") from None


def _requirement(spec: str):
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(spec)
    except InvalidRequirement:
        raise UsageError(
            f"{spec!r} is not a local file, an fsspec URL or a package spec such as name==1.2"
        ) from None
    if requirement.url or requirement.marker:
        raise UsageError(f"{spec!r}: a package spec to pull is a name and an optional version spec, nothing more")
    return requirement


def _pip_failure(spec: str, name: str, output: str) -> str:
    """One line from pip's output: what went wrong, without pip's traceback or credentials."""
    versions = re.search(r"\(from versions: ([^)]*)\)", output)
    if versions:
        found = versions.group(1).strip()
        if found in ("", "none"):
            return f"{spec}: no distribution named {name} on the index"
        return f"{spec}: no sdist of {name} matching the spec on the index (versions there: {found})"
    if re.search(r"HTTP error 40[13]|401 Client Error|403 Client Error", output):
        return f"{spec}: the package index denied access (check the credentials in PIP_INDEX_URL or pip config)"
    if re.search(r"Cannot import 'setuptools|No module named 'setuptools", output):
        return f"{spec}: pip needs setuptools in this environment to read the sdist's metadata; install setuptools"
    if "No module named pip" in output:
        return f"{spec}: pip is not installed in this Python environment ({sys.executable})"
    if re.search(r"NewConnectionError|Max retries exceeded|ConnectTimeout|ReadTimeout|Could not fetch URL", output):
        return f"{spec}: could not reach the package index"
    errors = [line.strip()[len("ERROR:"):].strip() for line in output.splitlines() if line.strip().startswith("ERROR:")]
    detail = errors[-1] if errors else (output.strip().splitlines() or ["pip download failed"])[-1].strip()
    return f"{spec}: pip download failed: {detail}"


def fetch_from_index(spec: str, *, use_cache: bool = True, timeout: float = INDEX_TIMEOUT) -> bytes:
    """Download the sdist for ``spec`` with pip from the configured index.

    pip runs as a subprocess with this process's environment, so ``PIP_INDEX_URL``,
    ``PIP_EXTRA_INDEX_URL`` and pip config files apply. ``--no-build-isolation``
    makes pip read the sdist's metadata with the setuptools already installed
    here, instead of fetching (and, with ``--no-binary :all:``, compiling)
    setuptools from the index. ``use_cache=False`` adds ``--no-cache-dir``.
    """
    requirement = _requirement(spec)
    with tempfile.TemporaryDirectory(prefix="micropkg-pip-") as folder:
        dest = Path(folder) / "dest"
        dest.mkdir()
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--no-build-isolation", "--no-input", "--progress-bar", "off", "--dest", str(dest),
        ]
        if not use_cache:
            command.append("--no-cache-dir")
        command.append(spec)
        try:
            done = subprocess.run(
                command, cwd=folder, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=timeout, env=dict(os.environ),
            )
        except subprocess.TimeoutExpired:
            raise MicropkgError(f"{spec}: pip download timed out after {timeout:g} s") from None
        except OSError as exc:
            raise MicropkgError(f"{spec}: could not run pip: {exc.strerror or exc}") from None
        if done.returncode != 0:
            raise MicropkgError(redact_urls_in(_pip_failure(spec, requirement.name, done.stdout + "\n" + done.stderr)))
        files = sorted(dest.iterdir())
        sdists = [path for path in files if path.name.endswith((".tar.gz", ".tgz"))]
        if len(sdists) != 1:
            names = ", ".join(path.name for path in files) or "nothing"
            raise MicropkgError(f"{spec}: expected one .tar.gz sdist from the index, pip downloaded {names}")
        return sdists[0].read_bytes()
