"""One ``ast`` parse and one walk per Python file, shared by every reader of its syntax tree.

Packaging a file reads its tree three times: the rewriter looks for references
to move, the dependency finder for references to other micro-packages, and the
name-clash check for imports of the package's new name. Parsing and walking
dominate each of those, so the tree and its nodes are kept, keyed by the text,
for the few files a worker is busy with.
"""

from __future__ import annotations

import ast
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from micropkg_tasks.core.errors import ProjectError


@dataclass(frozen=True)
class ParsedSource:
    tree: ast.Module
    # For each top-level statement, its nodes breadth-first (the statement first, so a
    # parent always comes before its children).
    statement_nodes: tuple[tuple[ast.AST, ...], ...]

    def nodes(self) -> Iterator[ast.AST]:
        """Every node below the module, statement by statement."""
        for nodes in self.statement_nodes:
            yield from nodes


def parseable_text(source: str) -> str:
    """``source`` as the parsers get it: a leading byte order mark set aside, and old Mac
    line endings (a lone CR, and no LF anywhere) read as LF, which keeps every line number.

    A byte order mark is valid at the start of a file but not inside text handed to a
    parser. libcst drops the final line break of a file whose lines end in a lone CR; with
    no LF anywhere, CR <-> LF is one to one (Python reads every CR as a line break, even
    inside strings), so the LF form is parsed and rewritten instead. The rewriter sharing
    this function with the other readers also lets them share the parse.
    """
    text = source.removeprefix("\ufeff")
    if "\r" in text and "\n" not in text:
        text = text.replace("\r", "\n")
    return text


# A tree takes about 40 times the memory of its text: keep the trees of up to 2 MB of
# source (about 80 MB), more than the largest micro-package a worker handles at once.
_KEPT_CHARACTERS = 2_000_000
_parsed: OrderedDict[str, ParsedSource] = OrderedDict()
_kept_characters = 0


def breadth_first(node: ast.AST) -> tuple[ast.AST, ...]:
    """``node`` and everything below it, in the order of ``ast.walk`` (about a third faster)."""
    found: list[ast.AST] = [node]
    position = 0
    while position < len(found):
        current = found[position]
        position += 1
        for name in current._fields:
            value = getattr(current, name, None)
            if isinstance(value, list):
                found.extend(item for item in value if isinstance(item, ast.AST))
            elif isinstance(value, ast.AST):
                found.append(value)
    return tuple(found)


def parse_source(text: str, filename: str) -> ParsedSource:
    """``text`` parsed and walked (see ``parseable_text``); a syntax problem is a one-line ``ProjectError``.

    A parser's RecursionError or MemoryError passes through, for the caller to report.
    """
    found = _parsed.get(text)
    if found is not None:
        _parsed.move_to_end(text)
        return found
    try:
        with warnings.catch_warnings():
            # Invalid escape sequences warn on 3.12+; they are not our business here.
            warnings.simplefilter("ignore")
            tree = ast.parse(text, filename=filename)
    except SyntaxError as exc:
        reason = (exc.msg or "invalid syntax").splitlines()[0]
        raise ProjectError(f"{filename}, line {exc.lineno or 1}: not valid Python ({reason})") from None
    except ValueError:  # null bytes, on Pythons that do not report them as SyntaxError
        line = text.count("\n", 0, max(text.find("\0"), 0)) + 1
        raise ProjectError(f"{filename}, line {line}: not valid Python (null byte)") from None
    found = ParsedSource(tree, tuple(breadth_first(statement) for statement in tree.body))
    _keep(text, found)
    return found


def _keep(text: str, parsed: ParsedSource) -> None:
    global _kept_characters
    if len(text) > _KEPT_CHARACTERS:
        return
    _parsed[text] = parsed
    _kept_characters += len(text)
    while _kept_characters > _KEPT_CHARACTERS:
        oldest, _ = _parsed.popitem(last=False)
        _kept_characters -= len(oldest)


def parse_file_bytes(content: bytes, filename: str) -> ParsedSource | None:
    """A file's tree as the rewriter sees it, or None when the file is not UTF-8 Python
    (the rewriter reports that, with the location)."""
    try:
        return parse_source(parseable_text(content.decode("utf-8")), filename)
    except (UnicodeDecodeError, ProjectError):
        return None
