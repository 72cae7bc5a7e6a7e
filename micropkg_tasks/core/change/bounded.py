"""Bounded work on input we do not control: capped reads of regular files only, and parsers
that cannot exhaust the stack or memory without saying which file did it.

Every file the tool parses (``pyproject.toml``, ``micropkg.lock``, requirements
files, Python sources) and every local sdist it reads goes through
:func:`read_file_bytes`: it opens without blocking (a FIFO in place of
``micropkg.lock`` must not hang a run), reads only regular files (never
``/dev/zero``), and stops one byte past its cap, so a huge or endless file is
refused before it fills memory. :func:`parsing` turns the ``RecursionError``
or ``MemoryError`` that deeply nested input raises inside a parser into one
sentence naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import Iterator

from micropkg_tasks.core.errors import MicropkgError, ProjectError

MIB = 1024 * 1024
# Text files we parse: far above any real pyproject.toml, lock, requirements file or module.
MAX_PARSED_BYTES = 16 * MIB
# One sdist, from any location; the sdist reader applies the finer caps on what it unpacks.
MAX_SDIST_BYTES = 256 * MIB
_CHUNK = MIB

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words: "a FIFO (named pipe)", "a character device"..."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def too_large(shown: str, limit: int) -> str:
    return f"{shown} is larger than {limit // MIB} MiB, the most this tool reads from one file"


def read_file_bytes(
    path: Path | str, *, display: str | None = None, limit: int = MAX_PARSED_BYTES,
    error: type[MicropkgError] = ProjectError,
) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    A missing file or a folder raises ``FileNotFoundError`` / ``IsADirectoryError`` as
    ``open`` would, so callers keep their own wording for those; anything that is not
    a regular file, or is larger than ``limit``, raises ``error`` naming ``display``.
    """
    shown = display or str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags)
    try:
        info = os.fstat(descriptor)
        mode = info.st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise error(f"{shown} is {file_kind(mode)}, not a regular file; refusing to read it")
        if info.st_size > limit:
            raise error(too_large(shown, limit))
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(descriptor, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # the file grew while we read it
            raise error(too_large(shown, limit))
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def read_file_text(path: Path | str, *, display: str | None = None, limit: int = MAX_PARSED_BYTES) -> str:
    """:func:`read_file_bytes` decoded as UTF-8 (``UnicodeDecodeError`` is left to the caller)."""
    return read_file_bytes(path, display=display, limit=limit).decode("utf-8")


@contextlib.contextmanager
def parsing(shown: str, what: str = "parse") -> Iterator[None]:
    """Turn a parser's RecursionError or MemoryError on hostile input into one sentence."""
    try:
        yield
    except RecursionError:
        raise ProjectError(f"{shown} is nested too deeply to {what} safely") from None
    except MemoryError:
        raise ProjectError(f"{shown} is nested too deeply or too large to {what} safely (out of memory)") from None
