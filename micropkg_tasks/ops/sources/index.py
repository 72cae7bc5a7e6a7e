"""Fetch a micro-package sdist by name from a PyPI-like index, without running anything from it.

``pip download`` would prepare the sdist's metadata, which runs its build
backend (and any ``setup.py`` in it): code from the archive. So we speak the
index's simple API ourselves (PEP 503 HTML or PEP 691 JSON), choose the newest
``.tar.gz`` that matches the version spec, download it and check its sha256.
The index is the one pip is configured with: ``PIP_INDEX_URL`` and
``PIP_EXTRA_INDEX_URL``, or ``index-url``/``extra-index-url`` in pip's config
files (read with ``pip config list``), else PyPI.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from micropkg_tasks.core.change.bounded import MAX_SDIST_BYTES
from micropkg_tasks.core.errors import MicropkgError, UsageError
from micropkg_tasks.core.fs_args import redact_url, redact_urls_in

DEFAULT_INDEX = "https://pypi.org/simple/"
TIMEOUT = 60  # seconds per request
MAX_DOWNLOAD = MAX_SDIST_BYTES  # the sdist reader applies the real caps; this bounds memory
_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"


@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    version: Version
    sha256: str | None
    yanked: bool


def parse_spec(spec: str) -> Requirement:
    try:
        requirement = Requirement(spec)
    except InvalidRequirement:
        raise UsageError(
            f"{spec!r} is not a local file, an fsspec URL or a package spec such as name==1.2"
        ) from None
    if requirement.url or requirement.marker or requirement.extras:
        raise UsageError(f"{spec!r}: a package spec to pull is a name and an optional version spec, nothing more")
    return requirement


def _pip_config() -> dict[str, str]:
    """``pip config list`` as ``{key: value}``, most specific source last so it wins.

    When pip's configuration cannot be read, the index the user configured is
    unknown. Falling back to PyPI then would send a private package's name to the
    public index (dependency confusion), so that is an error, never a default.
    """
    command = [sys.executable, "-m", "pip", "config", "list"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MicropkgError(
            f"could not read pip's configuration to find the package index ({type(exc).__name__}: "
            f"{redact_urls_in(str(exc))}); set PIP_INDEX_URL and PIP_EXTRA_INDEX_URL to pull by name"
        ) from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        why = redact_urls_in(" ".join(lines))[:400] if lines else f"exit code {done.returncode}"
        raise MicropkgError(
            f"could not read pip's configuration to find the package index ('pip config list' failed: {why}); "
            "fix it, or set PIP_INDEX_URL and PIP_EXTRA_INDEX_URL to pull by name"
        )
    ranked: list[tuple[int, str, str]] = []
    order = {"global": 0, "user": 1, "site": 2, ":env:": 3}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep or "." not in key:
            continue
        section, _, name = key.rpartition(".")
        variant = section.split(".")[0] if section != ":env:" else ":env:"
        if section.split(".")[-1] not in ("global", "download", ":env:") and section != ":env:":
            continue
        ranked.append((order.get(variant, 0), name, value.strip().strip("'\"")))
    return {name: value for _, name, value in sorted(ranked, key=lambda item: item[0])}


def configured_indexes() -> list[str]:
    """The index URLs pip would search, main index first."""
    env_index = os.environ.get("PIP_INDEX_URL")
    env_extra = os.environ.get("PIP_EXTRA_INDEX_URL")
    no_index = os.environ.get("PIP_NO_INDEX", "").lower() in ("1", "true", "yes", "on")
    config = {} if env_index and env_extra is not None else _pip_config()
    if no_index or config.get("no-index", "").lower() in ("1", "true", "yes", "on"):
        raise UsageError(
            "pip is configured with no-index, so no package index is available; "
            "set PIP_INDEX_URL (or index-url in pip config) to pull by name"
        )
    main = env_index or config.get("index-url") or DEFAULT_INDEX
    extra = env_extra if env_extra is not None else config.get("extra-index-url", "")
    return [main, *extra.split()]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, bool]] = []  # (href, text, yanked)
        self._href: str | None = None
        self._yanked = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            values = dict(attrs)
            self._href = values.get("href")
            self._yanked = "data-yanked" in values

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links.append((self._href, data.strip(), self._yanked))
            self._href = None


def _open(url: str):
    """urlopen with credentials from the URL's user info (as pip accepts them) and a timeout."""
    parts = urllib.parse.urlsplit(url)
    headers = {"Accept": _ACCEPT, "User-Agent": "micropkg-tasks"}
    if parts.username is not None:
        token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    opener = urllib.request.build_opener(_SameOriginCredentials)
    return opener.open(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)


class _SameOriginCredentials(urllib.request.HTTPRedirectHandler):
    """urllib forwards every header on a redirect; index credentials must not follow one to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            old, target = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(new.full_url)
            if (old.scheme, old.hostname, old.port) != (target.scheme, target.hostname, target.port):
                new.remove_header("Authorization")
        return new


def _version_of(filename: str, name: str) -> Version | None:
    """``name-1.2.tar.gz`` -> 1.2, if the name part is ``name`` (compared canonically)."""
    if not filename.endswith(".tar.gz"):
        return None
    stem = filename[: -len(".tar.gz")]
    for position in range(len(stem) - 1, 0, -1):
        if stem[position] == "-" and canonicalize_name(stem[:position]) == name:
            try:
                return Version(stem[position + 1 :])
            except InvalidVersion:
                # Not a version pip could match a spec against either; the file is not a candidate.
                return None
    return None


def _local_page(page: str) -> tuple[bytes, str, str] | None:
    """A ``file://`` index page that is a folder: its ``index.html``, or links to its files."""
    folder = Path(urllib.request.url2pathname(urllib.parse.urlsplit(page).path))
    if not folder.is_dir():
        return None
    if (folder / "index.html").is_file():
        return (folder / "index.html").read_bytes(), "text/html", page
    links = "".join(f'<a href="{urllib.parse.quote(p.name)}">{p.name}</a>' for p in sorted(folder.iterdir()))
    return links.encode(), "text/html", page


class _Missing(Exception):
    """The index has no page for the name (404, or no such folder)."""


def _fetch_page(page: str, index: str) -> tuple[bytes, str, str]:
    """The project page's body, content type and final URL."""
    try:
        with _open(page) as response:
            return response.read(16 * 1024 * 1024), response.headers.get("Content-Type", ""), response.geturl()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise _Missing from None
        if exc.code in (401, 403):
            raise MicropkgError(
                f"the package index {redact_url(index)} denied access "
                "(check the credentials in PIP_INDEX_URL or pip config)"
            ) from None
        raise MicropkgError(f"the package index {redact_url(index)} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        if isinstance(getattr(exc, "reason", None), FileNotFoundError) or isinstance(exc, FileNotFoundError):
            raise _Missing from None
        raise MicropkgError(f"could not reach the package index {redact_url(index)}") from None


def _files_on(index: str, name: str) -> list[IndexFile]:
    page = index.rstrip("/") + f"/{name}/"
    local = _local_page(page) if page.startswith("file:") else None
    try:
        body, kind, final = local if local is not None else _fetch_page(page, index)
    except _Missing:
        return []
    return _parse_page(body, kind, final, name)


def _parse_page(body: bytes, kind: str, final: str, name: str) -> list[IndexFile]:
    entries: list[tuple[str, str, str | None, bool]] = []  # (filename, url, sha256, yanked)
    if "json" in kind:
        entries = _json_entries(body, final)
    else:
        parser = _Links()
        parser.feed(body.decode("utf-8", "replace"))
        for href, text, yanked in parser.links:
            url, _, fragment = href.partition("#")
            digest = fragment[len("sha256="):] if fragment.startswith("sha256=") else None
            filename = urllib.parse.unquote(url.rsplit("/", 1)[-1]) or text
            entries.append((filename, url, digest, yanked))
    files = []
    for filename, url, digest, yanked in entries:
        version = _version_of(filename, name)
        if version is not None:
            files.append(IndexFile(filename, urllib.parse.urljoin(final, url), version, digest, yanked))
    return files


def _json_entries(body: bytes, page: str) -> list[tuple[str, str, str | None, bool]]:
    """The files of a PEP 691 JSON project page; anything malformed is one sentence naming the page."""
    try:
        files = json.loads(body).get("files", [])
        entries = []
        for item in files:
            digest = (item.get("hashes") or {}).get("sha256")
            filename, url = item["filename"], item["url"]
            if not all(isinstance(value, str) for value in (filename, url)) or not isinstance(digest, (str, type(None))):
                raise TypeError
            entries.append((filename, url, digest, bool(item.get("yanked"))))
        return entries
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        raise MicropkgError(
            f"the package index page {redact_url(page)} is not valid PEP 691 JSON (a 'files' list of "
            "objects with 'filename' and 'url')"
        ) from None


def _credentials_for(url: str, indexes: list[str]) -> str:
    """``url`` with the user info of the configured index on the same host and port, as pip
    sends index credentials to file links on the index's own host."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None or not parts.hostname:
        return url
    for index in indexes:
        index_parts = urllib.parse.urlsplit(index)
        same_origin = (index_parts.scheme, index_parts.hostname, index_parts.port) == (
            parts.scheme, parts.hostname, parts.port
        )
        if same_origin and index_parts.username is not None:
            userinfo = index_parts.netloc.rpartition("@")[0]
            return urllib.parse.urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))
    return url


def _download(file: IndexFile, spec: str, indexes: list[str]) -> bytes:
    try:
        with _open(_credentials_for(file.url, indexes)) as response:
            data = response.read(MAX_DOWNLOAD + 1)
    except urllib.error.HTTPError as exc:
        raise MicropkgError(f"{spec}: could not download {file.filename} from the package index (HTTP {exc.code})") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise MicropkgError(
            f"{spec}: could not download {file.filename} from the package index ({redact_url(str(reason))})"
        ) from None
    if len(data) > MAX_DOWNLOAD:
        raise MicropkgError(f"{spec}: {file.filename} is larger than {MAX_DOWNLOAD // (1024 * 1024)} MiB")
    if file.sha256 and hashlib.sha256(data).hexdigest() != file.sha256.lower():
        raise MicropkgError(f"{spec}: {file.filename} does not match the sha256 the index gives for it")
    return data


def fetch_from_index(spec: str) -> tuple[str, bytes]:
    """The newest matching sdist for ``spec``: its file name and bytes."""
    requirement = parse_spec(spec)
    name = canonicalize_name(requirement.name)
    exact = any(s.operator in ("==", "===") for s in requirement.specifier)
    candidates: list[IndexFile] = []
    indexes = configured_indexes()
    for index in indexes:
        candidates += _files_on(index, name)
    if not candidates:
        raise MicropkgError(f"{spec}: no distribution named {requirement.name} on the index")
    # Yanked files count only when pinned exactly, as pip does.
    usable = [f for f in candidates if not f.yanked or exact]
    # filter() applies pip's rule: pre-releases only when named, or when nothing else matches.
    allowed = set(requirement.specifier.filter(sorted({f.version for f in usable})))
    matching = [f for f in usable if f.version in allowed]
    if not matching:
        versions = ", ".join(str(v) for v in sorted({f.version for f in candidates}))
        raise MicropkgError(
            f"{spec}: no sdist of {requirement.name} matching the spec on the index (versions there: {versions})"
        )
    best = max(matching, key=lambda f: f.version)
    return best.filename, _download(best, spec, indexes)
