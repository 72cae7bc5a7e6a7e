"""Which stretches of a file libcst must see: the lines of the top-level statements to rewrite.

libcst is the slowest step of a rewrite, and its cost grows with the text it
parses, while the statements that need rewriting are usually a few imports
and the odd function (under 5% of the lines of a typical pipeline file). So the
rewriter hands libcst only those statements' lines, as small modules of their
own, and keeps every other byte of the file as it is.

A region is a run of whole lines holding complete top-level statements, so it
parses on its own exactly as it does inside the file. Files where that might
not hold are left to the whole-file parse (``regions`` returns None): mixed or
old-Mac line endings (libcst picks one line ending per module), form feeds
(they reset indentation), and statements joined to their neighbours by a
backslash continuation.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    """Characters ``start:end`` of the file hold the top-level statements ``first`` to ``first + count - 1``."""

    start: int
    end: int
    first: int
    count: int
    hot: frozenset[int]  # the statements to rewrite, numbered from the region's first


def _first_line(statement: ast.stmt) -> int:
    decorators = getattr(statement, "decorator_list", ())
    return min([statement.lineno, *(decorator.lineno for decorator in decorators)])


def _uniform_line_endings(text: str) -> bool:
    crlf = text.count("\r\n")
    if text.count("\r") != crlf:
        return False  # a lone CR somewhere
    return crlf == 0 or text.count("\n") == crlf


def _continued(text: str, offset: int) -> bool:
    """True when the line ending just before ``offset`` follows a backslash (joining two lines)."""
    before = text[max(0, offset - 3) : offset]
    for ending in ("\r\n", "\n"):
        if before.endswith(ending):
            return before[: -len(ending)].endswith("\\")
    return False


def regions(text: str, tree: ast.Module, hot: frozenset[int]) -> list[Region] | None:
    """The regions covering every statement in ``hot``, in file order; None when the file must be parsed whole."""
    if not hot or "\f" in text or not _uniform_line_endings(text):
        return None
    # Runs of statements that share a line (``a = 1; import b``) go together; so do
    # consecutive runs with something to rewrite, with only blank or comment lines between.
    runs: list[list[int]] = []  # [first line, last line, first statement, count, holds a hot one]
    for index, statement in enumerate(tree.body):
        first, last = _first_line(statement), statement.end_lineno or statement.lineno
        if runs and first <= runs[-1][1]:
            run = runs[-1]
            run[1], run[3], run[4] = max(run[1], last), run[3] + 1, run[4] or index in hot
        else:
            runs.append([first, last, index, 1, index in hot])
    merged: list[list[int]] = []
    previous_hot = False
    for run in runs:
        if run[4] and previous_hot:
            merged[-1][1], merged[-1][3] = run[1], merged[-1][3] + run[3]
        elif run[4]:
            merged.append(list(run))
        previous_hot = bool(run[4])

    line_starts = [0]
    position = text.find("\n")
    while position >= 0:
        line_starts.append(position + 1)
        position = text.find("\n", position + 1)
    line_starts.append(len(text))

    found = []
    for first_line, last_line, first, count, _ in merged:
        start, end = line_starts[first_line - 1], line_starts[min(last_line, len(line_starts) - 1)]
        if _continued(text, start) or _continued(text, end):
            return None
        numbers = frozenset(index - first for index in hot if first <= index < first + count)
        found.append(Region(start, end, first, count, numbers))
    return found
