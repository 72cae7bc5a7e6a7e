"""fsspec access for remote sources and destinations, with secrets kept out of messages.

Reads go through the content-addressed cache (:mod:`micropkg_tasks.ops.sources.cache`)
unless it is turned off; writes go to a temporary key beside the target and are
then moved into place. Every failure becomes one :class:`MicropkgError` line
that names the location, with fs-args values and URL credentials redacted.

Waits are bounded: unless the fs-args set them, S3 gets
``DEFAULT_S3_CONFIG`` (and s3fs's own retries are capped at ``S3FS_RETRIES``)
and HTTP(S) gets ``DEFAULT_HTTP_TIMEOUT``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from micropkg_tasks.core.change.bounded import MAX_SDIST_BYTES, too_large
from micropkg_tasks.core.errors import MicropkgError, UsageError
from micropkg_tasks.core.fs_args import (
    FsArgs,
    load_fs_args,
    protocol_of,
    redact_url,
    redact_urls_in,
    sets_authorization,
    url_has_credentials,
)
from micropkg_tasks.core.quantities import amount
from micropkg_tasks.ops.sources.cache import SdistCache, cache_key, fingerprint

# botocore settings for s3:// unless the fs-args' config_kwargs say otherwise (seconds).
DEFAULT_S3_CONFIG: dict[str, Any] = {
    "connect_timeout": 5,
    "read_timeout": 30,
    "retries": {"max_attempts": 2, "mode": "standard"},
}
# s3fs retries some failures (connection errors, throttling) itself, 5 times by default.
S3FS_RETRIES = 3
# aiohttp.ClientTimeout fields for http(s):// unless the fs-args set client_kwargs.timeout (seconds).
DEFAULT_HTTP_TIMEOUT: dict[str, float] = {"total": 300, "connect": 10, "sock_read": 60}
_HTTP_TIMEOUT_FIELDS = ("ceil_threshold", "connect", "sock_connect", "sock_read", "total")

_READ_CHUNK = 1024 * 1024
_S3_PROTOCOLS = frozenset({"s3", "s3a"})
_HTTP_PROTOCOLS = frozenset({"http", "https"})
# Reading these is as cheap as reading the cache, so they skip it.
_LOCAL_PROTOCOLS = frozenset({"file", "local"})


def _http_timeout(value: Any) -> Any:
    import aiohttp

    if isinstance(value, aiohttp.ClientTimeout):
        return value
    name = "fs-args key client_kwargs.timeout"
    if isinstance(value, dict):
        unknown = sorted(str(key) for key in value if key not in _HTTP_TIMEOUT_FIELDS)
        if unknown:
            expected = ", ".join(_HTTP_TIMEOUT_FIELDS)
            raise UsageError(f"{name} has unknown key {unknown[0]!r}; expected some of {expected}")
        return aiohttp.ClientTimeout(**{
            key: None if seconds is None else amount(seconds, f"{name}.{key}", unit="seconds", positive=True)
            for key, seconds in value.items()
        })
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        seconds = amount(value, name, unit="seconds", positive=True)
        return aiohttp.ClientTimeout(total=seconds, connect=min(seconds, DEFAULT_HTTP_TIMEOUT["connect"]))
    raise UsageError(f"{name} must be a number of seconds or a mapping of aiohttp timeouts")


def filesystem_kwargs(protocol: str, args: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments for the filesystem: the user's fs-args over our bounded defaults."""
    kwargs = dict(args)
    kwargs.setdefault("skip_instance_cache", True)  # never share a cached instance built with other args
    if protocol in _S3_PROTOCOLS:
        config = dict(DEFAULT_S3_CONFIG)
        given = kwargs.get("config_kwargs") or {}
        if not isinstance(given, dict):
            raise UsageError("fs-args key config_kwargs must be a mapping of botocore settings")
        config.update(given)
        for key in ("connect_timeout", "read_timeout"):
            config[key] = amount(config[key], f"fs-args key config_kwargs.{key}", unit="seconds", positive=True)
        kwargs["config_kwargs"] = config
    elif protocol in _HTTP_PROTOCOLS:
        given = kwargs.get("client_kwargs") or {}
        if not isinstance(given, dict):
            raise UsageError("fs-args key client_kwargs must be a mapping of aiohttp settings")
        client = dict(given)
        client["timeout"] = _http_timeout(client.get("timeout", DEFAULT_HTTP_TIMEOUT))
        kwargs["client_kwargs"] = client
    return kwargs


def _missing_package(protocol: str, message: str) -> str:
    from fsspec.registry import known_implementations

    known = known_implementations.get(protocol, {})
    hint = str(known.get("err") or message)
    named = re.search(r"install\s+[`'\"]?([A-Za-z0-9_.\-\[\]]+)", hint, re.IGNORECASE)
    if named:
        return named.group(1)
    package = str(known.get("class", "")).split(".")[0]
    return package if package and package != "fsspec" else hint


def open_filesystem(url: str, fs_args: FsArgs) -> Any:
    """The fsspec filesystem for ``url``'s protocol, built from the fs-args."""
    import fsspec

    shown = redact_url(url)
    protocol = protocol_of(url)
    try:
        cls = fsspec.get_filesystem_class(protocol)
    except ValueError:
        raise UsageError(f"{shown}: unknown protocol {protocol!r} (not an fsspec filesystem)") from None
    except ImportError as exc:
        package = _missing_package(protocol, str(exc))
        raise MicropkgError(
            f"{shown}: the {protocol}:// filesystem needs an optional package; install {package} (pip install {package})"
        ) from None
    if protocol in _HTTP_PROTOCOLS and url_has_credentials(url) and sets_authorization(fs_args.args):
        # The HTTP client refuses to send both; left to it, the refusal reads as "not found".
        where = f" in {fs_args.source}" if fs_args.source else ""
        raise UsageError(
            f"{shown}: credentials in the URL and an Authorization header{where} cannot be combined; "
            "give one or the other"
        )
    try:
        fs = cls(**filesystem_kwargs(protocol, fs_args.args))
        if protocol in _S3_PROTOCOLS and isinstance(getattr(fs, "retries", None), int):
            fs.retries = min(fs.retries, S3FS_RETRIES)
        return fs
    except ImportError as exc:
        raise MicropkgError(
            fs_args.redact(f"{shown}: the {protocol}:// filesystem needs a missing package ({exc.name or exc})")
        ) from None
    except (TypeError, ValueError) as exc:
        where = f" from {fs_args.source}" if fs_args.source else ""
        raise UsageError(fs_args.redact(f"{shown}: bad filesystem arguments{where}: {_one_line(exc)}")) from None
    except MicropkgError:
        raise
    except Exception as exc:  # a backend that checks its arguments or credentials eagerly
        raise MicropkgError(describe_error(url, exc, fs_args)) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _bucket(url: str) -> str:
    return url.partition("://")[2].split("/", 1)[0]


def reason(url: str, exc: BaseException) -> str:
    """What went wrong, in a few words, for any exception an fsspec backend raises.

    fsspec often wraps the real cause (HTTP ``info`` turns any failure into
    FileNotFoundError), so the whole chain of causes is looked at.
    """
    chain = _chain(exc)
    statuses = [status for status in (getattr(e, "status", None) for e in chain) if isinstance(status, int)]
    text = " ".join(_one_line(e) for e in chain)
    names = " ".join(type(e).__name__ for e in chain)
    if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        return f"bucket {_bucket(url)!r} does not exist"
    if any(isinstance(e, PermissionError) for e in chain) or 403 in statuses or "AccessDenied" in text:
        return "access denied (HTTP 403)" if 403 in statuses else "access denied"
    if 401 in statuses:
        return "access denied: the server wants credentials (HTTP 401); check the Authorization header in --fs-args"
    if any(isinstance(e, IsADirectoryError) for e in chain):
        return "is a folder, not an sdist file"
    if any(isinstance(e, TimeoutError) for e in chain) or "Timeout" in names:
        return "timed out"
    if any(isinstance(e, ConnectionError) for e in chain) or re.search(r"Connect(or|ion)Error|ClientOSError", names):
        return "could not connect"
    if any(isinstance(e, FileNotFoundError) for e in chain) or 404 in statuses or "NoSuchKey" in text:
        return "not found"
    if statuses:
        return f"failed with HTTP {statuses[0]}"
    return f"{type(exc).__name__}: {_one_line(exc)}"


def describe_error(url: str, exc: BaseException, fs_args: FsArgs) -> str:
    return fs_args.redact(redact_urls_in(f"{redact_url(url)}: {reason(url, exc)}"))


def _endpoint(args: dict[str, Any]) -> str | None:
    client = args.get("client_kwargs") or {}
    endpoint = args.get("endpoint_url") or (client.get("endpoint_url") if isinstance(client, dict) else None)
    return str(endpoint) if endpoint else None


def fetch_bytes(url: str, *, fs_args: str | None = None, use_cache: bool = True) -> bytes:
    """Read the whole object at ``url``, through the cache unless ``use_cache`` is False."""
    loaded = load_fs_args(fs_args)
    fs = open_filesystem(url, loaded)
    protocol = protocol_of(url)
    cache = SdistCache() if use_cache and protocol not in _LOCAL_PROTOCOLS else None
    key = cache_key(url, _endpoint(loaded.args))
    print_: str | None = None
    try:
        info = fs.info(url)
        if info.get("type") == "directory":
            raise IsADirectoryError(url)
        _check_size(url, info)
        if cache is not None:
            print_ = fingerprint(info)
            hit = cache.lookup(key, print_)
            if hit is not None:
                return hit
        data = _read_capped(fs, url, info)
    except MicropkgError:
        raise
    except Exception as exc:  # network stacks raise many types; all become one clear line
        raise MicropkgError(describe_error(url, exc, loaded)) from None
    if cache is not None:
        cache.store(key, print_, data)
    return data


def _check_size(url: str, info: dict[str, Any]) -> None:
    """Refuse before reading anything what is too large or is no regular file (``file:///dev/zero``)."""
    size = info.get("size")
    if isinstance(size, int) and size > MAX_SDIST_BYTES:
        raise MicropkgError(too_large(redact_url(url), MAX_SDIST_BYTES))
    if info.get("type") not in ("file", None):
        raise MicropkgError(f"{redact_url(url)} is not a regular file ({info.get('type')}); refusing to read it")


def _read_capped(fs: Any, url: str, info: dict[str, Any]) -> bytes:
    """The object's bytes; when its size is not known beforehand, read it in chunks and stop
    one byte past the cap, so an endless or lying source never fills memory."""
    if isinstance(info.get("size"), int):
        data = bytes(fs.cat_file(url))
        if len(data) > MAX_SDIST_BYTES:
            raise MicropkgError(too_large(redact_url(url), MAX_SDIST_BYTES))
        return data
    chunks: list[bytes] = []
    total = 0
    with fs.open(url, "rb") as handle:
        while total <= MAX_SDIST_BYTES:
            chunk = handle.read(min(_READ_CHUNK, MAX_SDIST_BYTES + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    if total > MAX_SDIST_BYTES:
        raise MicropkgError(too_large(redact_url(url), MAX_SDIST_BYTES))
    return b"".join(chunks)


def holds_same_bytes(destination: str, filename: str, data: bytes, *, fs_args: str | None = None) -> bool | None:
    """Whether ``destination/filename`` already holds exactly ``data``; None when nothing is there.
    An object of another size is different without being read."""
    loaded = load_fs_args(fs_args)
    fs = open_filesystem(destination, loaded)
    target = f"{destination.rstrip('/')}/{filename}"
    try:
        if not fs.exists(target):
            return None
        size = fs.info(target).get("size")
        if isinstance(size, int) and size != len(data):
            return False
        return bytes(fs.cat_file(target)) == data
    except Exception as exc:
        raise MicropkgError(describe_error(target, exc, loaded)) from None


def upload_atomically(destination: str, filename: str, data: bytes, *, fs_args: str | None = None) -> str:
    """Write to a temporary key beside the target, then move it into place; return the target URL
    (safe to display)."""
    loaded = load_fs_args(fs_args)
    fs = open_filesystem(destination, loaded)
    folder = destination.rstrip("/")
    target = f"{folder}/{filename}"
    temp = f"{folder}/.{filename}.{uuid.uuid4().hex}.tmp"
    try:
        if protocol_of(destination) in _LOCAL_PROTOCOLS:
            fs.makedirs(folder, exist_ok=True)
        fs.pipe_file(temp, data)
        fs.mv(temp, target)
    except Exception as exc:
        try:
            fs.rm_file(temp)
        except Exception:  # best effort: the temporary key may never have been written
            pass
        raise MicropkgError(describe_error(target, exc, loaded)) from None
    return redact_url(target)
