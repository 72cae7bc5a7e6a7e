"""fs-args files and keeping their secrets out of every message.

``--fs-args FILE`` (or ``fs-args`` in a manifest) names a YAML mapping of
keyword arguments for an fsspec filesystem: ``client_kwargs.endpoint_url`` for
S3-compatible stores, ``headers`` for HTTPS, and so on. ``${VAR}`` inside a
string value is replaced by the environment variable ``VAR``; an unset
variable is a usage error that names it.

Every string value of the file, and every value taken from the environment,
is treated as a secret: :func:`redact` replaces them in any text we show.
:func:`redact_url` hides credentials carried by a URL itself (``user:pass@``
and query values). Both come from :mod:`micropkg_tasks.core.redaction`, which
also remembers these secrets so that no output sink can show them.

Pure functions only: no fsspec, no network.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from micropkg_tasks.core.change.bounded import parsing, read_file_bytes
from micropkg_tasks.core.errors import UsageError
from micropkg_tasks.core.redaction import (  # noqa: F401  (redact_url and redact_urls_in are used through here)
    MIN_SECRET_LENGTH,
    redact,
    redact_url,
    redact_urls_in,
    register_secrets,
)

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# "token abc", "Bearer abc", "Basic abc": the credential after the scheme is a secret on its own.
_AUTH_SCHEME = re.compile(r"^\s*(?:token|bearer|basic|digest)\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class FsArgs:
    """Expanded filesystem arguments and the strings that must never be shown."""

    args: dict[str, Any] = field(default_factory=dict)
    secrets: frozenset[str] = frozenset()
    source: str | None = None  # the file they came from, for messages

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)


def expand_env(value: Any, source: str, environ: Mapping[str, str] | None = None) -> tuple[Any, set[str]]:
    """``value`` with ``${VAR}`` replaced in every string, and the set of substituted values."""
    env = os.environ if environ is None else environ
    used: set[str] = set()

    def expand(item: Any) -> Any:
        if isinstance(item, str):
            if "${" in item and item.count("${") != len(_VARIABLE.findall(item)):
                raise UsageError(f"{source}: unterminated ${{...}} in a value")

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if not _VARIABLE_NAME.match(name):
                    raise UsageError(f"{source}: ${{{name}}} is not a valid environment variable name")
                if name not in env:
                    raise UsageError(f"{source}: environment variable {name} is not set")
                used.add(env[name])
                return env[name]

            return _VARIABLE.sub(substitute, item)
        if isinstance(item, dict):
            return {key: expand(child) for key, child in item.items()}
        if isinstance(item, list):
            return [expand(child) for child in item]
        return item

    return expand(value), used


def parse_fs_args(text: str, source: str, environ: Mapping[str, str] | None = None) -> FsArgs:
    """Parse the YAML text of an fs-args file and expand its ``${VAR}`` references."""
    import yaml

    try:
        with parsing(source):
            loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{source} is not valid YAML{where}") from None
    if loaded is None:
        return FsArgs({}, frozenset(), source)
    if not isinstance(loaded, dict) or not all(isinstance(key, str) for key in loaded):
        raise UsageError(f"{source} must hold a mapping of filesystem arguments (name: value)")
    args, from_env = expand_env(loaded, source, environ)
    secrets = secret_values(args) | {value for value in from_env if len(value) >= MIN_SECRET_LENGTH}
    register_secrets(secrets)
    return FsArgs(args, frozenset(secrets), source)


def load_fs_args(path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None) -> FsArgs:
    """Read an fs-args YAML file; ``None`` means no extra arguments."""
    if not path:
        return FsArgs()
    source = f"fs-args file {path}"
    try:
        text = read_file_bytes(path, display=source, error=UsageError).decode("utf-8")
    except FileNotFoundError:
        raise UsageError(f"{source} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"{source} is a folder, not a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UsageError(f"{source} cannot be read: {reason}") from None
    return parse_fs_args(text, source, environ)


def secret_values(args: Any) -> set[str]:
    """Every string inside the fs-args: any of them may be a key, token or password."""
    if isinstance(args, str):
        found = {args} if len(args) >= MIN_SECRET_LENGTH else set()
        scheme = _AUTH_SCHEME.match(args)
        if scheme and len(scheme.group(1)) >= MIN_SECRET_LENGTH:
            found.add(scheme.group(1))
        return found
    if isinstance(args, dict):
        return {s for item in args.values() for s in secret_values(item)}
    if isinstance(args, (list, tuple)):
        return {s for item in args for s in secret_values(item)}
    return set()


def protocol_of(url: str) -> str:
    """The fsspec protocol of a URL, lower-cased: ``S3://b/k`` -> ``s3``."""
    return url.partition("://")[0].lower()


def url_has_credentials(url: str) -> bool:
    """Whether ``url`` carries ``user[:password]@`` before its host."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.username is not None or parts.password is not None


def sets_authorization(args: Mapping[str, Any]) -> bool:
    """Whether fs-args send their own credentials over HTTP: an ``Authorization`` header
    (top-level ``headers`` or ``client_kwargs.headers``) or ``client_kwargs.auth``."""
    client = args.get("client_kwargs")
    client = client if isinstance(client, Mapping) else {}
    for headers in (args.get("headers"), client.get("headers")):
        if isinstance(headers, Mapping) and any(str(key).lower() == "authorization" for key in headers):
            return True
    return client.get("auth") is not None or args.get("auth") is not None

