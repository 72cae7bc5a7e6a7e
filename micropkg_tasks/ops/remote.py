"""fsspec access for remote sources and destinations, with secrets kept out of messages.

``--fs-args`` is a YAML file whose values go to the fsspec filesystem
(``client_kwargs.endpoint_url`` for S3-compatible stores, ``headers`` for
HTTPS, ...). ``${VAR}`` in values is expanded from the environment. Every
string value of it is treated as a possible secret and redacted from any
message we print.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from micropkg_tasks.core.errors import MicropkgError, UsageError

REDACTED = "***"


def _expand(value: Any, source: str) -> Any:
    if isinstance(value, str):
        out, rest = [], value
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, closed, rest = after.partition("}")
            if not closed:
                raise UsageError(f"{source}: unterminated ${{...}} in a value")
            if name not in os.environ:
                raise UsageError(f"{source}: environment variable {name} is not set")
            out += [before, os.environ[name]]
        return "".join(out) + rest
    if isinstance(value, dict):
        return {key: _expand(item, source) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, source) for item in value]
    return value


def load_fs_args(path: str | None) -> dict[str, Any]:
    """Read an fs-args YAML file; ``None`` means no extra arguments."""
    if not path:
        return {}
    import yaml

    file = Path(path)
    try:
        loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"fs-args file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"fs-args file {path} cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"fs-args file {path} is not valid YAML{where}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UsageError(f"fs-args file {path} must hold a mapping of filesystem arguments")
    return _expand(loaded, f"fs-args file {path}")


def secret_values(args: Any) -> set[str]:
    """Every string inside the fs-args: any of them may be a key, token or password."""
    if isinstance(args, str):
        return {args} if len(args) >= 4 else set()
    if isinstance(args, dict):
        return {s for item in args.values() for s in secret_values(item)}
    if isinstance(args, list):
        return {s for item in args for s in secret_values(item)}
    return set()


def redact(text: str, secrets: set[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _filesystem(url: str, args: dict[str, Any]):
    import fsspec

    protocol = url.split("://", 1)[0]
    try:
        return fsspec.filesystem(protocol, **args)
    except ValueError as exc:
        raise UsageError(f"{url}: unknown protocol {protocol!r} ({exc})") from None
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise MicropkgError(f"{url}: the {protocol!r} filesystem needs an extra package ({missing}); install it with pip") from None


def describe_error(url: str, exc: BaseException, secrets: set[str]) -> str:
    if isinstance(exc, FileNotFoundError):
        reason = "not found"
    elif isinstance(exc, PermissionError):
        reason = "access denied"
    elif isinstance(exc, TimeoutError):
        reason = "timed out"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return redact(f"{url}: {reason}", secrets)


def fetch_bytes(url: str, *, fs_args: str | None = None) -> bytes:
    """Read the whole object at ``url``."""
    args = load_fs_args(fs_args)
    secrets = secret_values(args)
    fs = _filesystem(url, args)
    try:
        with fs.open(url, "rb") as handle:
            return handle.read()
    except MicropkgError:
        raise
    except Exception as exc:  # network stacks raise many types; all become one clear line
        raise MicropkgError(describe_error(url, exc, secrets)) from None


def upload_atomically(destination: str, filename: str, data: bytes, *, fs_args: str | None = None) -> str:
    """Write to a temporary key beside the target, then move it into place."""
    args = load_fs_args(fs_args)
    secrets = secret_values(args)
    fs = _filesystem(destination, args)
    target = destination.rstrip("/") + "/" + filename
    temp = destination.rstrip("/") + f"/.{filename}.{uuid.uuid4().hex}.tmp"
    try:
        with fs.open(temp, "wb") as handle:
            handle.write(data)
        fs.mv(temp, target)
    except Exception as exc:
        try:
            fs.rm(temp)
        except Exception:  # best effort: the temporary key may never have been created
            pass
        raise MicropkgError(describe_error(target, exc, secrets)) from None
    return target
