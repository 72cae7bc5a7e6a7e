"""Build well-formed and hostile micro-package sdists as bytes, in memory.

Every builder returns real ``.tar.gz`` bytes made with ``tarfile`` (no mocks),
so tests of the reader and, later, of a full pull into a project can share one
corpus. ``HOSTILE_CASES`` maps a case name to a no-argument builder and
``EXPECTED_FRAGMENTS`` to a fragment the rejection message must contain.
"""

from __future__ import annotations

import functools
import io
import tarfile
import unicodedata
import zlib
from typing import Callable, Iterable, Mapping, Sequence

import tomlkit

from micropkg_tasks.core.sdist.read import DEFAULT_MAX_MEMBERS, DEFAULT_MAX_TOTAL_BYTES

DEFAULT_REQUIRES = ('pandas>=2; python_version >= "3.10"', "numpy")
# A member is (TarInfo, content or None); content is only given for regular files.
Member = tuple[tarfile.TarInfo, "bytes | None"]


def gzip_bytes(chunks: Iterable[bytes]) -> bytes:
    """Gzip a stream of chunks without holding the raw stream (wbits=31 writes a gzip header, mtime 0)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(chunk) for chunk in chunks]
    out.append(compressor.flush())
    return b"".join(out)


def file_member(name: str, data: bytes | str = b"", type: bytes = tarfile.REGTYPE) -> Member:
    """A regular file (or, with ``type``, any member) with fixed owner, mode and time."""
    info = tarfile.TarInfo(name)
    content = data.encode() if isinstance(data, str) else data
    info.type, info.mode, info.mtime = type, 0o644, 0
    if type in (tarfile.REGTYPE, tarfile.AREGTYPE):
        info.size = len(content)
        return info, content
    return info, None


def dir_member(name: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    return info, None


def raw_tar(members: Sequence[Member], *, end_marker: bool = True) -> bytes:
    """An uncompressed tar of ``members`` in the given order (duplicates and oddities kept)."""
    buffer = io.BytesIO()
    tar = tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT)
    for info, data in members:
        tar.addfile(info, io.BytesIO(data) if data is not None else None)
    if end_marker:
        tar.close()  # appends the zero blocks that mark the end of the archive
    return buffer.getvalue()


def tar_gz(members: Sequence[Member]) -> bytes:
    return gzip_bytes([raw_tar(members)])


def sdist_files(
    name: str = "data_cleaning",
    version: str = "0.1",
    requires: Sequence[str] = DEFAULT_REQUIRES,
    *,
    micropkg: Mapping[str, object] | None = None,
) -> dict[str, bytes]:
    """The files of a well-formed sdist, relative to its root folder, for tests to tweak."""
    project: dict[str, object] = {"name": name, "version": version, "dependencies": list(requires)}
    pyproject = {
        "build-system": {"requires": ["setuptools>=68"], "build-backend": "setuptools.build_meta"},
        "project": project,
        "tool": {"micropkg": dict(micropkg or {"module": f"pipelines.{name}", "content_sha256": "0" * 64})},
    }
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    pkg_info += "".join(f"Requires-Dist: {req}\n" for req in requires)
    return {
        "PKG-INFO": pkg_info.encode(),
        "pyproject.toml": tomlkit.dumps(pyproject).encode(),
        f"{name}/__init__.py": b'"""A micro-package."""\n',
        f"{name}/nodes.py": b"def clean(df):\n    return df.dropna()\n",
        # Keyed by the name, as Kedro projects do: several pulled into one env must not clash.
        f"{name}/config/parameters_{name}.yml": f"{name}:\n  threshold: 3\n".encode(),
        "tests/__init__.py": b"",
        "tests/test_nodes.py": f"from {name}.nodes import clean\n".encode(),
    }


def archive(files: Mapping[str, bytes | str], root: str = "data_cleaning-0.1", *, dirs: bool = True) -> bytes:
    """A tar.gz holding ``files`` under ``root/``, with folder members first like setuptools writes."""
    members: list[Member] = []
    if dirs:
        parts = [path.split("/")[:-1] for path in files]
        folders = {root} | {"/".join([root, *part[:depth]]) for part in parts for depth in range(1, len(part) + 1)}
        members += [dir_member(folder) for folder in sorted(folders)]
    members += [file_member(f"{root}/{path}", data) for path, data in sorted(files.items())]
    return tar_gz(members)


def valid_sdist(
    name: str = "data_cleaning",
    version: str = "0.1",
    requires: Sequence[str] = DEFAULT_REQUIRES,
    *,
    micropkg: Mapping[str, object] | None = None,
) -> bytes:
    """A well-formed micro-package sdist rooted at ``<name>-<version>/``."""
    return archive(sdist_files(name, version, requires, micropkg=micropkg), f"{name}-{version}")


ROOT = "data_cleaning-0.1"
PKG = f"{ROOT}/data_cleaning"


def _with(*extra: Member) -> bytes:
    """The valid sdist's members plus ``extra`` appended at the end."""
    base = [file_member(f"{ROOT}/{path}", data) for path, data in sorted(sdist_files().items())]
    return tar_gz([dir_member(ROOT), *base, *extra])


def dotdot_member() -> bytes:
    return _with(file_member(f"{PKG}/../../evil.py", "import os\n"))


def absolute_member() -> bytes:
    return _with(file_member("/etc/cron.d/evil", "* * * * * root true\n"))


def windows_drive_member() -> bytes:
    return _with(file_member("C:/Windows/evil.py", "x = 1\n"))


def backslash_member() -> bytes:
    return _with(file_member(f"{PKG}\\..\\..\\evil.py", "x = 1\n"))


def member_name_with_nul() -> bytes:
    """tarfile truncates plain header names at NUL, so carry the name in a pax ``path`` record."""
    info, data = file_member(f"{PKG}/evil.py", "x = 1\n")
    info.pax_headers = {"path": f"{PKG}/evil.py\x00.txt"}
    return _with((info, data))


def colon_member() -> bytes:
    """``nodes.py:hidden`` writes an NTFS alternate data stream on Windows."""
    return _with(file_member(f"{PKG}/nodes.py:hidden", "x = 1\n"))


def non_utf8_member() -> bytes:
    """A name stored as Latin-1 bytes (GNU format, no pax UTF-8 record), so it is not valid UTF-8."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tar:
        for info, data in [dir_member(ROOT), file_member(f"{PKG}/caf\u00e9.py", "x = 1\n")]:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip_bytes([buffer.getvalue()])


def control_character_member() -> bytes:
    return _with(file_member(f"{PKG}/evil\n.py", "x = 1\n"))


def empty_component_member() -> bytes:
    return _with(file_member(f"{ROOT}//data_cleaning/evil.py", "x = 1\n"))


def dot_component_member() -> bytes:
    return _with(file_member(f"{ROOT}/./data_cleaning/evil.py", "x = 1\n"))


def member_name_ends_with_slash() -> bytes:
    # REGTYPE, not AREGTYPE: tarfile would read an old-style "file/" as a folder.
    return _with(file_member(f"{PKG}/evil/", "x = 1\n"))


def symlink_out_of_tree() -> bytes:
    info, _ = file_member(f"{PKG}/passwd", type=tarfile.SYMTYPE)
    info.linkname = "../../../../etc/passwd"
    return _with((info, None))


def symlink_in_tree() -> bytes:
    info, _ = file_member(f"{PKG}/alias.py", type=tarfile.SYMTYPE)
    info.linkname = "nodes.py"
    return _with((info, None))


def hardlink_member() -> bytes:
    info, _ = file_member(f"{PKG}/copy.py", type=tarfile.LNKTYPE)
    info.linkname = f"{PKG}/nodes.py"
    return _with((info, None))


def device_member() -> bytes:
    info, _ = file_member(f"{PKG}/null", type=tarfile.CHRTYPE)
    info.devmajor, info.devminor = 1, 3
    return _with((info, None))


def block_device_member() -> bytes:
    info, _ = file_member(f"{PKG}/sda", type=tarfile.BLKTYPE)
    info.devmajor, info.devminor = 8, 0
    return _with((info, None))


def fifo_member() -> bytes:
    return _with(file_member(f"{PKG}/pipe", type=tarfile.FIFOTYPE))


def sparse_member() -> bytes:
    return _with(file_member(f"{PKG}/holes.bin", type=tarfile.GNUTYPE_SPARSE))


def unknown_type_member() -> bytes:
    return _with(file_member(f"{PKG}/odd", type=b"Z"))


@functools.lru_cache(maxsize=None)
def gzip_bomb(cap: int = DEFAULT_MAX_TOTAL_BYTES) -> bytes:
    """A member of zeros 1 MiB larger than ``cap``: ~1000x smaller compressed, streamed so it stays cheap."""
    size = cap + 1024 * 1024
    info, _ = file_member(f"{PKG}/zeros.bin")
    info.size = size
    head = raw_tar([dir_member(ROOT), file_member(f"{PKG}/__init__.py")], end_marker=False)
    header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    zeros = (b"\0" * min(1 << 20, size - done) for done in range(0, size, 1 << 20))
    padding = b"\0" * (-size % tarfile.BLOCKSIZE + 2 * tarfile.BLOCKSIZE)
    return gzip_bytes([head, header, *zeros, padding])


@functools.lru_cache(maxsize=None)
def pax_header_bomb(size: int = 2 * DEFAULT_MAX_TOTAL_BYTES) -> bytes:
    """A pax extended header whose record data is ``size`` zero bytes; tarfile reads it by itself."""
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, size
    raw = header.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
    zeros = (b"\0" * min(1 << 20, size - done) for done in range(0, size, 1 << 20))
    return gzip_bytes([raw_tar([dir_member(ROOT)], end_marker=False), raw, *zeros])


@functools.lru_cache(maxsize=None)
def too_many_members(n: int = DEFAULT_MAX_MEMBERS + 1, *, truncate_tail: bool = False) -> bytes:
    """A valid layout padded with ``n`` members in total (tiny files).

    With ``truncate_tail`` the gzip stream is cut near its end, so a reader that
    went past the member cap would report truncation instead of the cap.
    """
    base = [dir_member(ROOT), *(file_member(f"{ROOT}/{p}", d) for p, d in sorted(sdist_files().items()))]
    extra = [file_member(f"{PKG}/filler/f{i:06d}.txt", b"x") for i in range(max(0, n - len(base)))]
    data = tar_gz(base + extra)
    return data[: len(data) * 9 // 10] if truncate_tail else data


def two_top_level_folders() -> bytes:
    return _with(file_member("other-0.1/other/__init__.py"))


def top_level_file() -> bytes:
    return _with(file_member("setup.py", "import os; os.system('true')\n"))


def no_package() -> bytes:
    files = {p: d for p, d in sdist_files().items() if p != "data_cleaning/__init__.py"}
    return archive({**files, "data_cleaning.egg-info/PKG-INFO": b"", "docs/index.md": b""})


def two_packages() -> bytes:
    return archive({**sdist_files(), "other_pkg/__init__.py": b""})


def bad_package_name() -> bytes:
    files = {p.replace("data_cleaning/", "1abc/"): d for p, d in sdist_files().items()}
    return archive(files)


def keyword_package_name() -> bytes:
    files = {p.replace("data_cleaning/", "class/"): d for p, d in sdist_files().items()}
    return archive(files)


def missing_metadata() -> bytes:
    files = {p: d for p, d in sdist_files().items() if p not in ("PKG-INFO", "pyproject.toml")}
    return archive(files)


def invalid_requirement() -> bytes:
    return valid_sdist(requires=("--extra-index-url https://evil.example/simple",))


def invalid_pyproject() -> bytes:
    return archive({**sdist_files(), "pyproject.toml": b"[project\nname = \n"})


def duplicate_member() -> bytes:
    return _with(file_member(f"{PKG}/nodes.py", "import os\n"))


def case_collision() -> bytes:
    return _with(file_member(f"{PKG}/Nodes.py", "import os\n"))


def unicode_normalisation_collision() -> bytes:
    nfc, nfd = (unicodedata.normalize(form, "café.py") for form in ("NFC", "NFD"))
    return _with(file_member(f"{PKG}/{nfc}", "a = 1\n"), file_member(f"{PKG}/{nfd}", "b = 2\n"))


def file_folder_collision() -> bytes:
    return _with(file_member(f"{PKG}/nodes.py/inner.py", "x = 1\n"))


def empty_file() -> bytes:
    return b""


def not_gzip() -> bytes:
    return b"this is not an archive\n" * 40


def plain_tar_not_gzipped() -> bytes:
    return raw_tar([file_member(f"{ROOT}/{p}", d) for p, d in sorted(sdist_files().items())])


def gzip_not_tar() -> bytes:
    return gzip_bytes([b"just some text, compressed\n" * 40])


def corrupt_gzip() -> bytes:
    """Flip the CRC32 in the gzip trailer: only a reader that checks the whole stream notices."""
    data = bytearray(valid_sdist())
    data[-8:-4] = bytes(b ^ 0xFF for b in data[-8:-4])
    return bytes(data)


def corrupt_deflate() -> bytes:
    """Overwrite part of the deflate data: inflating fails mid-stream."""
    data = bytearray(valid_sdist())
    middle = len(data) // 2
    data[middle : middle + 32] = b"\xff" * 32
    return bytes(data)


def truncated_gzip() -> bytes:
    data = valid_sdist()
    return data[: len(data) // 2]


def truncated_tar() -> bytes:
    """A complete gzip stream around a tar cut inside a member's content."""
    raw = raw_tar([file_member(f"{ROOT}/{p}", d) for p, d in sorted(sdist_files().items())])
    return gzip_bytes([raw[: 512 * 3 + 10]])


def tar_without_end_marker() -> bytes:
    """tarfile silently accepts a tar cut at a header boundary; the reader must not."""
    members = [file_member(f"{ROOT}/{p}", d) for p, d in sorted(sdist_files().items())]
    return gzip_bytes([raw_tar(members, end_marker=False)])


# name -> (builder with default arguments, fragment the rejection message must contain)
_CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "dotdot_member": (dotdot_member, "'..' path component"),
    "absolute_member": (absolute_member, "absolute path"),
    "windows_drive_member": (windows_drive_member, "Windows drive"),
    "backslash_member": (backslash_member, "backslash"),
    "member_name_with_nul": (member_name_with_nul, "NUL character"),
    "colon_member": (colon_member, "stream separator"),
    "non_utf8_member": (non_utf8_member, "not valid UTF-8"),
    "control_character_member": (control_character_member, "control or invisible character"),
    "empty_component_member": (empty_component_member, "empty path component"),
    "dot_component_member": (dot_component_member, "'.' path component"),
    "member_name_ends_with_slash": (member_name_ends_with_slash, "name ends in '/'"),
    "symlink_out_of_tree": (symlink_out_of_tree, "symbolic link"),
    "symlink_in_tree": (symlink_in_tree, "symbolic link"),
    "hardlink_member": (hardlink_member, "hard link"),
    "device_member": (device_member, "character device"),
    "block_device_member": (block_device_member, "block device"),
    "fifo_member": (fifo_member, "FIFO"),
    "sparse_member": (sparse_member, "sparse file"),
    "unknown_type_member": (unknown_type_member, "unsupported member type"),
    "gzip_bomb": (gzip_bomb, f"size cap of {DEFAULT_MAX_TOTAL_BYTES} bytes"),
    "pax_header_bomb": (pax_header_bomb, f"size cap of {DEFAULT_MAX_TOTAL_BYTES} bytes"),
    "too_many_members": (too_many_members, f"member cap of {DEFAULT_MAX_MEMBERS}"),
    "two_top_level_folders": (two_top_level_folders, "second top-level folder"),
    "top_level_file": (top_level_file, "file at the top level"),
    "no_package": (no_package, "no package folder"),
    "two_packages": (two_packages, "2 package folders"),
    "bad_package_name": (bad_package_name, "not a valid Python identifier"),
    "keyword_package_name": (keyword_package_name, "Python keyword"),
    "missing_metadata": (missing_metadata, "missing metadata"),
    "invalid_requirement": (invalid_requirement, "invalid requirement"),
    "invalid_pyproject": (invalid_pyproject, "not valid TOML"),
    "duplicate_member": (duplicate_member, "duplicate member name"),
    "case_collision": (case_collision, "case-insensitively"),
    "unicode_normalisation_collision": (unicode_normalisation_collision, "NFC normalisation"),
    "file_folder_collision": (file_folder_collision, "both a file and a folder"),
    "empty_file": (empty_file, "is empty"),
    "not_gzip": (not_gzip, "not a gzip-compressed file"),
    "plain_tar_not_gzipped": (plain_tar_not_gzipped, "uncompressed tar archive"),
    "gzip_not_tar": (gzip_not_tar, "not a tar archive"),
    "corrupt_gzip": (corrupt_gzip, "gzip stream is corrupt"),
    "corrupt_deflate": (corrupt_deflate, "corrupt"),
    "truncated_gzip": (truncated_gzip, "gzip stream is truncated"),
    "truncated_tar": (truncated_tar, "corrupt or truncated"),
    "tar_without_end_marker": (tar_without_end_marker, "end-of-archive marker"),
}

HOSTILE_CASES: dict[str, Callable[[], bytes]] = {name: case[0] for name, case in _CASES.items()}
EXPECTED_FRAGMENTS: dict[str, str] = {name: case[1] for name, case in _CASES.items()}
