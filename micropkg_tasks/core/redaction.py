"""The one redaction every piece of text we show passes through (SPEC §8).

Messages, warnings, ``--json`` output and, under ``--debug``, log records of
any library reach people through the sinks in ``cli/output.py``, which call
:func:`redact_text`. It hides:

* credentials in a URL's user info (``https://user:pass@host``), also when the
  URL does not parse;
* query-string values, except a few known to be harmless (``?auth=...``,
  ``?X-Amz-Signature=...``);
* the credential of an ``Authorization`` header and of ``token``/``Bearer``/
  ``Basic`` schemes;
* every secret registered with :func:`register_secrets` (the string values of
  an fs-args file, the values of the environment variables it expanded).

Requirement lines with URLs (``pkg @ https://user:pass@host/pkg.tar.gz``) are
plain text with URLs inside, so they are covered too. Pure functions and one
process-wide set of registered secrets; no I/O.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"
# Strings shorter than this are not treated as secrets: redacting "s3" or "no"
# would mangle messages and such short values are not credentials anyway.
MIN_SECRET_LENGTH = 4
# Query parameters whose values are shown; every other value may be a credential
# (pre-signed URLs, SAS tokens, "?auth=", "?key=", API keys under any name).
_HARMLESS_QUERY = re.compile(
    r"^(x-amz-(expires|date|algorithm|signedheaders|content-sha256)|expires|se|sp|sr|sv|st|spr|versionid|"
    r"version|generation|alt|ref|format|response-content-[a-z-]+)$",
    re.IGNORECASE,
)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
# "Authorization: token abc", "'Authorization': 'Bearer abc'", "authorization=Basic abc".
_AUTH_HEADER = re.compile(
    r"""(?P<head>(?:proxy-)?authorization['"]?\s*[:=]\s*['"]?)(?:(?P<scheme>[A-Za-z]+)\s+)?(?P<credential>[^\s'",}]+)""",
    re.IGNORECASE,
)
# A credential after a scheme word: long and with a digit, so "basic authentication" stays readable.
_AUTH_SCHEME_IN_TEXT = re.compile(
    r"(?P<head>\b(?:bearer|basic|token)\s+)(?P<credential>(?=[A-Za-z0-9+/=._~-]*\d)[A-Za-z0-9+/=._~-]{8,})",
    re.IGNORECASE,
)

_SCHEME_WORDS = ("bearer", "basic", "token")  # the words _AUTH_SCHEME_IN_TEXT starts with

# Process-wide on purpose, not per run: every sink (reports, errors, logs, a worker's output)
# redacts with it without being handed anything, so no sink can miss a secret. Keeping one
# after its run costs at most a redaction of that text later, never a secret printed.
_registered: set[str] = set()
_registered_lock = threading.Lock()


def register_secrets(secrets: set[str] | frozenset[str]) -> None:
    """Remember secrets for the rest of the process, so no sink ever shows them."""
    with _registered_lock:
        _registered.update(secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH)


def redact(text: str, secrets: frozenset[str] | set[str]) -> str:
    """``text`` with every secret (longest first) replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _redact_authority(location: str) -> str:
    """For a URL that does not parse: hide everything before the last ``@`` of its authority."""
    scheme, sep, rest = location.partition("://")
    end = min((index for index in (rest.find(c) for c in "/?#") if index >= 0), default=len(rest))
    authority = rest[:end]
    if "@" not in authority:
        return location
    return f"{scheme}{sep}{REDACTED}@{authority.rpartition('@')[2]}{rest[end:]}"


def _redact_query(query: str) -> str:
    """Each ``name=value`` keeps its name and loses its value unless harmless; a piece
    without ``=`` may itself be a token and is hidden whole."""
    pieces = []
    for piece in query.split("&"):
        name, sep, value = piece.partition("=")
        if not sep:
            pieces.append(REDACTED if piece else piece)
        else:
            pieces.append(piece if _HARMLESS_QUERY.match(name) or not value else f"{name}={REDACTED}")
    return "&".join(pieces)


def redact_url(location: str) -> str:
    """Hide credentials a URL carries itself: ``https://user:pass@host/x?sig=...`` ->
    ``https://***@host/x?sig=***``. Anything that is not a URL is returned as it is."""
    if "://" not in location:
        return location
    try:
        parts = urlsplit(location)
    except ValueError:
        head, sep, query = _redact_authority(location).partition("?")
        return f"{head}{sep}{_redact_query(query)}" if sep else head
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = _redact_query(parts.query) if parts.query else parts.query
    if netloc == parts.netloc and query == parts.query:
        return location
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_urls_in(text: str) -> str:
    """``text`` with :func:`redact_url` applied to every URL inside it."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


def redact_text(text: str) -> str:
    """The redaction for anything shown: registered secrets, URLs and authorization credentials."""
    if not text:
        return text
    with _registered_lock:
        secrets = frozenset(_registered)
    text = redact(text, secrets)
    if "://" in text:
        text = redact_urls_in(text)
    # The patterns cost a pass each over megabytes of output (a status of 100,000 copies),
    # so each runs only where its keyword occurs. Under IGNORECASE a few non-ASCII letters
    # match ASCII ones ("İ" matches "i", "K" (Kelvin) matches "k"), which ``lower()``
    # does not map the same way: text that is not ASCII always takes both passes.
    folded = text.lower() if text.isascii() else None
    if folded is None or "authorization" in folded:
        text = _AUTH_HEADER.sub(
            lambda m: f"{m.group('head')}{m.group('scheme') + ' ' if m.group('scheme') else ''}{REDACTED}", text
        )
    if folded is None or any(word in folded for word in _SCHEME_WORDS):
        text = _AUTH_SCHEME_IN_TEXT.sub(lambda m: f"{m.group('head')}{REDACTED}", text)
    return text


# -- files we write -------------------------------------------------------------------------------

# ``${NAME}`` as a URL's user or password: pip fills it from the environment at install time,
# which is how a committed requirements file names a private index without holding its secret.
_ENV_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def _userinfo_is_reference(userinfo: str) -> bool:
    return all(_ENV_REFERENCE.fullmatch(part) for part in userinfo.split(":", 1))


def _strip_query(query: str) -> str:
    """Only the harmless ``name=value`` pairs of a query, the others left out."""
    kept = [piece for piece in query.split("&") if _HARMLESS_QUERY.match(piece.partition("=")[0]) and "=" in piece]
    return "&".join(kept)


def strip_url_credentials(location: str) -> str:
    """``location`` without the credentials it carries, as it may be written to a file:
    ``https://user:token@host/simple?key=abc`` -> ``https://host/simple``. A user and password
    that are only ``${VARIABLE}`` references stay; a ``#fragment`` (``#sha256=...``) stays."""
    scheme, sep, rest = location.partition("://")
    if not sep:
        return location
    end = min((index for index in (rest.find(c) for c in "/?#") if index >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, host = authority.rpartition("@")
    if at and not _userinfo_is_reference(userinfo):
        authority = host
    head, hash_sep, fragment = tail.partition("#")
    path, query_sep, query = head.partition("?")
    if query_sep:
        query = _strip_query(query)
        head = f"{path}?{query}" if query else path
    return f"{scheme}{sep}{authority}{head}{hash_sep}{fragment}"


def strip_credentials(text: str) -> str:
    """``text`` fit to be written to a file that people commit: every URL without its
    credentials (:func:`strip_url_credentials`) and every registered secret replaced by ``***``.

    Unlike :func:`redact_text`, a URL keeps no ``***@`` marker: a file is read by pip,
    which would take ``***`` for a user name.
    """
    if not text:
        return text
    with _registered_lock:
        secrets = frozenset(_registered)
    text = redact(text, secrets)
    return _URL_IN_TEXT.sub(lambda match: strip_url_credentials(match.group(0)), text)
