"""pip's requirements-file line rules: continuations first, then comments, then options.

Shared by reading a micro-package's ``requirements.txt`` (core/requirements/read.py) and
merging into a project's ``requirements.in`` (core/requirements/merge.py), so a file
behaves here as it does under ``pip install -r``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LogicalLine:
    """One requirement-file line after joining backslash continuations."""

    lineno: int  # 1-based number of the first physical line, used in messages
    indices: tuple[int, ...]  # 0-based physical lines it spans
    text: str


def physical_lines(text: str) -> list[str]:
    """Split on ``\\n`` only, keeping any ``\\r`` so merged text stays verbatim."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        # A trailing newline terminates the last line; it does not start a new one.
        lines.pop()
    return lines


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def logical_lines(lines: Sequence[str]) -> list[LogicalLine]:
    """Join backslash continuations the way pip does.

    A full comment line ends a pending continuation instead of being glued to
    it, and no space is inserted at the join (``foo>=1,\\`` + ``<2`` is one
    specifier).
    """
    result: list[LogicalLine] = []
    parts: list[str] = []
    indices: list[int] = []

    def flush() -> None:
        if indices:
            result.append(LogicalLine(indices[0] + 1, tuple(indices), "".join(parts)))
            parts.clear()
            indices.clear()

    for index, raw in enumerate(lines):
        line = raw.rstrip("\r")
        if _is_comment(line):
            flush()
            result.append(LogicalLine(index + 1, (index,), line))
            continue
        indices.append(index)
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            parts.append(stripped[:-1])
            continue
        parts.append(line)
        flush()
    flush()
    return result


def strip_inline_comment(text: str) -> str:
    """Drop a ``#`` comment that starts the line or follows whitespace.

    A ``#`` glued to other characters is kept, because URL fragments such as
    ``pkg @ https://x/pkg.tar.gz#sha256=...`` are part of the requirement.
    """
    for index, char in enumerate(text):
        if char == "#" and (index == 0 or text[index - 1].isspace()):
            return text[:index].strip()
    return text.strip()


def split_options(text: str) -> tuple[str, str]:
    """Split ``foo==1 --hash=...`` into the requirement and its trailing pip options.

    Like pip, options start at the first whitespace-preceded ``-``; the
    requirement part is cut at that position rather than re-joined from
    tokens, so quoted marker values keep their spacing.
    """
    for index in range(1, len(text)):
        if text[index] == "-" and text[index - 1].isspace():
            return text[:index].strip(), text[index:].strip()
    return text.strip(), ""
