"""Read an untrusted micro-package sdist (tar.gz) safely, entirely in memory.

A pulled archive may come from anywhere, so this module treats it as hostile:
nothing is written to disk, nothing is executed or imported, and every member
is checked before its bytes are read. The result is a plain in-memory view of
the files plus the metadata read statically (core/sdist/metadata.py).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import keyword
import re
import tarfile
import unicodedata
import zlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from micropkg_tasks.core.change.journal import BACKUP_SUFFIX, TEMP_SUFFIX, is_reserved_name
from micropkg_tasks.core.sdist.metadata import quoted, read_metadata, sdist_failure

DEFAULT_MAX_TOTAL_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_MEMBERS = 10_000

# Room for tar headers, pax records and block padding on top of the content
# cap. Only bounds how much we are willing to *decompress* in total, so that a
# huge pax or GNU long-name header (which tarfile reads by itself, before we
# see the member) cannot turn into a gzip bomb.
_HEADER_ROOM_PER_MEMBER = 4096
_STREAM_SLACK = 1024 * 1024
_CHUNK = 1024 * 1024
MAX_NAME_BYTES = 255  # one path component (NAME_MAX on Linux, macOS and Windows file systems)
MAX_PATH_BYTES = 1024  # a whole member name, below PATH_MAX once installed in a project
_REGULAR_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class SdistLimits:
    """Caps that stop a hostile archive early; raise them for huge but trusted sdists."""

    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS

    def __post_init__(self) -> None:
        if self.max_total_bytes < 1 or self.max_members < 1:
            raise ValueError("SdistLimits caps must be positive integers.")


@dataclass(frozen=True)
class SdistContents:
    """Everything a pull needs from an sdist, already validated."""

    source: str
    sha256: str
    root: str
    name: str
    dist_name: str
    version: str
    requires: tuple[str, ...]
    micropkg: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)

    def package_files(self) -> dict[str, bytes]:
        """The code: files under ``<name>/`` except ``<name>/config/``, relative to the package."""
        code = _subtree(self.files, f"{self.name}/")
        return {path: data for path, data in code.items() if not path.startswith("config/")}

    def config_files(self) -> dict[str, bytes]:
        """The parameter files under ``<name>/config/``, relative to ``config/``."""
        return _subtree(self.files, f"{self.name}/config/")

    def test_files(self) -> dict[str, bytes]:
        """The packaged tests under ``tests/``, relative to ``tests/``."""
        return _subtree(self.files, "tests/")

    def __reduce__(self) -> tuple[Any, ...]:
        # Read-only views cannot be pickled; rebuild them, so contents can go to worker processes.
        return (
            _rebuild,
            (self.source, self.sha256, self.root, self.name, self.dist_name, self.version, self.requires,
             dict(self.micropkg), dict(self.files)),
        )


def _rebuild(*fields: Any) -> SdistContents:
    *head, micropkg, files = fields
    return SdistContents(*head, MappingProxyType(micropkg), MappingProxyType(files))


def _subtree(files: Mapping[str, bytes], prefix: str) -> dict[str, bytes]:
    return {path[len(prefix):]: data for path, data in sorted(files.items()) if path.startswith(prefix)}


class _StreamStop(Exception):
    """Raised through tarfile: "cap" (too much decompressed) or "backwards" (a malformed header)."""


class _CappedStream:
    """A forward-only, size-capped view of the decompressed gzip stream.

    We decompress ourselves instead of letting tarfile do it (``mode="r:gz"``)
    so that *every* decompressed byte is counted, including pax and GNU
    long-name header data that tarfile reads before handing us a member.
    Refusing backward seeks keeps the read linear and defeats header loops.
    """

    def __init__(self, compressed: bytes, cap: int) -> None:
        self._gz = gzip.GzipFile(fileobj=io.BytesIO(compressed), mode="rb")
        self._cap = cap
        self._pos = 0
        self.last_read = b""

    def tell(self) -> int:
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        room = self._cap - self._pos + 1  # one byte past the cap proves it was exceeded
        chunk = self._gz.read(room if size is None or size < 0 else min(size, room))
        self._pos += len(chunk)
        if self._pos > self._cap:
            raise _StreamStop("cap")
        self.last_read = chunk
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET or offset < self._pos:
            raise _StreamStop("backwards")
        if offset > self._cap:
            raise _StreamStop("cap")
        while self._pos < offset:  # skip by reading, so skipped bytes are counted too
            if not self.read(min(offset - self._pos, _CHUNK)):
                break  # past the end: tarfile's next read sees EOF and reports it
        return self._pos

    def drain(self) -> None:
        """Read to the end so a truncated stream or bad CRC after the tar end marker is caught."""
        while self.read(_CHUNK):
            pass


def _fold(path: str) -> str:
    """The key two names share if some filesystem would store them as one file."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", path).casefold())


# Checked in order on the whole member name; the first match is the reason given.
_NAME_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda name: "\x00" in name, "contains a NUL character"),
    # tarfile decodes bytes that are not UTF-8 as lone surrogates.
    (lambda name: any(0xD800 <= ord(ch) <= 0xDFFF for ch in name), "is not valid UTF-8"),
    (lambda name: not name.isprintable(), "contains a control or invisible character"),
    (lambda name: "\\" in name, "contains a backslash, which is a path separator on Windows"),
    (lambda name: name.startswith("/"), "has an absolute path"),
    (lambda name: bool(_DRIVE.match(name)), "has an absolute path (a Windows drive)"),
    (lambda name: ":" in name, "contains ':', which Windows treats as a drive or stream separator"),
    # tarfile strips the slash from folders, so only a regular file can end in one.
    (lambda name: name.endswith("/"), "is a regular file whose name ends in '/'"),
    (lambda name: ".." in name.split("/"), "has a '..' path component"),
    (lambda name: "" in name.split("/"), "has an empty path component"),
    (lambda name: "." in name.split("/"), "has a '.' path component"),
    # Names the transaction uses next to the files it changes: an archive must not plant them.
    (lambda name: any(is_reserved_name(part) for part in name.split("/")),
     f"uses a name micropkg reserves for its own temporary and backup files (*{TEMP_SUFFIX}, *{BACKUP_SUFFIX})"),
    # Longer names cannot be written on common file systems; refuse them before any plan is made.
    (lambda name: any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in name.split("/")),
     f"has a path component longer than the {MAX_NAME_BYTES} bytes file systems allow"),
    (lambda name: len(name.encode("utf-8")) > MAX_PATH_BYTES, f"is longer than {MAX_PATH_BYTES} bytes"),
)
_SPECIAL_TYPES = {
    tarfile.CHRTYPE: "is a character device",
    tarfile.BLKTYPE: "is a block device",
    tarfile.FIFOTYPE: "is a FIFO (named pipe)",
}


def _check_name(source: str, info: tarfile.TarInfo) -> list[str]:
    """Reject names that could escape, alias or confuse a destination folder; return the parts."""
    for broken, problem in _NAME_RULES:
        if broken(info.name):
            raise sdist_failure(source, f"member {quoted(info.name)} {problem}")
    # A pax ``path`` record reaches us with a trailing slash already stripped; check it as written.
    written = info.pax_headers.get("path", info.name)
    if written.endswith("/") and not info.isdir():
        raise sdist_failure(source, f"member {quoted(written)} is a regular file whose name ends in '/'")
    return info.name.split("/")


def _check_type(source: str, info: tarfile.TarInfo) -> bool:
    """Return True for a regular file, False for a folder; reject every other member type."""
    if info.type in _REGULAR_TYPES and info.sparse is None:
        return True
    if info.isdir():
        return False
    if info.sparse is not None:  # GNU or pax sparse files; pax ones keep a regular type
        kind = "is a sparse file, which is not supported"
    elif info.issym() or info.islnk():
        link = "symbolic" if info.issym() else "hard"
        kind = f"is a {link} link (to {quoted(info.linkname)}), and links are not allowed"
    else:
        kind = _SPECIAL_TYPES.get(info.type, f"has unsupported member type {info.type!r}")
    raise sdist_failure(source, f"member {quoted(info.name)} {kind}")


class _Layout:
    """Tracks paths seen so far so collisions and a second top-level folder stop the read early."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.root: str | None = None
        self.folders: set[str] = set()  # paths relative to root
        self._seen: dict[str, tuple[str, bool]] = {}  # folded path -> (path, is_file)

    def add(self, member: str, parts: list[str], is_file: bool) -> None:
        if is_file and len(parts) == 1:
            raise sdist_failure(self.source, f"member {quoted(member)} is a file at the top level; an sdist "
                        "must hold exactly one top-level folder")
        if self.root is None:
            self.root = parts[0]
        elif parts[0] != self.root:
            raise sdist_failure(self.source, f"member {quoted(member)} is in a second top-level folder besides "
                        f"{quoted(self.root)}; an sdist must hold exactly one top-level folder")
        for depth in range(1, len(parts) + 1):
            last = depth == len(parts)
            self._register(member, "/".join(parts[:depth]), is_file and last)
            if depth > 1 and not (is_file and last):
                self.folders.add("/".join(parts[1:depth]))

    def _register(self, member: str, path: str, is_file: bool) -> None:
        key = _fold(path)
        if key not in self._seen:
            self._seen[key] = (path, is_file)
            return
        other, other_is_file = self._seen[key]
        if other != path and unicodedata.normalize("NFC", other) == unicodedata.normalize("NFC", path):
            # The two spellings look identical, so show their code points.
            problem = (f"collides with {quoted(other)} after Unicode NFC normalisation "
                       f"({ascii(path)} vs {ascii(other)}), so one would overwrite the other")
        elif other != path:
            problem = f"collides with {quoted(other)} case-insensitively, so one would overwrite the other"
        elif is_file and other_is_file:
            problem = "appears more than once (duplicate member name)"
        elif is_file != other_is_file:
            problem = f"needs {quoted(path)} to be both a file and a folder"
        else:
            return  # the same folder mentioned twice is harmless
        raise sdist_failure(self.source, f"member {quoted(member)} {problem}")


def read_sdist(data: bytes, *, source: str, limits: SdistLimits = SdistLimits()) -> SdistContents:
    """Validate ``data`` as a micro-package sdist and return its files and metadata.

    Raises ``SdistError`` (one sentence naming ``source`` and the member at
    fault) for anything unsafe, corrupt or not shaped like a micro-package.
    """
    if not data:
        raise sdist_failure(source, "the archive is empty")
    if data[:2] != b"\x1f\x8b":
        if len(data) >= 262 and data[257:262] == b"ustar":
            raise sdist_failure(source, "it is an uncompressed tar archive, not a gzip-compressed sdist (.tar.gz)")
        raise sdist_failure(source, "it is not a gzip-compressed file (no gzip signature at the start)")
    layout, files = _read_members(data, source, limits)
    if layout.root is None:
        raise sdist_failure(source, "the archive has no members")
    root = layout.root
    name = _find_package(source, root, files, layout.folders)
    dist_name, version, requires, micropkg = read_metadata(source, root, files)
    return SdistContents(source, hashlib.sha256(data).hexdigest(), root, name, dist_name, version,
                         requires, MappingProxyType(micropkg), MappingProxyType(files))


def _read_members(data: bytes, source: str, limits: SdistLimits) -> tuple[_Layout, dict[str, bytes]]:
    """Every member of the gzip-compressed tar ``data``, checked before its bytes are read:
    its name, type and size, within the caps; the archive's layout (root and folders) along."""
    cap = limits.max_total_bytes + _HEADER_ROOM_PER_MEMBER * (limits.max_members + 2) + _STREAM_SLACK
    stream = _CappedStream(data, cap)
    layout = _Layout(source)
    files: dict[str, bytes] = {}
    last = None  # name of the last member read, for "after member X" messages
    count = declared = read_total = 0
    try:
        with tarfile.open(fileobj=stream, mode="r:") as tar:  # type: ignore[call-overload]
            while (info := tar.next()) is not None:
                count += 1
                if count > limits.max_members:
                    raise sdist_failure(source, f"member {quoted(info.name)} is member number {count}, over the "
                                f"member cap of {limits.max_members} (max_members)")
                is_file = _check_type(source, info)
                parts = _check_name(source, info)
                layout.add(info.name, parts, is_file)
                last = info.name
                if not is_file:
                    continue
                # Check the declared size *before* reading, so a gzip bomb is never inflated.
                if declared + info.size > limits.max_total_bytes:
                    raise sdist_failure(source, f"member {quoted(info.name)} declares {info.size} bytes, taking the "
                                f"unpacked total over the size cap of {limits.max_total_bytes} bytes "
                                "(max_total_bytes)")
                declared += info.size
                handle = tar.extractfile(info)
                content = handle.read(info.size + 1) if handle is not None else b""
                read_total += len(content)
                if read_total > limits.max_total_bytes:  # belt and braces: count real bytes too
                    raise sdist_failure(source, f"member {quoted(info.name)} unpacks past the size cap of "
                                f"{limits.max_total_bytes} bytes (max_total_bytes)")
                files["/".join(parts[1:])] = content
            if stream.last_read != tarfile.NUL * tarfile.BLOCKSIZE:
                # tarfile quietly stops at a bad or missing header after the first member.
                raise tarfile.ReadError("an invalid tar header" if stream.last_read
                                        else "no end-of-archive marker")
            stream.drain()
    except _StreamStop as stop:
        if stop.args[0] == "backwards":
            raise sdist_failure(source, f"its tar data is corrupt {_after(last)} (a header points backwards)") from None
        raise sdist_failure(source, f"the decompressed archive grows past {cap} bytes (the size cap of "
                    f"{limits.max_total_bytes} bytes plus room for tar headers) {_after(last)}") from None
    except EOFError:
        raise sdist_failure(source, f"the gzip stream is truncated {_after(last)}") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise sdist_failure(source, f"the gzip stream is corrupt {_after(last)} ({exc})") from None
    except (tarfile.TarError, OSError, ValueError, OverflowError, UnicodeError) as exc:
        if "zlib error" in str(exc):
            raise sdist_failure(source, f"the gzip stream is corrupt {_after(last)} ({exc})") from None
        if count == 0:
            raise sdist_failure(source, "the gzip data is not a tar archive") from None
        raise sdist_failure(source, f"its tar data is corrupt or truncated {_after(last)} ({exc})") from None
    return layout, files


def _after(member: str | None) -> str:
    return f"after member {quoted(member)}" if member else "before the first member"


def _find_package(source: str, root: str, files: Mapping[str, bytes], folders: set[str]) -> str:
    """The one direct sub-folder of root holding ``__init__.py``, besides tests and egg-info."""
    top = sorted(folder for folder in folders if "/" not in folder)
    found = [f for f in top if f"{f}/__init__.py" in files and f != "tests" and not f.endswith(".egg-info")]
    if not found:
        seen = ", ".join(quoted(f) for f in top) or "none"
        raise sdist_failure(source, f"member {quoted(root + '/')} holds no package folder (a sub-folder with "
                    f"__init__.py other than tests); folders found: {seen}")
    if len(found) > 1:
        listed = ", ".join(quoted(f) for f in found)
        raise sdist_failure(source, f"member {quoted(root + '/')} holds {len(found)} package folders ({listed}); "
                    "a micro-package sdist must hold exactly one")
    name = found[0]
    # Non-ASCII identifiers are NFKC-normalised on import, so the folder name
    # would not be the module name; require plain ASCII like Kedro does.
    if not (name.isascii() and name.isidentifier()) or keyword.iskeyword(name):
        why = "a Python keyword" if keyword.iskeyword(name) else "not a valid Python identifier"
        raise sdist_failure(source, f"member {quoted(f'{root}/{name}/')} is the package folder, but its name is {why}")
    return name
