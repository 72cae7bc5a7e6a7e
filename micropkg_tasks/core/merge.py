"""Three-way merge of one installed file: the base it was installed as, the local copy, and upstream.

The merge algorithm is merge3's (the one Breezy uses); this module only decides
what may be merged (text, never binary), keeps every byte of the inputs, and
writes conflicts git-style with the base section (diff3 style), so that no
local line is ever dropped without a marker around it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

# What installing does with a file that cannot simply be written (besides the transaction's
# create, update, delete and unchanged): refused, or, with --merge, one of the others.
CONFLICT = "conflict"  # edited locally (or not ours) and changed upstream: refused
MERGED = "merged"  # a clean three-way merge: local edits kept on top of upstream
MERGE_CONFLICT = "conflicted"  # written with conflict markers, to be resolved by hand
KEPT = "kept"  # the local state wins and upstream's change is reported, not applied

LOCAL_LABEL = b"local"
BASE_LABEL = b"base (as installed)"
UPSTREAM_LABEL = b"upstream"
START, BASE, MIDDLE, END = b"<<<<<<<", b"|||||||", b"=======", b">>>>>>>"


def git_blob_id(data: bytes) -> str:
    """The id git gives this content as a blob: SHA-1 of ``blob <size>\\0<content>``.

    Recorded in the lock beside the sha256, so any clone that committed an install
    can give back the merge base with ``git cat-file blob <id>``, with no network."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_text(data: bytes) -> bool:
    """Only UTF-8 text without NUL bytes is merged; anything else is binary."""
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def has_conflict_markers(data: bytes) -> bool:
    """Whether a merge's conflict markers are still in the file (both ends of a region)."""
    lines = data.splitlines()
    return any(line.startswith(START + b" ") for line in lines) and any(line.startswith(END + b" ") for line in lines)


@dataclass(frozen=True)
class Merged:
    content: bytes
    conflicts: int  # regions written with markers; 0 for a clean merge


def _newline(lines: Sequence[bytes]) -> bytes:
    for line in lines:
        for ending in (b"\r\n", b"\n", b"\r"):
            if line.endswith(ending):
                return ending
    return b"\n"


def _block(out: list[bytes], lines: Sequence[bytes], newline: bytes) -> None:
    """Copy ``lines``; a last line without its newline gets one, so the next marker starts a line."""
    out.extend(lines)
    if out and not out[-1].endswith((b"\n", b"\r")):
        out.append(newline)


def merge_three(base: bytes, local: bytes, upstream: bytes) -> Merged:
    """Merge ``local`` and ``upstream`` edits of ``base``. All three must be text (see ``is_text``)."""
    from merge3 import Merge3  # loaded only when a file really needs merging

    base_lines = base.splitlines(keepends=True)
    local_lines = local.splitlines(keepends=True)
    upstream_lines = upstream.splitlines(keepends=True)
    newline = _newline(local_lines or upstream_lines or base_lines)
    merger = Merge3(base_lines, local_lines, upstream_lines)
    out: list[bytes] = []
    conflicts = 0
    for region in merger.merge_regions():
        kind = region[0]
        if kind == "unchanged":
            out.extend(base_lines[region[1] : region[2]])
        elif kind in ("a", "same"):
            out.extend(local_lines[region[1] : region[2]])
        elif kind == "b":
            out.extend(upstream_lines[region[1] : region[2]])
        else:  # "conflict": (kind, base_start, base_end, local_start, local_end, upstream_start, upstream_end)
            conflicts += 1
            _, base_start, base_end, local_start, local_end, up_start, up_end = region
            if out and not out[-1].endswith((b"\n", b"\r")):
                out.append(newline)
            out.append(START + b" " + LOCAL_LABEL + newline)
            _block(out, local_lines[local_start:local_end], newline)
            out.append(BASE + b" " + BASE_LABEL + newline)
            _block(out, base_lines[base_start:base_end], newline)
            out.append(MIDDLE + newline)
            _block(out, upstream_lines[up_start:up_end], newline)
            out.append(END + b" " + UPSTREAM_LABEL + newline)
    return Merged(b"".join(out), conflicts)
