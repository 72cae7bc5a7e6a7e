"""The libcst half of the rewriter: apply the planned changes to the statements that need them.

Kept apart from ``rewrite.py`` so that libcst, slow to import, is loaded only
when some file really has references to rewrite.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

import libcst as cst

from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.rewrite.regions import Region, regions
from micropkg_tasks.core.rewrite.strings import (
    MoveTable,
    rewrite_literal,
)

_Dotted = cst.Name | cst.Attribute


def rewrite_statements(
    text: str, tree: ast.Module, hot: frozenset[int], table: MoveTable, chain_roots: frozenset[str], filename: str
) -> str:
    """Rewrite the top-level statements numbered in ``hot`` (``tree`` is ``text`` parsed by ``ast``).

    libcst parses only the lines of those statements when it safely can (see
    ``rewrite_regions.py``); the bytes are the same as from parsing the whole file.
    """
    found = regions(text, tree, hot)
    if found is not None:
        rewritten = _rewrite_regions(text, found, table, chain_roots)
        if rewritten is not None:
            return rewritten
    return rewrite_whole_file(text, hot, len(tree.body), table, chain_roots, filename)


def rewrite_whole_file(
    text: str, hot: frozenset[int], ast_count: int, table: MoveTable, chain_roots: frozenset[str], filename: str
) -> str:
    """The same rewrite with libcst parsing all of ``text``."""
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:  # syntax that ast accepts but libcst does not know
        raise ProjectError(f"{filename}, line {exc.raw_line}: cannot parse Python source") from None
    return _rewrite_statements(module, hot, ast_count, _Rewriter(table, chain_roots)).code


def _rewrite_regions(
    text: str, found: list[Region], table: MoveTable, chain_roots: frozenset[str]
) -> str | None:
    """``text`` with each region rewritten on its own; None when libcst sees a region differently from ``ast``."""
    pieces: list[str] = []
    done = 0
    for region in found:
        try:
            module = cst.parse_module(text[region.start : region.end])
        except cst.ParserSyntaxError:
            return None  # the whole-file parse reports it, with the file's line number
        if sum(_ast_statements(statement) for statement in module.body) != region.count:
            return None
        # A fresh rewriter for each region: it remembers nodes by id, and a freed
        # region's ids can come back in the next one.
        rewritten = _rewrite_statements(module, region.hot, region.count, _Rewriter(table, chain_roots))
        pieces += [text[done : region.start], rewritten.code]
        done = region.end
    pieces.append(text[done:])
    return "".join(pieces)


def _ast_statements(statement: cst.BaseStatement) -> int:
    """How many statements ``ast`` sees in this libcst one (``a; b`` on one line is two)."""
    return len(statement.body) if isinstance(statement, cst.SimpleStatementLine) else 1


def _rewrite_statements(
    module: cst.Module, hot: frozenset[int], ast_count: int, rewriter: _Rewriter
) -> cst.Module:
    """Visit only the top-level statements ``ast`` found something in.

    Visiting is most of libcst's cost, and most statements of a file (function
    bodies without references) have nothing to rewrite. ``ast`` numbers
    ``a; b`` as two statements where libcst has one line, hence the counting.
    """
    body: list[cst.BaseStatement] = []
    index = 0
    for statement in module.body:
        size = _ast_statements(statement)
        if hot.isdisjoint(range(index, index + size)):
            body.append(statement)
        else:
            result = statement.visit(rewriter)
            body.extend(result.nodes if isinstance(result, cst.FlattenSentinel) else [result])  # type: ignore[list-item]
        index += size
    if index != ast_count:  # the trees disagree on statements: visit everything instead
        return module.visit(rewriter)
    return module.with_changes(body=body)


def _cst_dotted(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a pure Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


def _dotted_node(name: str) -> _Dotted:
    """A fresh Name/Attribute chain for ``name``."""
    first, *rest = name.split(".")
    node: _Dotted = cst.Name(first)
    for part in rest:
        node = cst.Attribute(value=node, attr=cst.Name(part))
    return node


def _replace_head(node: cst.BaseExpression, keep: int, new: str) -> cst.BaseExpression:
    """Replace all but the last ``keep`` components of a dotted chain by ``new``.

    Only the replaced sub-chain is rebuilt; the kept attributes (and their
    whitespace and parentheses) are the original nodes.
    """
    if keep == 0:
        assert isinstance(node, (cst.Name, cst.Attribute))
        return _dotted_node(new).with_changes(lpar=node.lpar, rpar=node.rpar)
    assert isinstance(node, cst.Attribute)
    return node.with_changes(value=_replace_head(node.value, keep - 1, new))


def _binding(new: str, local: str) -> cst.ImportFrom | cst.ImportAlias:
    """An import binding ``local`` to module ``new``: ``from P import L [as local]``
    when ``new`` has a parent, else the alias ``new [as local]`` for an ``import``."""
    parent, _, last = new.rpartition(".")
    asname = cst.AsName(name=cst.Name(local)) if (last if parent else new) != local else None
    if not parent:
        return cst.ImportAlias(name=cst.Name(new), asname=asname)
    alias = cst.ImportAlias(name=cst.Name(last), asname=asname)
    return cst.ImportFrom(module=_dotted_node(parent), names=[alias])


def _store_names(target: cst.BaseExpression) -> list[cst.Name]:
    """Bare names bound by an assignment-like target (``a``, ``a, (b, *c)``)."""
    if isinstance(target, cst.Name):
        return [target]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [name for element in target.elements for name in _store_names(element.value)]
    if isinstance(target, cst.StarredElement):
        return _store_names(target.value)
    return []


class _Rewriter(cst.CSTTransformer):
    """Applies the moves to the statements ``scan`` found something in."""

    def __init__(self, table: MoveTable, chain_roots: frozenset[str]) -> None:
        super().__init__()
        self.table = table
        self.chain_roots = chain_roots
        # Names that are not loads (keywords, targets, definitions): never rewritten.
        self.not_loads: set[int] = set()

    # ---- imports -------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> bool:
        return False  # its dotted names are handled whole in leave_Import

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def leave_Import(
        self, original_node: cst.Import, updated_node: cst.Import
    ) -> cst.BaseSmallStatement | cst.FlattenSentinel[cst.BaseSmallStatement]:
        kept: list[cst.ImportAlias] = []
        split_off: list[cst.BaseSmallStatement] = []
        for alias in updated_node.names:
            name = _cst_dotted(alias.name) or ""
            move = self.table.match(name)
            if move is None:
                kept.append(alias)
            elif (
                name == move.old
                and name in self.table.single_olds
                and (alias.asname is not None or name not in self.chain_roots)
            ):
                # Pull side: keep the bound name without touching its uses.
                local = alias.asname.name.value if alias.asname else name  # type: ignore[union-attr]
                binding = _binding(move.new, local)
                if isinstance(binding, cst.ImportFrom):
                    split_off.append(binding)
                else:
                    kept.append(binding.with_changes(comma=alias.comma))
            else:
                keep = name.count(".") - move.old.count(".")
                kept.append(alias.with_changes(name=_replace_head(alias.name, keep, move.new)))
        return _assemble(updated_node, updated_node.names, kept, split_off)

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.BaseSmallStatement | cst.FlattenSentinel[cst.BaseSmallStatement]:
        if updated_node.relative or updated_node.module is None:
            return updated_node  # relative imports are never rewritten
        module = _cst_dotted(updated_node.module) or ""
        move = self.table.match(module)
        if move is not None:
            keep = module.count(".") - move.old.count(".")
            updated_node = updated_node.with_changes(
                module=_replace_head(updated_node.module, keep, move.new)
            )
        if isinstance(updated_node.names, cst.ImportStar):
            return updated_node
        kept: list[cst.ImportAlias] = []
        split_off: list[cst.BaseSmallStatement] = []
        for alias in updated_node.names:
            name = _cst_dotted(alias.name) or ""
            moved = self.table.by_old.get(f"{module}.{name}")
            if moved is None:
                kept.append(alias)
                continue
            local = alias.asname.name.value if alias.asname else name  # type: ignore[union-attr]
            binding = _binding(moved.new, local)
            split_off.append(binding if isinstance(binding, cst.ImportFrom) else cst.Import(names=[binding]))
        return _assemble(updated_node, updated_node.names, kept, split_off)

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.FlattenSentinel[cst.SimpleStatementLine]:
        # A split import on a line of its own becomes consecutive lines; the
        # first keeps the leading comments and the trailing comment.
        if len(original_node.body) != 1 or len(updated_node.body) == 1:
            return updated_node
        first, *rest = updated_node.body
        lines = [updated_node.with_changes(body=[first])]
        lines += [cst.SimpleStatementLine(body=[statement]) for statement in rest]
        return cst.FlattenSentinel(lines)

    # ---- attribute chains and names ------------------------------------
    def visit_Attribute(self, node: cst.Attribute) -> bool:
        if _cst_dotted(node) is not None:
            return False  # a pure chain is rewritten whole in leave_Attribute
        self.not_loads.add(id(node.attr))
        return True

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        name = _cst_dotted(original_node)
        move = self.table.match(name) if name is not None else None
        if name is None or move is None:
            return updated_node
        if move.old in self.table.single_olds and move.old not in self.chain_roots:
            return updated_node  # a bare pull-side root is ambiguous outside chain mode
        keep = name.count(".") - move.old.count(".")
        return _replace_head(updated_node, keep, move.new)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        if original_node.value not in self.chain_roots or id(original_node) in self.not_loads:
            return updated_node
        move = self.table.by_old[original_node.value]
        return _replace_head(updated_node, 0, move.new)

    def _not_load(self, *names: cst.Name | None) -> None:
        self.not_loads.update(id(name) for name in names if name is not None)

    def visit_Arg(self, node: cst.Arg) -> None:
        self._not_load(node.keyword)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._not_load(*_store_names(node.name))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._not_load(node.name)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._not_load(node.name)

    def visit_Param(self, node: cst.Param) -> None:
        self._not_load(node.name)

    def visit_NameItem(self, node: cst.NameItem) -> None:  # global / nonlocal
        self._not_load(node.name)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._not_load(*_store_names(node.target))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._not_load(*_store_names(node.target))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._not_load(*_store_names(node.target))

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._not_load(*_store_names(node.target))

    def visit_For(self, node: cst.For) -> None:
        self._not_load(*_store_names(node.target))

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._not_load(*_store_names(node.target))

    def visit_Del(self, node: cst.Del) -> None:
        self._not_load(*_store_names(node.target))

    def visit_MatchAs(self, node: cst.MatchAs) -> None:
        self._not_load(node.name)

    def visit_MatchStar(self, node: cst.MatchStar) -> None:
        self._not_load(node.name)

    def visit_MatchMapping(self, node: cst.MatchMapping) -> None:
        self._not_load(node.rest)

    def visit_MatchKeywordElement(self, node: cst.MatchKeywordElement) -> None:
        self._not_load(node.key)

    def visit_TypeVar(self, node: cst.TypeVar) -> None:
        self._not_load(node.name)

    def visit_TypeAlias(self, node: cst.TypeAlias) -> None:
        self._not_load(node.name)

    # ---- strings ---------------------------------------------------------
    def visit_Expr(self, node: cst.Expr) -> bool:
        # A bare string statement (docstring) is documentation, not a reference.
        return not isinstance(node.value, (cst.SimpleString, cst.ConcatenatedString))

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.SimpleString:
        raw = updated_node.raw_value
        if "b" in updated_node.prefix.lower() or "\\" in raw:
            return updated_node  # bytes, or escapes whose meaning we will not reinterpret
        new_raw = rewrite_literal(raw, self.table)
        if new_raw is None:
            return updated_node
        value = updated_node.value
        # Prefix and quotes are kept character for character.
        head = value[: len(value) - len(updated_node.quote) - len(raw)]
        return updated_node.with_changes(value=head + new_raw + updated_node.quote)


def _assemble(
    statement: cst.Import | cst.ImportFrom,
    names: Sequence[cst.ImportAlias],
    kept: list[cst.ImportAlias],
    split_off: list[cst.BaseSmallStatement],
) -> cst.BaseSmallStatement | cst.FlattenSentinel[cst.BaseSmallStatement]:
    """The import with the names it keeps, followed by the statements split off it."""
    if not split_off:
        return statement.with_changes(names=kept)
    statements: list[cst.BaseSmallStatement] = []
    if kept:
        # The new last name takes the old last name's comma: none for a plain
        # list, the trailing comma (and its comments) for a parenthesised one.
        kept[-1] = kept[-1].with_changes(comma=names[-1].comma)
        statements.append(statement.with_changes(names=kept, semicolon=cst.MaybeSentinel.DEFAULT))
    statements += split_off
    # The original's semicolon (if any) belongs after the last statement.
    statements[-1] = statements[-1].with_changes(semicolon=statement.semicolon)
    return cst.FlattenSentinel(statements)
