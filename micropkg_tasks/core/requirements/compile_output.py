"""What a compiled ``requirements.txt`` may hold, checked before it is written (SPEC §9).

Teams commit ``requirements.txt``, so it must not carry this machine's index
settings or anybody's credentials. pip-compile is told not to write index,
trusted-host and find-links lines (``--no-emit-...``) unless the project asks
for them, but its flags are not trusted alone: the text it wrote is scrubbed
again here, and refused if a credential from the environment survives.

* :func:`scrubbed` drops index, trusted-host and find-links lines that were not
  asked for, and strips credentials from every URL left (header included).
* :func:`environment_secrets` lists the credentials the compile could have seen
  in ``PIP_*``/``UV_*`` variables and config arguments, for the final check.
* :func:`unreadable_pip_config` explains, in one sentence, a ``PIP_CONFIG_FILE``
  that pip would silently skip (a folder, an unreadable file) or hang on (a FIFO).
"""

from __future__ import annotations

import os
import re
import stat
from typing import Iterable, Mapping

from micropkg_tasks.core.redaction import strip_credentials
from micropkg_tasks.core.requirements.compile_settings import CompileSettings

_INDEX_OPTIONS = ("--index-url", "-i", "--extra-index-url", "--trusted-host")
_FIND_LINKS_OPTIONS = ("--find-links", "-f")
# Variables through which pip or uv may be given an index or find-links location.
_LOCATION_VARIABLES = (
    "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS",
    "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX", "UV_DEFAULT_INDEX", "UV_FIND_LINKS",
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
_ENV_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
# Shorter values are not checked for: "user" or "token" may be words of a package name.
_MIN_CHECKED = 8


def _option_of(line: str) -> str:
    word = line.strip().split(None, 1)[0] if line.strip() else ""
    return word.split("=", 1)[0]


def scrubbed(text: str, settings: CompileSettings) -> str:
    """``text`` without the index or find-links lines ``settings`` did not ask for, and
    without credentials anywhere."""
    dropped: tuple[str, ...] = ()
    if not settings.emit_index_url:
        dropped += _INDEX_OPTIONS
    if not settings.emit_find_links:
        dropped += _FIND_LINKS_OPTIONS
    lines = [line for line in text.splitlines(keepends=True) if _option_of(line) not in dropped]
    return strip_credentials("".join(lines))


def _credentials_in(value: str) -> Iterable[str]:
    for match in _URL.finditer(value):
        rest = match.group(0).partition("://")[2]
        end = min((index for index in (rest.find(c) for c in "/?#") if index >= 0), default=len(rest))
        userinfo, at, _ = rest[:end].rpartition("@")
        if at:
            yield from (part for part in userinfo.split(":", 1)[-1:] if not _ENV_REFERENCE.fullmatch(part))
        query = rest[end:].partition("#")[0].partition("?")[2]
        yield from (piece.partition("=")[2] for piece in query.split("&"))


def environment_secrets(environ: Mapping[str, str], args: Iterable[str]) -> dict[str, str]:
    """``{credential: where it came from}`` for the passwords, tokens and query values in the
    index and find-links variables of ``environ`` and in ``args``."""
    found: dict[str, str] = {}
    sources = [(f"${name}", environ.get(name, "")) for name in _LOCATION_VARIABLES]
    sources.extend(("the compile args from config", arg) for arg in args)
    for where, value in sources:
        for secret in _credentials_in(value):
            if len(secret) >= _MIN_CHECKED:
                found.setdefault(secret, where)
    return found


def unreadable_pip_config(environ: Mapping[str, str]) -> str | None:
    """Why ``PIP_CONFIG_FILE`` cannot be used, or None when it can (or is unset, missing or
    ``os.devnull``, which pip itself accepts)."""
    path = environ.get("PIP_CONFIG_FILE")
    if not path or path == os.devnull:
        return None
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"the pip configuration file {path} (PIP_CONFIG_FILE) cannot be read: {exc.strerror or exc}"
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        return f"the pip configuration file {path} (PIP_CONFIG_FILE) is {kind}; point PIP_CONFIG_FILE at a pip.conf file"
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        return f"the pip configuration file {path} (PIP_CONFIG_FILE) cannot be read: {exc.strerror or exc}"
    return None
