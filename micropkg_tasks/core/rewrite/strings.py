"""Read-only analysis for :mod:`micropkg_tasks.core.rewrite.rewriter`.

Nothing here edits source. It matches dotted names against the moves, decides
whether the value of a string literal is a dotted path worth rewriting, runs the
cheap substring probe that lets files which cannot be affected skip parsing,
and scans the standard ``ast`` (fast, with exact line numbers) to find outside
references and whether the lossless libcst rewrite is needed at all.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from micropkg_tasks.core.rewrite.pysource import ParsedSource


@dataclass(frozen=True)
class OutsideReference:
    """A reference that will not resolve once the micro-package stands alone."""

    line: int
    name: str
    kind: str  # "import" | "relative-import" | "string"


class Move(Protocol):
    """What the helpers need from a ``ModuleMove`` (kept structural to avoid an import cycle)."""

    @property
    def old(self) -> str: ...

    @property
    def new(self) -> str: ...

    @property
    def string_roots(self) -> frozenset[str] | None: ...


def is_dotted(name: str) -> bool:
    """True for ``a``, ``a.b.c``; false for ``""``, ``a.``, ``a b``, ``a-b``."""
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def is_within(name: str, root: str) -> bool:
    """True if ``name`` is ``root`` or below it, comparing whole dotted components."""
    return name == root or name.startswith(root + ".")


class MoveTable:
    """The moves of one rewrite, indexed for longest-prefix lookups."""

    def __init__(self, moves: Iterable[Move]) -> None:
        self.by_old: dict[str, Move] = {}
        for move in moves:
            # First one wins for duplicated ``old`` so the caller's order is respected.
            self.by_old.setdefault(move.old, move)
        self.dotted_olds = frozenset(old for old in self.by_old if "." in old)
        self.single_olds = frozenset(old for old in self.by_old if "." not in old)
        self.first_components = frozenset(old.split(".", 1)[0] for old in self.by_old)

    def match(self, name: str) -> Move | None:
        """The move with the longest ``old`` that ``name`` is equal to or below.

        Walking the prefixes of ``name`` from longest to shortest makes the
        longest match win and only ever cuts at component boundaries, so
        ``a.bc`` can never match a move of ``a.b``.
        """
        prefix = name
        while True:
            move = self.by_old.get(prefix)
            if move is not None:
                return move
            cut = prefix.rfind(".")
            if cut < 0:
                return None
            prefix = prefix[:cut]

    def is_ancestor_of_move(self, name: str) -> bool:
        """True if some move's ``old`` sits strictly below ``name`` (e.g. ``pkg.pipelines``)."""
        return any(old.startswith(name + ".") for old in self.by_old)


def renamed(name: str, move: Move) -> str:
    """``name`` (equal to or below ``move.old``) with its ``old`` prefix replaced by ``new``."""
    return move.new + name[len(move.old) :]


def split_literal(text: str) -> tuple[str, str] | None:
    """Split ``"a.b.c:attr"`` into ``("a.b.c", ":attr")``; None if not a dotted path.

    The ``:attr`` part (entry-point style, itself dotted) is optional.
    """
    module, colon, attr = text.partition(":")
    if not is_dotted(module) or (colon and not is_dotted(attr)):
        return None
    return module, colon + attr


def rewrite_literal(text: str, table: MoveTable) -> str | None:
    """The rewritten value of a string literal, or None when it must stay as it is.

    With ``string_roots`` the literal must name something *below* ``old``
    whose first component is one of the roots: on the pull side a bare
    ``"data_cleaning"`` is usually a namespace and ``"data_cleaning.raw"`` a
    dataset name, and neither must change.
    """
    parts = split_literal(text)
    if parts is None:
        return None
    module, tail = parts
    move = table.match(module)
    if move is None:
        return None
    if move.string_roots is not None:
        below = module[len(move.old) + 1 :]
        if not below or below.split(".", 1)[0] not in move.string_roots:
            return None
    new_text = renamed(module, move) + tail
    return new_text if new_text != text else None


def max_relative_level(source: str) -> int:
    """An upper bound on the level of any relative import in ``source``.

    Counts the dots after each ``from`` keyword candidate (tolerating the
    whitespace and line continuations Python allows between them). Hits in
    comments or strings only make the bound larger, which merely costs a
    parse, so the probe never misses a real relative import.
    """
    deepest = 0
    start = source.find("from")
    while start >= 0:
        pos = start + 4
        level = 0
        while pos < len(source):
            char = source[pos]
            if char == ".":
                level += 1
            elif char not in " \t\f\\\r\n":
                break
            pos += 1
        deepest = max(deepest, level)
        start = source.find("from", pos)
    return deepest


def might_need_work(
    source: str, table: MoveTable, project_package: str | None, package_depth: int | None
) -> bool:
    """Cheap substring probe: False means no rewrite and no report is possible."""
    if any(first in source for first in table.first_components):
        return True
    if project_package and project_package in source:
        return True
    return package_depth is not None and max_relative_level(source) > package_depth + 1


def _ast_dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a pure Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def scan(
    parsed: ParsedSource, table: MoveTable, project_package: str | None, package_depth: int | None
) -> tuple[list[OutsideReference], frozenset[int], frozenset[str]]:
    """Find outside references, what libcst must rewrite, and the chain-mode roots.

    Returns the outside references in line order, the indices of the top-level
    statements that contain something to rewrite (so libcst can leave the rest
    of the tree unvisited), and the chain-mode roots. A single-identifier
    ``old`` (pull side) is in *chain mode* when the file has a plain
    ``import old.<sub>``: only then are bare ``old`` names known to be that
    module's root binding, and rewritten.
    """
    # The hot loop of packaging and pulling (every node of every file): common nodes are handled
    # inline, as a call per node would cost; only the rarer from-imports have a function.
    outside: list[OutsideReference] = []
    hot: set[int] = set()
    chain_roots: set[str] = set()
    loaded_singles: list[tuple[int, str]] = []
    skipped_strings: set[int] = set()

    def internal(name: str) -> bool:
        return project_package is not None and is_within(name, project_package)

    template_str = getattr(ast, "TemplateStr", ast.JoinedStr)  # t-strings exist on 3.14+
    for index, nodes in enumerate(parsed.statement_nodes):
        for node in nodes:  # breadth-first, so parents come before children
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if table.match(alias.name) is not None:
                        hot.add(index)
                        head = alias.name.split(".", 1)[0]
                        if alias.asname is None and head in table.single_olds and "." in alias.name:
                            chain_roots.add(head)
                    elif internal(alias.name):
                        outside.append(OutsideReference(alias.lineno, alias.name, "import"))
            elif isinstance(node, ast.ImportFrom):
                if _scan_import_from(node, table, internal, package_depth, outside):
                    hot.add(index)
            elif isinstance(node, ast.Attribute):
                if index not in hot and _ast_dotted(node) in table.dotted_olds:
                    hot.add(index)
            elif isinstance(node, ast.Name):
                if node.id in table.single_olds and isinstance(node.ctx, ast.Load):
                    loaded_singles.append((index, node.id))
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                skipped_strings.add(id(node.value))  # docstrings and bare strings stay as written
            elif isinstance(node, (ast.JoinedStr, template_str)):
                skipped_strings.update(id(value) for value in node.values)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                parts = None if id(node) in skipped_strings else split_literal(node.value)
                if parts is None:
                    continue
                if table.match(parts[0]) is not None:
                    if rewrite_literal(node.value, table) is not None:
                        hot.add(index)
                elif internal(parts[0]):
                    outside.append(OutsideReference(node.lineno, node.value, "string"))
    hot.update(index for index, name in loaded_singles if name in chain_roots)
    outside.sort(key=lambda ref: ref.line)
    return outside, frozenset(hot), frozenset(chain_roots)


def _scan_import_from(
    node: ast.ImportFrom, table: MoveTable, internal: Callable[[str], bool], package_depth: int | None,
    outside: list[OutsideReference],
) -> bool:
    """``scan`` for one ``from ... import``: note the outside references it makes; True when
    libcst must rewrite it."""
    if node.level:
        if package_depth is not None and node.level > package_depth + 1:
            name = "." * node.level + (node.module or "")
            outside.append(OutsideReference(node.lineno, name, "relative-import"))
        return False
    module = node.module or ""
    if table.match(module) is not None:
        return True
    # Below an ancestor of a move (``pkg.pipelines``) the imported
    # names are likely sibling modules, so each one is reported.
    per_name = table.is_ancestor_of_move(module)
    hot = False
    for alias in node.names:
        full = f"{module}.{alias.name}"
        if full in table.by_old:
            hot = True
        elif per_name and internal(module) and alias.name != "*":
            outside.append(OutsideReference(alias.lineno, full, "import"))
    if internal(module) and (not per_name or node.names[0].name == "*"):
        outside.append(OutsideReference(node.lineno, module, "import"))
    return hot
